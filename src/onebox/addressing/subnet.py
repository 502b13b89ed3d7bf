"""Choosing a lab subnet that collides with nothing the host already routes: its
interfaces, its routes (VPNs included) and every Docker network's subnets."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from pathlib import Path

from onebox.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

IPv4Net = ipaddress.IPv4Network

# Lab subnets are carved from this range as /24s; 10.x.y.0/24 reads like a real site.
POOL = ipaddress.IPv4Network("10.80.0.0/12")
LAB_PREFIX = 24


def parse_subnet(text: str) -> IPv4Net:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidInput(
            f"Subnet '{text}' is not a network address in CIDR form",
            "give it like 10.90.1.0/24 (host bits zero)",
        ) from exc
    if not isinstance(net, IPv4Net):
        raise InvalidInput(
            f"Subnet '{text}' is IPv6; labs use IPv4 subnets",
            "give an IPv4 subnet like 10.90.1.0/24",
        )
    if not 16 <= net.prefixlen <= 28:
        raise InvalidInput(
            f"Subnet '{text}' has a /{net.prefixlen} prefix",
            "use a prefix from /16 (65,000 machines) to /28 (12 machines)",
        )
    if net.is_loopback or net.is_link_local or net.is_multicast:
        raise InvalidInput(
            f"Subnet '{text}' is a loopback, link-local or multicast range",
            "use a private range such as 10.90.1.0/24",
        )
    return net


def host_networks(proc: Path = Path("/proc/net")) -> list[IPv4Net]:
    """The host's IPv4 routes (which cover its interfaces and VPNs), read from /proc."""
    nets: list[IPv4Net] = []
    try:
        lines = (proc / "route").read_text().splitlines()[1:]
    except OSError:
        log.warning("Cannot read %s/route; subnet choice will not avoid host routes", proc)
        return nets
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = _le_hex_ip(fields[1]), _le_hex_ip(fields[7])
        net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        if net.prefixlen > 0:  # the default route overlaps everything and says nothing
            nets.append(net)
    return nets


def _le_hex_ip(text: str) -> str:
    value = int(text, 16)
    return str(ipaddress.IPv4Address(value.to_bytes(4, "little")))


def find_overlap(subnet: IPv4Net, taken: Iterable[tuple[str, IPv4Net]]) -> str | None:
    """The name of the first taken network that overlaps `subnet`, or None."""
    for owner, net in taken:
        if subnet.overlaps(net):
            return f"{owner} ({net})"
    return None


def check_free(subnet: IPv4Net, taken: Iterable[tuple[str, IPv4Net]]) -> None:
    owner = find_overlap(subnet, taken)
    if owner is not None:
        raise Conflict(
            f"Subnet {subnet} overlaps {owner}",
            "pick another with --subnet, or leave --subnet out to let onebox choose",
        )


def choose(
    taken: Iterable[tuple[str, IPv4Net]], pool: IPv4Net = POOL, prefix: int = LAB_PREFIX
) -> IPv4Net:
    """The first /24 of the pool that overlaps nothing taken."""
    taken = list(taken)
    for candidate in pool.subnets(new_prefix=prefix):
        if find_overlap(candidate, taken) is None:
            return candidate
    raise Conflict(
        f"Every /{prefix} in {pool} is already in use on this host",
        "remove unused labs with `onebox destroy --lab NAME`, or pass --subnet",
    )


def host_addresses(proc: Path = Path("/proc/net")) -> list[ipaddress.IPv4Address]:
    """The host's own IPv4 addresses but loopback, read from the kernel's local table:
    what LAN neighbours type to reach a shared lab."""
    try:
        lines = (proc / "fib_trie").read_text().splitlines()
    except OSError:
        log.warning("Cannot read %s/fib_trie; the host's own addresses are unknown", proc)
        return []
    found: set[ipaddress.IPv4Address] = set()
    for previous, line in zip(lines, lines[1:], strict=False):
        if line.strip() == "/32 host LOCAL" and "|--" in previous:
            address = ipaddress.IPv4Address(previous.split("|--")[1].strip())
            if not address.is_loopback:
                found.add(address)
    return sorted(found)
