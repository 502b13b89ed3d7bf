"""Host ports of a lab's entry points. Each lab gets a block of ports; the default lab
the first block, so its documented ports hold on a fresh machine."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from onebox.errors import Conflict

# Entry point -> (offset in the block, port inside the gateway, protocols).
ENTRY_POINTS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "dns": (53, 53, ("udp", "tcp")),
    "ssh": (22, 22, ("tcp",)),
    "http": (80, 80, ("tcp",)),
    "https": (443, 443, ("tcp",)),
    "proxy": (128, 3128, ("tcp",)),
    "socks": (180, 1080, ("tcp",)),
    "dashboard": (800, 8000, ("tcp",)),
}

FIRST_BLOCK = 17000
BLOCK_SIZE = 1000
LAST_BLOCK = 59000


def block_ports(base: int) -> dict[str, int]:
    return {name: base + offset for name, (offset, _, _) in ENTRY_POINTS.items()}


def _bindable(bind: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((bind, port))
            except OSError:
                return False
    return True


def choose(bind: str, used_by_labs: Iterable[int]) -> dict[str, int]:
    """The first block whose ports no lab uses and the host can bind."""
    used = set(used_by_labs)
    for base in range(FIRST_BLOCK, LAST_BLOCK + 1, BLOCK_SIZE):
        ports = block_ports(base)
        if used.isdisjoint(ports.values()) and all(_bindable(bind, p) for p in ports.values()):
            return ports
    raise Conflict(
        "No free block of host ports for the lab's entry points",
        "stop programs holding ports 17000-59999, or destroy unused labs",
    )
