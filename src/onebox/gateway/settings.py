"""The gateway's settings, read once from the environment `onebox up` gave it."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field

from onebox.addressing.upstream import DOCKER_RESOLVER, parse_upstream

__all__ = ["DOCKER_RESOLVER", "Settings", "from_environment", "parse_upstream"]


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
