"""Machines: containers that each play one computer in a lab."""
