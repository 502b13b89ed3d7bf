"""Addresses inside one lab subnet: which are reserved, which are taken, which is next.
It decides from what it is told is taken; the caller holds the lab lock around
allocation and creation so that two creates never pick the same address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from onebox.errors import Conflict, InvalidInput

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address

# .1 is the host's bridge, .2 the gateway, .3-.9 kept for the lab's own services.
FIRST_MACHINE_OFFSET = 10
GATEWAY_OFFSET = 2


def bridge_address(subnet: IPv4Net) -> IPv4:
    return subnet.network_address + 1


def gateway_address(subnet: IPv4Net) -> IPv4:
    return subnet.network_address + GATEWAY_OFFSET


def first_machine_offset(subnet: IPv4Net) -> int:
    # Small subnets (a /28 has 14 hosts) cannot spare ten reserved addresses.
    return FIRST_MACHINE_OFFSET if subnet.num_addresses >= 64 else GATEWAY_OFFSET + 1


def docker_range(subnet: IPv4Net) -> IPv4Net | None:
    """The part of the subnet left to Docker's own allocator, for containers that someone
    joins to the lab network by hand (`docker run --network LAB_net`): Docker knows only
    running containers' addresses, so without this it could hand out a stopped machine's."""
    if subnet.num_addresses < 256:
        return None
    return ipaddress.IPv4Network((int(subnet.broadcast_address) - 31, 27))


def reserved(subnet: IPv4Net) -> set[IPv4]:
    offsets = range(first_machine_offset(subnet))
    kept = {subnet.network_address + i for i in offsets} | {subnet.broadcast_address}
    left_to_docker = docker_range(subnet)
    if left_to_docker is not None:
        kept |= set(left_to_docker)
    return kept


def check_requested(subnet: IPv4Net, text: str, taken: dict[IPv4, str]) -> IPv4:
    """Validates an address a user asked for and returns it."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise InvalidInput(
            f"'{text}' is not an IPv4 address",
            f"give an address inside {subnet}, like {subnet.network_address + 20}",
        ) from exc
    if address not in subnet:
        raise InvalidInput(
            f"Address {address} is outside the lab subnet {subnet}",
            f"give an address inside {subnet}, or leave --ip out",
        )
    if address in reserved(subnet):
        first = subnet.network_address + first_machine_offset(subnet)
        raise InvalidInput(
            f"Address {address} is reserved in {subnet} (bridge, gateway, lab "
            "services, and the range Docker gives containers joined by hand)",
            f"use {first} or above, or leave --ip out",
        )
    if address in taken:
        raise Conflict(
            f"Address {address} is taken by '{taken[address]}'",
            "choose another with --ip, or leave --ip out to get a free one",
        )
    return address


def next_free(subnet: IPv4Net, taken: Iterable[IPv4]) -> IPv4:
    used = set(taken) | reserved(subnet)
    for address in subnet.hosts():
        if address not in used:
            return address
    raise Conflict(
        f"Lab subnet {subnet} has no free address left",
        "remove machines with `onebox machine rm NAME`, or create a lab with a larger " "--subnet",
    )
