"""Subnets, addresses and names: pure rules, no engine calls."""
