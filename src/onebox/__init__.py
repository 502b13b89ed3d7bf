"""onebox: a cloud on one computer."""

__version__ = "0.1.0"
