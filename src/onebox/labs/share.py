"""Sharing a lab on the LAN: the host address its gateway's entry points are published
on, and the client networks allowed to use its forward proxy (ONEBOX_ALLOW in the
gateway). Docker fixes published ports when a container is created, so a change
recreates the gateway; its data volume, and with it the lab CA, stays."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path

from onebox.engine import Engine
from onebox.errors import InvalidInput
from onebox.labs import lab as labs

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
EVERYWHERE = "0.0.0.0"
# Interfaces whose networks are Docker's own or this host's, never a LAN of people.
NOT_LAN = ("lo", "docker", "br-", "veth", "virbr", "cni", "flannel", "tun", "wg")


def parse_allow(cidrs: Sequence[str]) -> tuple[str, ...]:
    """Client networks in canonical form; a bare address stands for itself."""
    networks = []
    for text in cidrs:
        try:
            networks.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError as exc:
            raise InvalidInput(
                f"'{text}' is not a network or address",
                "write it like --allow 192.168.1.0/24 or --allow 192.168.1.7",
            ) from exc
    return tuple(dict.fromkeys(networks))


def lan_networks(proc: Path = Path("/proc/net")) -> tuple[str, ...]:
    """The networks this host sits on directly (a route with no gateway), leaving out
    Docker's bridges, loopback and tunnels: who "the LAN" is when no --allow is given."""
    try:
        lines = (proc / "route").read_text().splitlines()[1:]
    except OSError:
        log.warning("Cannot read %s/route; no LAN networks found", proc)
        return ()
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0].startswith(NOT_LAN) or int(fields[2], 16) != 0:
            continue
        dest, mask = (
            ipaddress.IPv4Address(int(f, 16).to_bytes(4, "little")) for f in (fields[1], fields[7])
        )
        net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        if net.prefixlen > 0:
            found.append(str(net))
    return tuple(dict.fromkeys(found))


def allowed_clients(lab: str, allow: Sequence[str]) -> tuple[str, ...]:
    """The networks given, or the host's LAN networks when none are."""
    networks = parse_allow(allow) if allow else lan_networks()
    if not networks:
        raise InvalidInput(
            f"Found no LAN network to share lab '{lab}' with",
            f"name the clients: `onebox share --lab {lab} " "--allow 192.168.1.0/24`",
        )
    return networks


def share(
    engine: Engine,
    name: str,
    allow: Sequence[str],
    report: labs.Report,
    image: str,
    test: bool = False,
) -> tuple[labs.Lab, bool]:
    """Publishes the lab's entry points on every host address, for the client networks
    `allow` names (default: the host's own LAN networks)."""
    current = labs.load(engine, name)
    request = labs.UpRequest(
        name=current.name, bind=EVERYWHERE, allow=allowed_clients(current.name, allow), test=test
    )
    return labs.up(engine, request, report, image)


def unshare(
    engine: Engine, name: str, report: labs.Report, image: str, test: bool = False
) -> tuple[labs.Lab, bool]:
    """Publishes the lab's entry points on loopback only again."""
    current = labs.load(engine, name)
    request = labs.UpRequest(name=current.name, bind=LOOPBACK, allow=(), test=test)
    return labs.up(engine, request, report, image)
