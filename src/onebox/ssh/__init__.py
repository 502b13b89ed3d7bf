"""The SSH entry: a way into every machine with a real SSH client, without an SSH
server in the machine. The gateway runs the server plane; the CLI manages its keys."""
