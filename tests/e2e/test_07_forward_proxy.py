"""Scenario 7: the gateway's forward proxy (HTTP absolute-form, CONNECT) and SOCKS5 reach
lab machines by name and address; the PAC file routes the lab through them; refusals
come with their reason or SOCKS code; a client's connection limit holds; and a LAN
neighbour (a network namespace routed only to the gateway) is refused until the lab
allows its network, then reaches the lab through the proxy alone.

Safety: requests go to 127.0.0.1 and the lab's own addresses. Refusals of outside,
metadata and private addresses run against a proxy inside a network namespace that has
only loopback, so a packet could not leave even if the policy failed."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import PREFIX, ROOT, LabHandle, free_subnet, onebox

PAGE = "hello through the proxy"
HELD_LIMIT = 256  # the gateway's default per-client limit
# curl must not take a proxy from the environment for the requests meant to go direct.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


@dataclass
class Answer:
    code: int
    body: str
    error: str

    @property
    def socks_code(self) -> int | None:
        """The SOCKS reply code curl reports for a refused SOCKS5 connect."""
        marker = "connection to"
        if marker not in self.error or "(" not in self.error:
            return None
        return int(self.error.rsplit("(", 1)[1].split(")", 1)[0])


def curl(*args: str, netns: str | None = None) -> Answer:
    command = ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    run = subprocess.run(command, capture_output=True, text=True, timeout=30, env=CLEAN_ENV)
    body, _, code = run.stdout.rpartition("\n")
    return Answer(int(code or 0), body, run.stderr)


def ports(lab: LabHandle) -> tuple[int, int]:
    """The published proxy and SOCKS ports, read again: a recreated gateway may move."""
    gateway = lab.cli("status", "--json").json()["gateway"]
    return int(gateway["proxy_port"]), int(gateway["socks_port"])


def through(lab: LabHandle, url: str, *options: str) -> Answer:
    proxy, _ = ports(lab)
    return curl("-x", f"http://127.0.0.1:{proxy}", *options, url)


@pytest.fixture(scope="module")
def web(lab: LabHandle, busybox_image: str) -> dict[str, Any]:
    command = f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www"
    made = onebox(
        "machine",
        "create",
        "--lab",
        lab.name,
        "--image",
        busybox_image,
        "--json",
        "web",
        "--",
        "sh",
        "-c",
        command,
    ).json()
    deadline = time.monotonic() + 30  # until the gateway's watcher has seen the machine
    while through(lab, f"http://web.{lab.domain}/").code != 200:
        assert time.monotonic() < deadline, "the proxy never reached web"
        time.sleep(0.3)
    return dict(made)


def test_http_proxy_reaches_a_machine_by_name_and_by_address(
    lab: LabHandle, web: dict[str, Any]
) -> None:
    by_name = through(lab, f"http://web.{lab.domain}/")
    assert (by_name.code, by_name.body.strip()) == (200, PAGE)
    assert through(lab, "http://web/").body.strip() == PAGE
    by_address = through(lab, f"http://{web['ip']}/")
    assert (by_address.code, by_address.body.strip()) == (200, PAGE)


def test_connect_tunnels_to_a_machine_port(lab: LabHandle, web: dict[str, Any]) -> None:
    answer = through(lab, f"http://web.{lab.domain}/", "--proxytunnel")
    assert (answer.code, answer.body.strip()) == (200, PAGE)
    answer = through(lab, f"http://{web['ip']}:80/", "--proxytunnel")
    assert answer.body.strip() == PAGE


def test_socks5_resolves_names_inside_the_lab(lab: LabHandle, web: dict[str, Any]) -> None:
    _, socks = ports(lab)
    by_name = curl("--socks5-hostname", f"127.0.0.1:{socks}", f"http://web.{lab.domain}/")
    assert (by_name.code, by_name.body.strip()) == (200, PAGE)
    by_address = curl("--socks5", f"127.0.0.1:{socks}", f"http://{web['ip']}/")
    assert by_address.body.strip() == PAGE


def test_the_pac_file_routes_the_lab_through_the_proxy(lab: LabHandle) -> None:
    proxy, _ = ports(lab)
    answer = curl(
        lab.info["gateway"]["pac_url"].replace(str(lab.info["gateway"]["proxy_port"]), str(proxy))
    )
    assert answer.code == 200
    assert f'"PROXY 127.0.0.1:{proxy}"' in answer.body
    assert f'dnsDomainIs(host, ".{lab.domain}")' in answer.body
    subnet = ipaddress.IPv4Network(lab.info["subnet"])
    assert f'isInNet(host, "{subnet.network_address}", "{subnet.netmask}")' in answer.body


@pytest.mark.parametrize(
    ("target", "status", "reason"),
    [
        ("http://gateway.{domain}:8000/", 403, "admin port"),
        ("http://{bridge}/", 403, "host's own address"),
        ("http://nobody.{domain}/", 502, "no machine named nobody"),
    ],
)
def test_lab_side_refusals_name_their_reason(
    lab: LabHandle, web: dict[str, Any], target: str, status: int, reason: str
) -> None:
    bridge = ipaddress.IPv4Network(lab.info["subnet"]).network_address + 1
    answer = through(lab, target.format(domain=lab.domain, bridge=bridge))
    assert answer.code == status
    assert reason in answer.body


def test_socks_refuses_the_admin_port_with_code_2(lab: LabHandle, web: dict[str, Any]) -> None:
    _, socks = ports(lab)
    answer = curl("--socks5-hostname", f"127.0.0.1:{socks}", f"http://gateway.{lab.domain}:8000/")
    assert answer.socks_code == 2


def test_a_client_past_its_connection_limit_gets_429(lab: LabHandle, web: dict[str, Any]) -> None:
    proxy, _ = ports(lab)
    held = []
    try:
        for _ in range(HELD_LIMIT):
            held.append(socket.create_connection(("127.0.0.1", proxy), timeout=10))
        deadline = time.monotonic() + 30  # until docker-proxy has passed every one on
        while (answer := through(lab, f"http://web.{lab.domain}/")).code != 429:
            assert time.monotonic() < deadline, f"no 429 with {HELD_LIMIT} held: {answer}"
            time.sleep(0.2)
        assert f"{HELD_LIMIT} connections open" in answer.body
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30
    while through(lab, f"http://web.{lab.domain}/").code != 200:
        assert time.monotonic() < deadline, "the limit did not free up"
        time.sleep(0.2)


class Netns:
    """A network namespace of this test's own, with loopback up; removed by name, which
    is its id."""

    def __init__(self, kind: str) -> None:
        self.name = f"{PREFIX}{kind}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True)

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@pytest.fixture
def sealed() -> Iterator[tuple[Netns, int, int]]:
    """The proxies with the real policy, in a namespace that has no route out at all."""
    netns = Netns("sealed")
    harness = None
    try:
        harness = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, sys.executable, "-m", "tests.e2e.proxyharness"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert harness.stdout is not None
        http_port, socks_port = (int(p) for p in harness.stdout.readline().split())
        yield netns, http_port, socks_port
    finally:
        if harness is not None:
            harness.terminate()
            harness.wait(10)
        netns.remove()


OUTSIDE = [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://metadata.google.internal/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://198.51.100.1/", "private address outside"),
    ("http://8.8.8.8/", "outside the lab subnet"),
    ("http://example.com/", "outside the lab domain"),
    ("http://192.168.1.1/", "private address outside"),
    ("http://127.0.0.1:22/", "loopback"),
]


@pytest.mark.parametrize(("url", "reason"), OUTSIDE)
def test_outside_destinations_are_refused_before_any_connect(
    sealed: tuple[Netns, int, int], url: str, reason: str
) -> None:
    netns, http_port, socks_port = sealed
    plain = curl("-x", f"http://127.0.0.1:{http_port}", url, netns=netns.name)
    assert (plain.code, reason in plain.body) == (403, True), plain
    tunnel = curl("-p", "-x", f"http://127.0.0.1:{http_port}", url, netns=netns.name)
    assert "403" in tunnel.error
    socks = curl("--socks5-hostname", f"127.0.0.1:{socks_port}", url, netns=netns.name)
    assert socks.socks_code == 2, socks


@pytest.fixture
def neighbour(engine: Any, lab: LabHandle) -> Iterator[tuple[Netns, ipaddress.IPv4Network]]:
    """A LAN neighbour: a namespace joined to the host by a veth pair on a free /30,
    routed to the gateway's address only, so it reaches machines through the proxy alone."""
    link = ipaddress.IPv4Network(free_subnet(engine)).subnets(new_prefix=30).__next__()
    host_side, near_side = (str(a) for a in list(link.hosts())[:2])
    netns = Netns("lan")
    veth = f"{PREFIX}{secrets.token_hex(3)}"
    try:
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                netns.name,
            ],
            check=True,
        )
        subprocess.run(["ip", "addr", "add", f"{host_side}/30", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        netns.ip("addr", "add", f"{near_side}/30", "dev", "eth0")
        netns.ip("link", "set", "eth0", "up")
        netns.ip("route", "add", f"{lab.info['gateway']['ip']}/32", "via", host_side)
        yield netns, link
    finally:
        subprocess.run(["ip", "link", "del", veth], check=False)
        netns.remove()


def set_allowed(engine: Any, lab: LabHandle, allow: tuple[str, ...]) -> None:
    """Recreates the gateway with ONEBOX_ALLOW, loopback-bound as before."""
    from onebox.images import gateway
    from onebox.labs import lab as labs

    image = gateway.ensure(engine, lambda line: None)
    request = labs.UpRequest(name=lab.name, bind="127.0.0.1", allow=allow, test=True)
    labs.up(engine, request, lambda line: None, image)


def test_a_lan_neighbour_reaches_the_lab_only_through_the_proxy_once_allowed(
    engine: Any,
    lab: LabHandle,
    web: dict[str, Any],
    neighbour: tuple[Netns, ipaddress.IPv4Network],
) -> None:
    netns, link = neighbour
    gateway_ip = lab.info["gateway"]["ip"]
    proxy = f"http://{gateway_ip}:3128"
    url = f"http://web.{lab.domain}/"

    refused = curl("-x", proxy, url, netns=netns.name)
    assert refused.code == 403
    assert "not in the allowed networks" in refused.body

    set_allowed(engine, lab, (str(link),))
    deadline = time.monotonic() + 60  # until the new gateway serves
    while (answer := curl("-x", proxy, url, netns=netns.name)).code != 200:
        assert time.monotonic() < deadline, f"the allowed neighbour was not served: {answer}"
        time.sleep(0.5)
    assert answer.body.strip() == PAGE
    tunnel = curl("-p", "-x", proxy, f"http://{web['ip']}/", netns=netns.name)
    assert tunnel.body.strip() == PAGE
    socks = curl("--socks5-hostname", f"{gateway_ip}:1080", url, netns=netns.name)
    assert socks.body.strip() == PAGE
    pac = curl(f"http://{gateway_ip}:3128/proxy.pac", netns=netns.name)
    assert f'"PROXY {gateway_ip}:3128"' in pac.body

    direct = curl("--connect-timeout", "2", f"http://{web['ip']}/", netns=netns.name)
    assert direct.code == 0, "the neighbour has no route to machines but through the proxy"


def test_urls_by_name_go_through_the_reverse_proxy_with_web_port_names_and_https(
    lab: LabHandle, busybox_image: str, tmp_path: Any
) -> None:
    """A browser behind the proxy or the PAC file sees what the reverse proxy serves: the
    machine's own web port, its extra names, and HTTPS with the lab's certificates."""
    command = "mkdir -p /w && echo api-8080 > /w/index.html && exec httpd -f -p 8080 -h /w"
    domain = lab.domain
    lab.cli(
        "machine",
        "create",
        "api",
        "--image",
        busybox_image,
        "--web-port",
        "8080",
        "--url",
        f"shop.{domain}",
        "--url",
        f"*.shop.{domain}",
        "--",
        "sh",
        "-c",
        command,
    )
    try:
        for name in (f"api.{domain}", f"shop.{domain}", f"x.shop.{domain}"):
            answer = through(lab, f"http://{name}/")
            assert (answer.code, answer.body.strip()) == (200, "api-8080"), answer.error
        _, socks = ports(lab)
        answer = curl("--socks5-hostname", f"127.0.0.1:{socks}", f"http://shop.{domain}/")
        assert (answer.code, answer.body.strip()) == (200, "api-8080"), answer.error
        ca = tmp_path / "lab-ca.pem"
        lab.cli("ca", "export", "--out", str(ca))
        answer = through(lab, f"https://api.{domain}/", "--cacert", str(ca))
        assert (answer.code, answer.body.strip()) == (200, "api-8080"), answer.error
    finally:
        lab.cli("machine", "rm", "api")
