"""Scenario 6: every machine has a URL by name through the gateway's reverse proxy, over
HTTP and HTTPS from the lab CA; extra and wildcard names; WebSockets, keep-alive, chunked
bodies, HTTP/1.0, 100 MiB both ways with the gateway's memory flat; 502 and 404 pages;
and `onebox share` moving the entry points to every host address and back. All traffic
goes to 127.0.0.1 (the published ports) and never to a name lookup outside the lab."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import secrets
import socket
import ssl
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PREFIX, onebox
from tests.e2e import webapp
from tests.e2e.dnsclient import addresses, ask

PAGE = "hello from web"
BODY = f"{PAGE}\n"
BIG_MIB = 100
# Far below the 100 MiB that passes through: a proxy holding a body in memory fails.
MEMORY_GROWTH_LIMIT = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def app_image(engine: Any) -> Iterator[str]:
    """The gateway image with its entry point cleared, to run webapp.py with python3."""
    tag = f"{PREFIX}webapp-{secrets.token_hex(3)}:latest"
    dockerfile = b"FROM onebox/gateway:latest\nENTRYPOINT []\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    image, _ = engine.client.images.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, labels={"onebox.test": "1"}
    )
    try:
        yield tag
    finally:  # the lab may still run machines from it: those are this test's own, by id
        users = engine.client.containers.list(
            all=True, filters={"ancestor": image.id, "label": "onebox.test=1"}
        )
        for container in users:
            engine.client.api.remove_container(container.id, force=True, v=True)
        engine.client.images.remove(image.id, force=True)


def create(
    lab: Any, name: str, image: str, *command: str, options: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`onebox machine create`, the machine's command after `--`."""
    return onebox(
        "machine",
        "create",
        "--lab",
        lab.name,
        "--image",
        image,
        "--json",
        *options,
        name,
        "--",
        *command,
    ).json()


def httpd(port: int = 80) -> tuple[str, ...]:
    return (
        "sh",
        "-c",
        f"mkdir -p /www && echo '{PAGE}' > /www/index.html && " f"exec httpd -f -p {port} -h /www",
    )


@pytest.fixture(scope="module")
def site(lab: Any, busybox_image: str, app_image: str) -> dict[str, Any]:
    create(lab, "web", busybox_image, *httpd(), options=("--url", "shop", "--url", "*.shop"))
    create(lab, "alt", busybox_image, *httpd(8080), options=("--web-port", "8080"))
    create(lab, "sleepy", busybox_image, *httpd())
    source = Path(webapp.__file__).read_text()
    create(lab, "app", app_image, "python3", "-c", source, "8000", options=("--web-port", "8000"))
    gateway = lab.info["gateway"]
    info = {
        "http": int(gateway["http_port"]),
        "https": int(gateway["https_port"]),
        "domain": lab.domain,
    }
    wait_status(info, f"app.{lab.domain}", "/headers", 200)
    wait_status(info, f"web.{lab.domain}", "/", 200)
    return info


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "60", *args], capture_output=True, timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done


def get(
    info: dict[str, Any], host: str, path: str = "/", *args: str, https: bool = False
) -> tuple[int, str]:
    """Status and body of a request by name, sent to the published port on loopback."""
    scheme, port = ("https", info["https"]) if https else ("http", info["http"])
    done = curl(
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--resolve",
        f"{host}:{port}:127.0.0.1",
        *args,
        f"{scheme}://{host}:{port}{path}",
    )
    body, _, code = done.stdout.decode().rpartition("\n")
    return int(code), body


def wait_status(
    info: dict[str, Any], host: str, path: str, status: int, seconds: float = 30.0
) -> str:
    """Waits for the proxy to follow a change; the deadline only stops a broken test."""
    deadline = time.monotonic() + seconds
    while True:
        code, body = get(info, host, path)
        if code == status or time.monotonic() > deadline:
            assert code == status, body
            return body
        time.sleep(0.2)


def test_a_machine_answers_by_name_over_http(site: dict[str, Any]) -> None:
    assert get(site, f"web.{site['domain']}") == (200, BODY)


def test_the_web_port_label_picks_the_port_behind_the_name(site: dict[str, Any]) -> None:
    assert get(site, f"alt.{site['domain']}") == (200, BODY)


def test_a_python_client_with_the_port_in_host_gets_the_page(site: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site["http"], timeout=10)
    conn.request("GET", "/", headers={"Host": f"web.{site['domain']}:{site['http']}"})
    response = conn.getresponse()
    assert (response.status, response.read().decode()) == (200, BODY)


def test_an_http_10_client_gets_the_page(site: dict[str, Any]) -> None:
    assert get(site, f"web.{site['domain']}", "/", "--http1.0") == (200, BODY)
    code, body = get(site, f"app.{site['domain']}", "/chunked", "--http1.0")
    assert (code, body) == (200, "one two three")


def test_keep_alive_carries_many_requests_on_one_connection(site: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site["http"], timeout=10)
    conn.connect()
    first = conn.sock
    for _ in range(5):
        conn.request("GET", "/headers", headers={"Host": f"app.{site['domain']}"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Connection", "").lower() != "close"
        response.read()
    assert conn.sock is first


def test_chunked_bodies_pass_both_ways(site: dict[str, Any], tmp_path: Path) -> None:
    assert get(site, f"app.{site['domain']}", "/chunked") == (200, "one two three")
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"x" * 300_000)
    code, body = get(
        site,
        f"app.{site['domain']}",
        "/upload",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        f"@{upload}",
    )
    assert code == 200
    assert json.loads(body)["bytes"] == 300_000


def test_forwarding_headers_tell_the_app_who_asked_and_how(site: dict[str, Any]) -> None:
    host = f"app.{site['domain']}"
    code, body = get(site, host, "/headers")
    headers = json.loads(body)
    client = headers["x-forwarded-for"]
    assert headers["host"] == f"{host}:{site['http']}"
    assert headers["x-forwarded-host"] == f"{host}:{site['http']}"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["forwarded"] == f'for={client};host="{host}:{site["http"]}";proto=http'


def test_a_websocket_echoes_through_the_proxy(site: dict[str, Any]) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", site["http"]), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: app.{site['domain']}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        reader = sock.makefile("rb")
        status = reader.readline()
        assert b" 101 " in status
        while reader.readline() not in (b"\r\n", b""):
            pass
        for message in (b"hello", b"x" * 70_000):
            sock.sendall(webapp.frame(0x1, message, mask=os.urandom(4)))
            head = reader.read(2)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(reader.read(2), "big")
            elif size == 127:
                size = int.from_bytes(reader.read(8), "big")
            assert (head[0] & 0x0F, reader.read(size)) == (0x1, message)


class MemorySampler:
    """The gateway container's memory (without page cache), sampled from its cgroup in
    a thread while a transfer runs."""

    def __init__(self, container_id: str) -> None:
        self.stat = next(
            (
                p
                for p in (
                    Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.stat"),
                    Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat"),
                    Path(f"/sys/fs/cgroup/docker/{container_id}/memory.stat"),
                )
                if p.exists()
            ),
            None,
        )
        if self.stat is None:
            pytest.skip("no cgroup memory.stat found for the gateway")
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> int:
        assert self.stat is not None
        values = dict(line.split() for line in self.stat.read_text().splitlines())
        for key in ("total_rss", "anon"):  # cgroup v1, then v2
            if key in values:
                return int(values[key])
        raise AssertionError(f"no anonymous memory figure in {self.stat}")

    def __enter__(self) -> MemorySampler:
        self.baseline = self.read()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.read())
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_100_mib_up_and_down_stream_with_flat_gateway_memory(
    lab: Any, engine: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    upload = tmp_path / "up.bin"
    with upload.open("wb") as handle:
        for _ in range(BIG_MIB):
            handle.write(webapp.BLOCK)
    expected = hashlib.sha256(upload.read_bytes()).hexdigest()
    download = tmp_path / "down.bin"
    host = f"app.{site['domain']}"
    gateway = engine.gateway(lab.name)

    with MemorySampler(gateway.id) as memory:
        code, body = get(site, host, "/upload", "--data-binary", f"@{upload}")
        curl(
            "-o",
            str(download),
            "--resolve",
            f"{host}:{site['http']}:127.0.0.1",
            f"http://{host}:{site['http']}/big?{BIG_MIB}",
        )

    assert code == 200
    assert json.loads(body) == {"bytes": BIG_MIB << 20, "sha256": expected, "chunked": False}
    assert download.stat().st_size == BIG_MIB << 20
    assert hashlib.sha256(download.read_bytes()).hexdigest() == expected
    assert len(memory.samples) > 1
    assert max(memory.samples) - memory.baseline < MEMORY_GROWTH_LIMIT


def test_extra_names_and_wildcards_reach_the_machine(lab: Any, site: dict[str, Any]) -> None:
    domain = site["domain"]
    assert get(site, f"shop.{domain}") == (200, BODY)
    assert get(site, f"a.b.shop.{domain}") == (200, BODY)
    gateway_ip = lab.info["gateway"]["ip"]
    assert addresses(ask(f"shop.{domain}", lab.dns_port)) == [gateway_ip]
    assert addresses(ask(f"x.shop.{domain}", lab.dns_port)) == [gateway_ip]


def test_unknown_name_gets_404_listing_the_lab_urls(site: dict[str, Any]) -> None:
    domain = site["domain"]
    code, body = get(site, f"nobody.{domain}")
    assert code == 404
    for name in (f"web.{domain}", f"shop.{domain}", f"*.shop.{domain}", f"app.{domain}"):
        assert name in body


def test_stopped_machine_gets_502_naming_it(lab: Any, site: dict[str, Any]) -> None:
    onebox("machine", "stop", "--lab", lab.name, "sleepy")
    body = wait_status(site, f"sleepy.{site['domain']}", "/", 502)
    assert "sleepy" in body and "stopped" in body
    onebox("machine", "start", "--lab", lab.name, "sleepy")
    assert wait_status(site, f"sleepy.{site['domain']}", "/", 200).strip() == PAGE


@pytest.fixture(scope="module")
def ca_file(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    onebox("ca", "export", "--lab", lab.name, "--out", str(path))
    return path


def test_https_verifies_with_the_exported_ca(site: dict[str, Any], ca_file: Path) -> None:
    host = f"web.{site['domain']}"
    assert get(site, host, "/", "--cacert", str(ca_file), https=True) == (200, BODY)
    code, body = get(
        site, f"app.{site['domain']}", "/headers", "--cacert", str(ca_file), https=True
    )
    assert json.loads(body)["x-forwarded-proto"] == "https"


def test_https_wildcard_name_verifies_in_python(site: dict[str, Any], ca_file: Path) -> None:
    host = f"deep.shop.{site['domain']}"
    context = ssl.create_default_context(cafile=str(ca_file))
    conn = http.client.HTTPSConnection("127.0.0.1", site["https"], context=context, timeout=10)
    conn.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", site["https"])), server_hostname=host
    )
    conn.request("GET", "/", headers={"Host": host})
    response = conn.getresponse()
    assert (response.status, response.read().decode()) == (200, BODY)


def test_https_refuses_a_name_without_the_ca(site: dict[str, Any]) -> None:
    host = f"web.{site['domain']}"
    done = curl(
        "--resolve",
        f"{host}:{site['https']}:127.0.0.1",
        f"https://{host}:{site['https']}/",
        check=False,
    )
    assert done.returncode == 60  # curl: peer certificate cannot be authenticated


def bindings(engine: Any, lab: Any) -> set[str]:
    gateway = engine.gateway(lab.name)
    ports = gateway.attrs["HostConfig"]["PortBindings"]
    return {binding["HostIp"] for entries in ports.values() for binding in entries}


def test_share_publishes_everywhere_and_off_restores_loopback(
    lab: Any, engine: Any, site: dict[str, Any], ca_file: Path
) -> None:
    before = onebox("status", "--lab", lab.name, "--json").json()["gateway"]
    shared = onebox("share", "--lab", lab.name, "--allow", "192.0.2.0/24", "--json").json()
    try:
        assert bindings(engine, lab) == {"0.0.0.0"}
        assert shared["gateway"]["bind"] == "0.0.0.0"
        assert shared["gateway"]["allow"] == ["192.0.2.0/24"]
        env = engine.gateway(lab.name).attrs["Config"]["Env"]
        assert "ONEBOX_ALLOW=192.0.2.0/24" in env
        for key in ("http_port", "https_port", "proxy_port", "socks_port", "dns_port"):
            assert shared["gateway"][key] == before[key]
    finally:
        off = onebox("share", "--lab", lab.name, "--off", "--json").json()
    assert bindings(engine, lab) == {"127.0.0.1"}
    assert off["gateway"]["bind"] == "127.0.0.1"
    # The recreated gateway keeps its data volume, so the CA users trust stays the same.
    assert wait_status(site, f"web.{site['domain']}", "/", 200).strip() == PAGE
    again = Path(str(ca_file) + ".again")
    onebox("ca", "export", "--lab", lab.name, "--out", str(again))
    assert again.read_bytes() == ca_file.read_bytes()
