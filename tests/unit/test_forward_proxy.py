"""The HTTP and SOCKS5 proxies' own mechanics against local servers on 127.0.0.1:
keep-alive and connection reuse, chunked and close-delimited bodies, request bodies,
pipelining, CONNECT tunnels moved into the kernel, refusals, limits and the PAC file.
A test policy lets the name "web" reach 127.0.0.1; the real policy has its own tests."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import http.server
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvloop

from onebox.proxy import policy as policies
from onebox.proxy.forward import ForwardProxy
from onebox.proxy.socks import SocksProxy

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
BIG = os.urandom(3 * 1024 * 1024 + 17)


class LoopbackPolicy(policies.Policy):
    """The lab policy, except that the name "web" is a machine at 127.0.0.1."""

    def destination(self, host: str, port: int) -> policies.Decision:
        if host in ("web", "web.lab.internal"):
            return policies.Decision(policies.Verdict.ALLOW, "test machine", LOOPBACK)
        return super().destination(host, port)


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[int] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        Backend.connections.add(self.client_address[1])

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"no length, ends at close")
            self.close_connection = True
        else:
            body = BIG if self.path == "/big" else f"path {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Setup:
    http_port: int
    socks_port: int
    web_port: int
    forward: ForwardProxy
    loop: asyncio.AbstractEventLoop

    def url(self, path: str) -> str:
        return f"http://web:{self.web_port}{path}"


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    backend.daemon_threads = True
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    policy = LoopbackPolicy(
        "lab.internal", ipaddress.IPv4Network("10.88.5.0/24"), ipaddress.IPv4Address("10.88.5.2")
    )
    loop = uvloop.new_event_loop()
    forward = ForwardProxy(policy, max_per_client=8, pac_fallback="127.0.0.1:3128")
    socks = SocksProxy(policy, max_per_client=8)
    loop.run_until_complete(forward.start("127.0.0.1", 0))
    loop.run_until_complete(socks.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield Setup(forward.port, socks.port, backend.server_address[1], forward, loop)
    finally:
        for proxy in (forward, socks):
            asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        backend.shutdown()
        backend.server_close()


def proxy_connection(setup: Setup) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", setup.http_port, timeout=10)


def get(setup: Setup, url: str) -> tuple[int, str]:
    """One request through the proxy on a new connection: status and body."""
    conn = proxy_connection(setup)
    conn.request("GET", url)
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_keep_alive_reuses_both_connections(setup: Setup) -> None:
    conn = proxy_connection(setup)
    Backend.connections.clear()
    for path in ("/a", "/b", "/c"):
        conn.request("GET", setup.url(path))
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, f"path {path}".encode())
    assert len(Backend.connections) == 1
    conn.close()


def test_chunked_responses_pass_whole_and_the_connection_goes_on(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("GET", setup.url("/chunked"))
    assert conn.getresponse().read() == b"hello chunked world"
    conn.request("GET", setup.url("/after"))
    assert conn.getresponse().read() == b"path /after"


def test_a_close_delimited_response_ends_the_client_connection(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("GET", setup.url("/until-close"))
    response = conn.getresponse()
    assert response.read() == b"no length, ends at close"
    assert response.will_close


def test_request_bodies_reach_the_machine(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("POST", setup.url("/echo"), body=BIG[:200_000])
    assert conn.getresponse().read() == BIG[:200_000]
    conn.request(
        "POST",
        setup.url("/echo"),
        body=iter([b"part one, ", b"part two"]),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    assert conn.getresponse().read() == b"part one, part two"


def test_large_responses_arrive_intact(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("GET", setup.url("/big"))
    assert hashlib.sha256(conn.getresponse().read()).digest() == hashlib.sha256(BIG).digest()


def test_pipelined_requests_are_answered_in_order(setup: Setup) -> None:
    with socket.create_connection(("127.0.0.1", setup.http_port), timeout=10) as sock:
        requests = b"".join(
            f"GET {setup.url(p)} HTTP/1.1\r\nHost: web\r\n\r\n".encode() for p in ("/1", "/2")
        )
        sock.sendall(
            requests
            + f"GET {setup.url('/3')} HTTP/1.1\r\nHost: web\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    bodies = [part for part in (b"path /1", b"path /2", b"path /3") if part in received]
    assert bodies == [b"path /1", b"path /2", b"path /3"]
    assert received.index(b"path /1") < received.index(b"path /2") < received.index(b"path /3")


def test_connect_tunnels_carry_bytes_both_ways(setup: Setup) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", setup.http_port, timeout=10)
    conn.set_tunnel("web", setup.web_port)
    conn.request("GET", "/big")
    assert hashlib.sha256(conn.getresponse().read()).digest() == hashlib.sha256(BIG).digest()
    conn.request("POST", "/echo", body=BIG)
    assert conn.getresponse().read() == BIG
    conn.close()


@pytest.mark.parametrize(
    ("url", "status", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", 403, "cloud metadata address"),
        ("http://example.com/", 403, "outside the lab domain"),
        ("http://10.88.5.2:8000/", 403, "admin port"),
        ("http://nobody.lab.internal/", 502, "no machine named nobody.lab.internal"),
    ],
)
def test_refusals_answer_with_a_status_and_the_reason(
    setup: Setup, url: str, status: int, reason: str
) -> None:
    answer = get(setup, url)
    assert answer[0] == status
    assert reason in answer[1]


def test_connect_to_a_refused_destination_is_403(setup: Setup) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", setup.http_port, timeout=10)
    conn.set_tunnel("169.254.169.254", 443)
    with pytest.raises(OSError, match="403"):
        conn.connect()


def test_a_closed_port_on_a_machine_is_502(setup: Setup) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    status, body = get(setup, f"http://web:{closed_port}/")
    assert status == 502
    assert "refused" in body


def test_the_pac_file_names_the_address_the_client_used(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("GET", "/proxy.pac")
    response = conn.getresponse()
    assert response.headers["Content-Type"] == "application/x-ns-proxy-autoconfig"
    assert f'"PROXY 127.0.0.1:{setup.http_port}"' in response.read().decode()


def test_other_local_paths_are_404(setup: Setup) -> None:
    conn = proxy_connection(setup)
    conn.request("GET", "/")
    assert conn.getresponse().status == 404


def test_a_client_over_its_connection_limit_gets_429(setup: Setup) -> None:
    held = [socket.create_connection(("127.0.0.1", setup.http_port)) for _ in range(8)]
    try:
        for sock in held:  # each one is answered, so the proxy has counted it
            sock.sendall(f"GET {setup.url('/held')} HTTP/1.1\r\nHost: web\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        status, body = get(setup, setup.url("/one-too-many"))
        assert status == 429
        assert "8 connections open" in body
    finally:
        for sock in held:
            sock.close()


def test_a_client_outside_the_allowed_networks_gets_403(setup: Setup) -> None:
    policy = setup.forward.policy
    saved = policy.allow
    policy.allow, policy._clients = (ipaddress.IPv4Network("192.0.2.0/24"),), {}
    try:
        status, body = get(setup, setup.url("/"))
        assert status == 403
        assert "not in the allowed networks" in body
    finally:
        policy.allow, policy._clients = saved, {}


def socks_exchange(setup: Setup, greeting: bytes, request: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", setup.socks_port), timeout=10) as sock:
        sock.sendall(greeting)
        chosen = sock.recv(2)
        if chosen != b"\x05\x00":
            return chosen, b""
        sock.sendall(request)
        return chosen, sock.recv(10)


def name_request(name: bytes, port: int, command: int = 1) -> bytes:
    return bytes((5, command, 0, 3, len(name))) + name + port.to_bytes(2)


def test_socks_connects_to_a_lab_name_and_relays(setup: Setup) -> None:
    with socket.create_connection(("127.0.0.1", setup.socks_port), timeout=10) as sock:
        sock.sendall(b"\x05\x01\x00" + name_request(b"web", setup.web_port))
        assert sock.recv(2) == b"\x05\x00"
        reply = sock.recv(10)
        assert reply[:4] == b"\x05\x00\x00\x01"
        sock.sendall(b"GET /socks HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.endswith(b"path /socks")


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (name_request(b"example.com", 80), 0x02),
        (bytes((5, 1, 0, 1, 169, 254, 169, 254, 0, 80)), 0x02),
        (name_request(b"nobody.lab.internal", 80), 0x04),
        (name_request(b"web", 80, command=2), 0x07),
        (bytes((5, 1, 0, 9, 1, 2, 3, 4, 0, 80)), 0x08),
    ],
)
def test_socks_refusals_carry_their_reply_codes(
    setup: Setup, request_bytes: bytes, code: int
) -> None:
    _, reply = socks_exchange(setup, b"\x05\x01\x00", request_bytes)
    assert reply[:2] == bytes((5, code))


def test_socks_without_no_auth_is_refused_at_the_greeting(setup: Setup) -> None:
    chosen, _ = socks_exchange(setup, b"\x05\x01\x02", b"")
    assert chosen == b"\x05\xff"


def test_tunnels_also_work_when_they_stay_in_python(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onebox.proxy import relay

    monkeypatch.setattr(relay, "handoff", lambda *args: None)
    conn = http.client.HTTPConnection("127.0.0.1", setup.http_port, timeout=10)
    conn.set_tunnel("web", setup.web_port)
    conn.request("POST", "/echo", body=BIG)
    assert conn.getresponse().read() == BIG
    conn.close()


def test_tunnels_leave_no_descriptors_behind(setup: Setup) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", setup.http_port, timeout=10)
        conn.set_tunnel("web", setup.web_port)
        conn.request("GET", "/small")
        assert conn.getresponse().read() == b"path /small"
        conn.close()
    deadline = time.monotonic() + 10  # until the proxy has seen every close
    while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= before
