"""The `onebox.*` labels: how Docker objects carry onebox's facts, so that Docker
stays the source of truth for what exists."""

from __future__ import annotations


class Label:
    LAB = "onebox.lab"
    ROLE = "onebox.role"  # "gateway", "machine" or "network"
    MACHINE = "onebox.machine"
    IP = "onebox.ip"
    DOMAIN = "onebox.domain"
    SUBNET = "onebox.subnet"
    PORTS = "onebox.ports"  # JSON: entry point name -> host port
    BIND = "onebox.bind"  # host address the gateway's entry points are published on
    ALLOW = "onebox.allow"  # client networks (CIDRs, comma separated) a shared lab serves
    UPSTREAM = "onebox.upstream"  # DNS upstream for names outside the lab
    WEB_PORT = "onebox.web_port"  # the machine's HTTP port behind its URL
    URLS = "onebox.urls"  # extra names, comma separated
    STACK = "onebox.stack"
    TEST = "onebox.test"  # set on objects that tests make, for their own clean-up


ROLE_GATEWAY = "gateway"
ROLE_MACHINE = "machine"
ROLE_NETWORK = "network"
