"""The gateway's settings, read once from the environment `onebox up` gave it."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    lab: str
    domain: str
    subnet: ipaddress.IPv4Network
    gateway_ip: ipaddress.IPv4Address
    upstream: tuple[str, int] | None
    ports: dict[str, int] = field(default_factory=dict)
    bind: str = "127.0.0.1"
    data_dir: str = "/var/lib/onebox"
    host_names: tuple[str, ...] = ()  # the host's own names and addresses, when shared


# Inside the gateway, Docker's embedded resolver forwards to the host's resolvers.
DOCKER_RESOLVER = ("127.0.0.11", 53)


def parse_upstream(text: str) -> tuple[str, int] | None:
    """'' means the host's resolvers; 'none' turns forwarding off."""
    if not text:
        return DOCKER_RESOLVER
    if text == "none":
        return None
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "53")
    ipaddress.IPv4Address(host)
    return host, int(port or 53)


def from_environment() -> Settings:
    env = os.environ
    subnet = ipaddress.IPv4Network(env["ONEBOX_SUBNET"])
    return Settings(
        lab=env["ONEBOX_LAB"],
        domain=env["ONEBOX_DOMAIN"],
        subnet=subnet,
        gateway_ip=ipaddress.IPv4Address(env.get("ONEBOX_GATEWAY_IP", str(subnet[2]))),
        upstream=parse_upstream(env.get("ONEBOX_UPSTREAM", "")),
        ports={k: int(v) for k, v in json.loads(env.get("ONEBOX_PORTS", "{}")).items()},
        bind=env.get("ONEBOX_BIND", "127.0.0.1"),
        data_dir=env.get("ONEBOX_DATA_DIR", "/var/lib/onebox"),
        host_names=tuple(n for n in env.get("ONEBOX_HOST_NAMES", "").split(",") if n),
    )
