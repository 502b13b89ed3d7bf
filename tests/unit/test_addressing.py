import ipaddress
from pathlib import Path

import pytest

from onebox.addressing import allocator, names, subnet
from onebox.errors import Conflict, InvalidInput

NET = ipaddress.IPv4Network("10.80.3.0/24")


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def test_next_free_skips_reserved_and_taken_addresses() -> None:
    assert allocator.next_free(NET, []) == ip("10.80.3.10")
    assert allocator.next_free(NET, [ip("10.80.3.10"), ip("10.80.3.11")]) == ip("10.80.3.12")


def test_next_free_reuses_an_address_freed_by_a_removal() -> None:
    taken = [ip("10.80.3.10"), ip("10.80.3.12")]
    assert allocator.next_free(NET, taken) == ip("10.80.3.11")


def test_next_free_refuses_a_full_subnet() -> None:
    small = ipaddress.IPv4Network("10.80.4.0/28")
    taken = list(small.hosts())
    with pytest.raises(Conflict, match="no free address"):
        allocator.next_free(small, taken)


def test_small_subnets_keep_only_bridge_and_gateway_reserved() -> None:
    small = ipaddress.IPv4Network("10.80.4.0/28")
    assert allocator.next_free(small, []) == ip("10.80.4.3")


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("10.80.4.20", InvalidInput, "outside the lab subnet"),
        ("10.80.3.2", InvalidInput, "reserved"),
        ("10.80.3.255", InvalidInput, "reserved"),
        ("10.80.3.300", InvalidInput, "not an IPv4 address"),
        ("web", InvalidInput, "not an IPv4 address"),
        ("10.80.3.40", Conflict, "taken by 'db'"),
    ],
)
def test_requested_address_is_refused_with_the_reason(text: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        allocator.check_requested(NET, text, {ip("10.80.3.40"): "db"})


def test_requested_address_inside_the_subnet_is_accepted() -> None:
    assert allocator.check_requested(NET, "10.80.3.77", {}) == ip("10.80.3.77")


@pytest.mark.parametrize(
    "name",
    ["", "a" * 64, "web_1", "-web", "web-", "web.1", "gateway", "wéb"],
)
def test_invalid_machine_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        names.check_machine_name(name)


def test_machine_names_are_lower_cased() -> None:
    assert names.check_machine_name("Web-1") == "web-1"
    assert names.check_machine_name("a" * 63) == "a" * 63


def test_default_domain_lies_under_internal() -> None:
    assert names.default_domain("default") == "onebox.internal"
    assert names.default_domain("dev").endswith(".internal")


@pytest.mark.parametrize(
    "text", ["10.1.2.3/24", "fd00::/64", "10.0.0.0/8", "127.0.0.0/24", "nonsense"]
)
def test_bad_subnets_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        subnet.parse_subnet(text)


def test_choose_skips_host_routes_and_docker_networks() -> None:
    taken = [
        ("host route", ipaddress.IPv4Network("10.80.0.0/23")),
        ("Docker network 'x'", ipaddress.IPv4Network("10.80.2.0/24")),
    ]
    assert subnet.choose(taken) == ipaddress.IPv4Network("10.80.3.0/24")


def test_a_given_subnet_that_overlaps_is_refused_naming_the_owner() -> None:
    taken = [("Docker network 'bridge'", ipaddress.IPv4Network("10.80.0.0/16"))]
    with pytest.raises(Conflict, match="Docker network 'bridge'"):
        subnet.check_free(ipaddress.IPv4Network("10.80.9.0/24"), taken)


def test_host_networks_are_read_from_the_kernel_route_table(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "tun0\t0000080A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    assert subnet.host_networks(tmp_path) == [
        ipaddress.IPv4Network("192.0.2.0/24"),
        ipaddress.IPv4Network("10.8.0.0/16"),
    ]


def test_host_addresses_are_the_local_table_entries_but_loopback(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 4\n"
        "        |-- 127.0.0.1\n           /32 host LOCAL\n"
        "        |-- 192.0.2.2\n           /32 host LOCAL\n"
        "        |-- 192.0.2.255\n           /32 link BROADCAST\n"
        "Local:\n        |-- 192.0.2.2\n           /32 host LOCAL\n"
    )
    assert subnet.host_addresses(tmp_path) == [ipaddress.IPv4Address("192.0.2.2")]


@pytest.mark.parametrize(
    "domain",
    [
        "internal",
        "a..internal",
        "in-addr.arpa",
        "10.in-addr.arpa",
        "1.2.3.4",
        "x" * 60 + "." + "y" * 130,
    ],
)
def test_bad_domains_are_refused(domain: str) -> None:
    with pytest.raises(InvalidInput):
        names.check_domain(domain)


def test_a_domain_leaves_room_for_the_longest_machine_name() -> None:
    domain = names.check_domain("d" * 60 + "." + "e" * 60 + "." + "f" * 58 + ".internal")
    assert len(("m" * 63) + "." + domain) <= 253


def test_all_digit_machine_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="all digits"):
        names.check_machine_name("123")


def test_the_top_of_a_lab_subnet_is_left_to_dockers_own_allocator() -> None:
    assert allocator.docker_range(NET) == ipaddress.IPv4Network("10.80.3.224/27")
    with pytest.raises(InvalidInput, match="reserved"):
        allocator.check_requested(NET, "10.80.3.230", {})
    taken = [NET.network_address + i for i in range(10, 224)]
    with pytest.raises(Conflict, match="no free address"):
        allocator.next_free(NET, taken)
    assert allocator.docker_range(ipaddress.IPv4Network("10.80.4.0/28")) is None
