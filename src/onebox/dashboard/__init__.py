"""The dashboard: server-side pages over the gateway's API, with small vendored
front-end libraries, served by the gateway as one of its planes."""
