"""The gateway: the lab's first container. Runs the data planes and keeps them in
step with Docker; it never creates or removes machines on its own."""
