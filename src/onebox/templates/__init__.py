"""Templates and compose files: catalog loading, the compose model and the stack runner."""
