"""Which clients a shared lab serves: --allow parsing and the host's LAN networks read
from a route table, leaving out Docker's bridges, loopback and the default route."""

from __future__ import annotations

from pathlib import Path

import pytest

from onebox.errors import InvalidInput
from onebox.labs.share import allowed_clients, lan_networks, parse_allow

ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
br-84765c0f8f4b\t0000500A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000A8C0\t0101A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_lan_networks_are_direct_routes_of_real_interfaces(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(ROUTES)
    assert lan_networks(tmp_path) == ("192.168.1.0/24", "10.0.0.0/16")


def test_no_route_table_means_no_lan(tmp_path: Path) -> None:
    assert lan_networks(tmp_path) == ()


def test_allow_takes_networks_and_single_addresses_in_canonical_form() -> None:
    assert parse_allow(["192.168.1.7", "10.1.2.3/16", "10.1.0.0/16", "fd00::/8"]) == (
        "192.168.1.7/32",
        "10.1.0.0/16",
        "fd00::/8",
    )


@pytest.mark.parametrize("bad", ["192.168.1.0/33", "lan", "", "1.2.3.4,5.6.7.8"])
def test_allow_refuses_what_is_no_network(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_allow([bad])


def test_given_networks_win_over_the_lan() -> None:
    assert allowed_clients("lab1", ["192.0.2.0/24"]) == ("192.0.2.0/24",)
