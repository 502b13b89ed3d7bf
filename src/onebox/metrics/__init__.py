"""Metrics of machines: CPU, memory and traffic sampled from the engine's stats streams,
and the gateway's history of traffic and events kept in SQLite."""
