"""Where the SSH entry may forward a connection (`ssh -L`, `ssh -J`): only to a lab
machine or the gateway, named by machine name, lab name or lab address. The check is
pure and runs before any connection is made; it never asks a resolver, so a refused
name or address gets no packet."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from onebox.errors import InvalidInput


@dataclass(frozen=True)
class LabMap:
    """What the check needs to know about the lab: its machines and where it lives."""

    domain: str
    subnet: ipaddress.IPv4Network
    gateway_ip: ipaddress.IPv4Address
    machines: Mapping[str, ipaddress.IPv4Address]

    def by_address(self) -> dict[ipaddress.IPv4Address, str]:
        found = {ip: name for name, ip in self.machines.items()}
        found[self.gateway_ip] = "gateway"
        return found


def _refuse(host: str, port: int, why: str, lab: LabMap) -> InvalidInput:
    return InvalidInput(
        f"onebox: forwarding to {host}:{port} is refused: {why}",
        f"forward only to lab machines, by name (NAME or NAME.{lab.domain}) "
        f"or by their address in {lab.subnet}",
    )


def resolve(host: str, port: int, lab: LabMap) -> ipaddress.IPv4Address:
    """The lab address to connect to; InvalidInput saying why when it is not allowed."""
    if not 1 <= port <= 65535:
        raise _refuse(host, port, "not a TCP port", lab)
    wanted = host.strip().lower().rstrip(".")
    try:
        address = ipaddress.ip_address(wanted.strip("[]"))
    except ValueError:
        return _by_name(host, wanted, port, lab)
    if not isinstance(address, ipaddress.IPv4Address) or address not in lab.subnet:
        raise _refuse(host, port, "it is not a lab address", lab)
    if address not in lab.by_address():
        raise _refuse(host, port, "no machine of the lab has that address", lab)
    return address


def _by_name(host: str, wanted: str, port: int, lab: LabMap) -> ipaddress.IPv4Address:
    suffix = f".{lab.domain.lower().rstrip('.')}"
    name = wanted[: -len(suffix)] if wanted.endswith(suffix) else wanted
    if name == "gateway":
        return lab.gateway_ip
    address = lab.machines.get(name)
    if address is None:
        why = "no machine of the lab has that name"
        if "." in name:
            why = "it is not a name in the lab"
        raise _refuse(host, port, why, lab)
    return address
