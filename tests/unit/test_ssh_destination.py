"""The SSH entry's forwarding policy: lab machines by name, lab name or lab address
only; everything else is refused without resolving or connecting."""

from __future__ import annotations

import ipaddress

import pytest

from onebox.errors import InvalidInput
from onebox.ssh.destination import LabMap, resolve

LAB = LabMap(
    domain="demo.internal",
    subnet=ipaddress.IPv4Network("10.88.4.0/24"),
    gateway_ip=ipaddress.IPv4Address("10.88.4.2"),
    machines={"web": ipaddress.IPv4Address("10.88.4.10")},
)
WEB = ipaddress.IPv4Address("10.88.4.10")


@pytest.mark.parametrize(
    "host", ["web", "WEB", "web.demo.internal", "web.demo.internal.", "10.88.4.10"]
)
def test_machines_are_reached_by_name_lab_name_or_address(host: str) -> None:
    assert resolve(host, 80, LAB) == WEB


def test_the_gateway_is_a_lab_destination() -> None:
    assert resolve("gateway.demo.internal", 8000, LAB) == LAB.gateway_ip
    assert resolve("10.88.4.2", 53, LAB) == LAB.gateway_ip


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("192.0.2.10", "it is not a lab address"),  # TEST-NET-1
        ("169.254.169.254", "it is not a lab address"),  # cloud metadata
        ("127.0.0.1", "it is not a lab address"),
        ("10.88.5.10", "it is not a lab address"),  # the next subnet
        ("::1", "it is not a lab address"),
        ("[2001:db8::1]", "it is not a lab address"),
        ("10.88.4.1", "no machine of the lab has that address"),  # the host's bridge end
        ("10.88.4.77", "no machine of the lab has that address"),
        ("localhost", "no machine of the lab has that name"),
        ("db", "no machine of the lab has that name"),
        ("db.demo.internal", "no machine of the lab has that name"),
        ("example.com", "it is not a name in the lab"),
        ("web.demo.internal.example.com", "it is not a name in the lab"),
    ],
)
def test_everything_else_is_refused_with_the_reason(host: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve(host, 80, LAB)
    assert refused.value.message == f"onebox: forwarding to {host}:80 is refused: {why}"
    assert refused.value.fix and "10.88.4.0/24" in refused.value.fix


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_ports_outside_tcp_are_refused(port: int) -> None:
    with pytest.raises(InvalidInput, match="not a TCP port"):
        resolve("web", port, LAB)


def test_a_stopped_machine_left_out_of_the_map_is_refused() -> None:
    empty = LabMap(LAB.domain, LAB.subnet, LAB.gateway_ip, machines={})
    with pytest.raises(InvalidInput, match="no machine of the lab has that address"):
        resolve("10.88.4.10", 80, empty)
