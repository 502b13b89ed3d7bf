"""The `onebox` command: a thin front end over the domain packages."""
