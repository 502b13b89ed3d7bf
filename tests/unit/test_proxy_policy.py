"""The forward proxies' policy, table by table: every refused class of destination and
client is refused with its reason, and lab destinations are allowed. This is where
outside, metadata and private refusals are proven: no packet is involved at all."""

from __future__ import annotations

import ipaddress

import pytest

from onebox.errors import InvalidInput
from onebox.proxy.policy import Machine, Policy, Verdict, from_environment, max_per_client

SUBNET = ipaddress.IPv4Network("10.88.5.0/24")
GATEWAY = ipaddress.IPv4Address("10.88.5.2")
WEB = ipaddress.IPv4Address("10.88.5.10")
API = ipaddress.IPv4Address("10.88.5.12")


def lab_policy(allow_admin: bool = False) -> Policy:
    policy = Policy("lab.internal", SUBNET, GATEWAY, allow_admin=allow_admin)
    policy.set_machines(
        [
            Machine("web", WEB, urls=("shop.lab.internal", "*.apps.lab.internal")),
            Machine("db", ipaddress.IPv4Address("10.88.5.11"), running=False),
            Machine("api", API, web_port=8080),
        ]
    )
    return policy


ALLOWED = [
    ("web.lab.internal", 80, WEB),
    ("web", 80, WEB),
    # HTTPS and extra URL names are the reverse proxy's, on the gateway
    ("WEB.Lab.Internal.", 443, GATEWAY),
    ("shop.lab.internal", 80, GATEWAY),
    ("x.apps.lab.internal", 80, GATEWAY),
    ("api.lab.internal", 80, GATEWAY),  # its web server is on 8080
    ("api.lab.internal", 8080, API),
    ("a.b.apps.lab.internal", 8080, WEB),
    ("10.88.5.10", 22, WEB),
    ("::ffff:10.88.5.10", 80, WEB),
    ("10.88.5.99", 80, ipaddress.IPv4Address("10.88.5.99")),
    ("gateway.lab.internal", 80, GATEWAY),
    ("gateway", 443, GATEWAY),
    ("10.88.5.2", 53, GATEWAY),
]

REFUSED = [
    # cloud metadata, by address and by name
    ("169.254.169.254", 80, "cloud metadata"),
    ("::ffff:169.254.169.254", 80, "cloud metadata"),
    ("fd00:ec2::254", 80, "cloud metadata"),
    ("[fd00:ec2::254]", 80, "cloud metadata"),
    ("169.254.170.2", 80, "cloud metadata"),
    ("100.100.100.200", 80, "cloud metadata"),
    ("168.63.129.16", 80, "cloud metadata"),
    ("metadata.google.internal", 80, "cloud metadata"),
    ("metadata", 80, "cloud metadata"),
    # loopback
    ("127.0.0.1", 80, "loopback"),
    ("127.1.2.3", 3128, "loopback"),
    ("::1", 80, "loopback"),
    ("localhost", 80, "loopback"),
    ("db.localhost", 80, "loopback"),
    # link-local
    ("169.254.1.1", 80, "link-local"),
    ("fe80::1", 80, "link-local"),
    # the host, and the gateway's admin side
    ("10.88.5.1", 80, "host's own address"),
    ("10.88.5.2", 8000, "admin port"),
    ("10.88.5.2", 22, "admin port"),
    ("10.88.5.2", 3128, "admin port"),
    ("gateway.lab.internal", 1080, "admin port"),
    # other private networks and the outside world
    ("10.0.0.1", 80, "private address outside"),
    ("10.88.6.10", 80, "private address outside"),
    ("172.16.0.1", 80, "private address outside"),
    ("192.168.1.1", 80, "private address outside"),
    ("100.64.0.1", 80, "private address outside"),
    ("fc00::1", 80, "private address outside"),
    ("198.51.100.1", 80, "private address outside"),  # TEST-NET counts as private
    ("8.8.8.8", 53, "outside the lab subnet"),
    ("2606:4700::1111", 443, "outside the lab subnet"),
    ("example.com", 80, "outside the lab domain"),
    ("web.lab.internal.example.com", 80, "outside the lab domain"),
    ("0xa9.0xfe.0xa9.0xfe", 80, "outside the lab domain"),
    ("169.254.43518", 80, "outside the lab domain"),
    # not a unicast machine address
    ("10.88.5.0", 80, "not a machine address"),
    ("10.88.5.255", 80, "not a machine address"),
    ("0.0.0.0", 80, "not a unicast address"),
    ("224.0.0.1", 80, "not a unicast address"),
    ("255.255.255.255", 80, "not a unicast address"),
    # nonsense
    ("web", 0, "not a TCP port"),
    ("web", 65536, "not a TCP port"),
    ("", 80, "empty destination"),
]

UNKNOWN = [
    ("nobody.lab.internal", 80, "no machine named nobody.lab.internal"),
    ("nobody", 80, "no machine named nobody.lab.internal"),
    ("db.lab.internal", 5432, "db is stopped"),
    ("lab.internal", 80, "the lab domain"),
    ("apps.lab.internal", 80, "no machine named apps.lab.internal"),
    ("2852039166", 80, "no machine named"),  # 169.254.169.254 as one number: just a name
]


@pytest.mark.parametrize(("host", "port", "address"), ALLOWED)
def test_lab_destinations_are_allowed_at_their_lab_address(
    host: str, port: int, address: ipaddress.IPv4Address
) -> None:
    decision = lab_policy().destination(host, port)
    assert decision.verdict is Verdict.ALLOW
    assert decision.address == address


@pytest.mark.parametrize(("host", "port", "reason"), REFUSED)
def test_destinations_outside_the_lab_are_refused_with_their_reason(
    host: str, port: int, reason: str
) -> None:
    decision = lab_policy().destination(host, port)
    assert decision.verdict is Verdict.REFUSE
    assert reason in decision.reason
    assert decision.address is None


@pytest.mark.parametrize(("host", "port", "reason"), UNKNOWN)
def test_names_no_running_machine_has_are_unknown(host: str, port: int, reason: str) -> None:
    decision = lab_policy().destination(host, port)
    assert decision.verdict is Verdict.UNKNOWN
    assert reason in decision.reason
    assert decision.address is None


def test_every_allowed_address_lies_inside_the_lab_subnet() -> None:
    policy = lab_policy(allow_admin=True)
    hosts = [h for h, _, _ in ALLOWED + REFUSED + UNKNOWN] + ["10.88.5.2"]
    for host in hosts:
        for port in (22, 80, 3128, 8000):
            decision = policy.destination(host, port)
            if decision.allowed:
                assert decision.address in SUBNET
                assert decision.address not in (SUBNET[0], SUBNET[1], SUBNET[-1])


def test_admin_ports_open_when_the_owner_allows_them() -> None:
    assert lab_policy(allow_admin=True).destination("10.88.5.2", 8000).address == GATEWAY
    assert not lab_policy(allow_admin=True).destination("10.88.5.1", 8000).allowed


def test_names_follow_the_machine_list() -> None:
    policy = lab_policy()
    assert policy.destination("cache", 6379).verdict is Verdict.UNKNOWN
    policy.set_machines([Machine("cache", ipaddress.IPv4Address("10.88.5.12"))])
    assert policy.destination("cache", 6379).address == ipaddress.IPv4Address("10.88.5.12")
    assert policy.destination("web", 80).verdict is Verdict.UNKNOWN


ALLOWED_CLIENTS = ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1", "10.88.5.1"]
REFUSED_CLIENTS = ["192.168.2.7", "10.88.5.10", "10.88.5.2", "8.8.8.8", "fe80::1%eth0"]


@pytest.mark.parametrize("client", ALLOWED_CLIENTS)
def test_loopback_and_the_bridge_may_use_the_proxy_by_default(client: str) -> None:
    assert lab_policy().client(client).allowed


@pytest.mark.parametrize("client", REFUSED_CLIENTS)
def test_other_clients_are_refused_by_default(client: str) -> None:
    decision = lab_policy().client(client)
    assert decision.verdict is Verdict.REFUSE
    assert "not in the allowed networks" in decision.reason


def test_a_client_address_that_is_no_address_is_refused() -> None:
    assert "not an IP address" in lab_policy().client("not-an-ip").reason


def test_onebox_allow_adds_client_networks() -> None:
    env = {"ONEBOX_ALLOW": "192.168.2.0/24, 10.9.9.9"}
    policy = from_environment("lab.internal", SUBNET, GATEWAY, env)
    assert policy.client("192.168.2.7").allowed
    assert policy.client("10.9.9.9").allowed
    assert policy.client("127.0.0.1").allowed
    assert not policy.client("192.168.3.7").allowed
    assert not policy.client("10.9.9.8").allowed


def test_a_bad_onebox_allow_names_the_setting() -> None:
    with pytest.raises(InvalidInput, match="ONEBOX_ALLOW"):
        from_environment("lab.internal", SUBNET, GATEWAY, {"ONEBOX_ALLOW": "192.168.1/33"})


def test_the_per_client_limit_comes_from_the_environment() -> None:
    assert max_per_client({}) == 256
    assert max_per_client({"ONEBOX_PROXY_MAX_PER_CLIENT": "8"}) == 8
    with pytest.raises(InvalidInput):
        max_per_client({"ONEBOX_PROXY_MAX_PER_CLIENT": "0"})
