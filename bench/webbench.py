"""Reverse and forward proxies. Reverse: requests per second and p99 for a small page
and a 1 MiB body, by name through the gateway, against the same backend directly and
through nginx and HAProxy configured by hand; the gateway's memory while 1 GiB goes
through. Forward: small requests per second and CONNECT MB/s through the gateway's
forward proxy, against tinyproxy and squid. Every client is on the host and every
address is on the bench lab's network."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from bench import peers, profile, web, wrk
from bench.benchlab import BenchLab, Leftovers, wait_until
from bench.results import Goal, Row, Section, Target
from bench.stats import Spread
from onebox.machines import machine as machines

log = logging.getLogger(__name__)

ROOT = "/srv/bench"
SMALL = "/small.html"
BIG = "/big.bin"
HUGE = "/huge.bin"
HUGE_MIB = 512
GIB = 1024**3
NGINX_HOST, HAPROXY_HOST, TINYPROXY_HOST, SQUID_HOST = 4, 5, 6, 7

BACKEND_CONF = f"""\
worker_processes auto;
pid /run/bench-backend.pid;
error_log stderr warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    server {{ listen 80 default_server; root {ROOT}; }}
}}
"""

NGINX_PROXY_CONF = """\
worker_processes auto;
pid /run/bench-nginx.pid;
error_log stderr warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream backend {{ server {backend}:80; keepalive 32; }}
    server {{
        listen 80 default_server;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
        }}
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 4000
    nbthread 2
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend web
    bind :80
    default_backend backend
backend backend
    http-reuse always
    server web {backend}:80
"""

TINYPROXY_CONF = """\
Port 8888
Listen 0.0.0.0
Timeout 600
MaxClients 1000
Allow 0.0.0.0/0
DisableViaHeader Yes
LogLevel Critical
"""

SQUID_CONF = """\
http_port 3128
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_log /dev/null
pid_filename /run/bench-squid.pid
dns_nameservers 127.0.0.1
visible_hostname bench-squid
via off
forwarded_for delete
shutdown_lifetime 1 seconds
"""


@dataclass
class Settings:
    seconds: float
    reps: int
    scratch: Path


def start_backend(lab: BenchLab) -> str:
    """The web server behind every proxy: a onebox machine `web` running nginx."""
    files = {
        "/etc/bench/backend.conf": BACKEND_CONF.encode(),
        f"{ROOT}{SMALL}": b"<!doctype html><title>bench</title><p>hello from web</p>\n",
        f"{ROOT}{BIG}": os.urandom(1024**2),
    }
    command = [
        "sh",
        "-c",
        f"truncate -s {HUGE_MIB}M {ROOT}{HUGE} && exec nginx -c "
        "/etc/bench/backend.conf -g 'daemon off;'",
    ]
    request = machines.CreateRequest(name="web", image=peers.IMAGE, command=command, files=files)
    address = str(machines.create(lab.engine, lab.lab, request).ip)
    wait_until(lambda: web.get(address, 80, SMALL), "the backend to answer", 30)
    wait_until(lambda: _by_name(lab), "the gateway to proxy web by name", 60)
    return address


def _by_name(lab: BenchLab) -> bool:
    answer = web.get(lab.gateway_ip, 80, SMALL, f"web.{lab.domain}")
    return bool(answer and answer[0] == 200)


class Reverse:
    def __init__(
        self, lab: BenchLab, leftovers: Leftovers, backend: str, settings: Settings
    ) -> None:
        self.lab, self.backend, self.settings = lab, backend, settings
        conf = {"backend": backend}
        self.targets = {
            "onebox": (lab.gateway_ip, f"web.{lab.domain}"),
            "nginx": (
                peers.start(
                    lab,
                    leftovers,
                    "nginx",
                    NGINX_HOST,
                    ["nginx", "-c", "/etc/bench/nginx.conf", "-g", "daemon off;"],
                    {"/etc/bench/nginx.conf": NGINX_PROXY_CONF.format(**conf)},
                    80,
                ),
                backend,
            ),
            "HAProxy": (
                peers.start(
                    lab,
                    leftovers,
                    "haproxy",
                    HAPROXY_HOST,
                    ["haproxy", "-db", "-f", "/etc/bench/haproxy.cfg"],
                    {"/etc/bench/haproxy.cfg": HAPROXY_CONF.format(**conf)},
                    80,
                ),
                backend,
            ),
            "backend directly": (backend, backend),
        }

    def measure(self, path: str) -> dict[str, list[wrk.Summary]]:
        found: dict[str, list[wrk.Summary]] = {name: [] for name in self.targets}
        for _ in range(self.settings.reps):
            for name, (address, host) in self.targets.items():
                found[name].append(
                    wrk.run(f"http://{address}{path}", self.settings.seconds, host=host)
                )
        return found

    def run(self) -> Section:
        section = Section("reverse", "Reverse proxy")
        for label, path in (("small page", SMALL), ("1 MiB body", BIG)):
            found = self.measure(path)
            ours = found["onebox"]
            for peer in ("nginx", "HAProxy", "backend directly"):
                target = (
                    Target(Goal.RATIO_AT_LEAST, 0.9)
                    if path == SMALL and peer != "backend directly"
                    else None
                )
                section.add(
                    Row(
                        "reverse",
                        f"{label}: requests per second",
                        "req/s",
                        Spread.of([s.rps for s in ours]),
                        peer,
                        Spread.of([s.rps for s in found[peer]]),
                        target,
                    )
                )
            for peer in ("nginx", "HAProxy"):
                section.add(
                    Row(
                        "reverse",
                        f"{label}: p99 latency",
                        "ms",
                        Spread.of([s.p99_ms for s in ours]),
                        peer,
                        Spread.of([s.p99_ms for s in found[peer]]),
                    )
                )
            _errors(section, label, found)
        published = wrk.run(
            f"http://127.0.0.1:{self.lab.lab.ports['http']}{SMALL}",
            self.settings.seconds,
            host=f"web.{self.lab.domain}",
        )
        section.add(
            Row(
                "reverse",
                "small page through the published port (docker-proxy)",
                "req/s",
                Spread.single(published.rps),
                "onebox at its lab address",
                section.rows[0].onebox,
            )
        )
        self._memory(section)
        section.notes.append(
            f"wrk -t2 -c64 --latency, {self.settings.seconds:g} s per run, the four targets "
            "taking turns; onebox by name (Host web.DOMAIN) at the gateway's lab address, the "
            "peers by address; nginx and HAProxy with upstream keep-alive, nginx with "
            "proxy_buffering off as the gateway's nginx has it. The backend is nginx in a "
            "onebox machine."
        )
        return section

    def _memory(self, section: Section) -> None:
        """The gateway's memory idle, after a short warm-up that opens the connections,
        and at its peak while at least 1 GiB of 1 MiB bodies goes through it."""
        url, host = f"http://{self.lab.gateway_ip}{BIG}", f"web.{self.lab.domain}"
        idle = self.lab.gateway_memory_mb()
        wrk.run(url, 1, host=host)
        warm = self.lab.gateway_memory_mb()
        peak = [warm]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(self.lab.gateway_memory_mb())

        sampler = threading.Thread(target=sample)
        sampler.start()
        moved = 0
        try:
            for _ in range(6):
                moved += wrk.run(url, self.settings.seconds, host=host).bytes_read
                if moved >= GIB:
                    break
        finally:
            done.set()
            sampler.join()
        section.add(
            Row(
                "reverse",
                "gateway memory growth over 1 GiB of 1 MiB bodies",
                "MB",
                Spread.single(max(peak) - warm),
                target=Target(Goal.VALUE_AT_MOST, 20, "MB"),
            )
        )
        section.add(
            Row(
                "reverse",
                "gateway memory growth from idle to the peak",
                "MB",
                Spread.single(max(peak) - idle),
            )
        )
        section.notes.append(
            f"Memory: {idle:.1f} MB idle, {warm:.1f} MB after a 1 s warm-up with 64 "
            f"connections, {max(peak):.1f} MB at the peak of {len(peak)} samples while "
            f"{moved / GIB:.1f} GiB went through; the first figure is growth after the "
            "warm-up, the second from idle (per-connection buffers of nginx included)."
        )


class Forward:
    def __init__(
        self, lab: BenchLab, leftovers: Leftovers, backend: str, settings: Settings
    ) -> None:
        self.lab, self.backend, self.settings = lab, backend, settings
        self.proxies = {
            "onebox": (lab.gateway_ip, 3128),
            "tinyproxy": (
                peers.start(
                    lab,
                    leftovers,
                    "tinyproxy",
                    TINYPROXY_HOST,
                    ["tinyproxy", "-d", "-c", "/etc/bench/tinyproxy.conf"],
                    {"/etc/bench/tinyproxy.conf": TINYPROXY_CONF},
                    8888,
                ),
                8888,
            ),
            "squid": (
                peers.start(
                    lab,
                    leftovers,
                    "squid",
                    SQUID_HOST,
                    ["squid", "-N", "-f", "/etc/bench/squid.conf"],
                    {"/etc/bench/squid.conf": SQUID_CONF},
                    3128,
                ),
                3128,
            ),
        }
        self.script = settings.scratch / "proxy.lua"
        self.script.write_text(wrk.PROXY_SCRIPT)

    def small(self, proxy: str, seconds: float) -> wrk.Summary:
        address, port = self.proxies[proxy]
        env = {
            **os.environ,
            "BENCH_TARGET_URL": f"http://{self.backend}{SMALL}",
            "BENCH_TARGET_HOST": self.backend,
        }
        return wrk.run(f"http://{address}:{port}/", seconds, script=self.script, env=env)

    def tunnel_mb_s(self, proxy: str | None) -> float:
        """MB/s of one large download through a CONNECT tunnel (or straight, for None)."""
        args = [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download}",
            "--max-time",
            "60",
            "--noproxy",
            "",
        ]
        if proxy is not None:
            address, port = self.proxies[proxy]
            args += ["--proxytunnel", "-x", f"http://{address}:{port}"]
        else:
            args += ["--noproxy", "*"]
        done = subprocess.run(
            [*args, f"http://{self.backend}{HUGE}"],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
            env=_no_proxy_env(),
        )
        return float(done.stdout) / 1e6

    def run(self) -> Section:
        section = Section("forward", "Forward proxy")
        small: dict[str, list[wrk.Summary]] = {p: [] for p in self.proxies}
        tunnel: dict[str, list[float]] = {p: [] for p in self.proxies}
        for _ in range(self.settings.reps):
            for proxy in self.proxies:
                small[proxy].append(self.small(proxy, self.settings.seconds))
                tunnel[proxy].append(self.tunnel_mb_s(proxy))
        direct = [self.tunnel_mb_s(None) for _ in range(self.settings.reps)]
        targets = {"tinyproxy": (0.8, 1.5)}
        for peer in ("tinyproxy", "squid"):
            small_target, tunnel_target = targets.get(peer, (None, None))
            section.add(
                Row(
                    "forward",
                    "small requests per second",
                    "req/s",
                    Spread.of([s.rps for s in small["onebox"]]),
                    peer,
                    Spread.of([s.rps for s in small[peer]]),
                    Target(Goal.RATIO_AT_LEAST, small_target) if small_target else None,
                )
            )
            section.add(
                Row(
                    "forward",
                    f"CONNECT tunnel, one {HUGE_MIB} MiB download",
                    "MB/s",
                    Spread.of(tunnel["onebox"]),
                    peer,
                    Spread.of(tunnel[peer]),
                    Target(Goal.RATIO_AT_LEAST, tunnel_target) if tunnel_target else None,
                )
            )
        section.add(
            Row(
                "forward",
                "CONNECT tunnel against no proxy at all",
                "MB/s",
                Spread.of(tunnel["onebox"]),
                "curl straight to the backend",
                Spread.of(direct),
            )
        )
        _errors(section, "Small requests", small)
        section.notes.append(
            f"Small requests: wrk -t2 -c64 with every request in absolute form "
            f"(http://{self.backend}{SMALL}) to the proxy, {self.settings.seconds:g} s per run. "
            f"CONNECT: curl --proxytunnel downloading {HUGE_MIB} MiB (a sparse file nginx "
            "sends with sendfile) to /dev/null; curl runs on the same 2 cores."
        )
        if section.rows[0].verdict() != "met":
            pid = self.lab.gateway_python_pid()
            if pid is not None:
                seconds = min(self.settings.seconds, 5)
                section.profile = profile.record(
                    pid, seconds, lambda: self.small("onebox", seconds), self.settings.scratch
                )
        return section


def _errors(section: Section, label: str, found: dict[str, list[wrk.Summary]]) -> None:
    for name, runs in found.items():
        bad, broken = sum(s.bad_answers for s in runs), sum(s.socket_errors for s in runs)
        if bad or broken:
            section.notes.append(
                f"{label} through {name}: {bad:,} answers not 2xx/3xx and "
                f"{broken:,} socket errors (wrk's count) over all runs."
            )


def _no_proxy_env() -> dict[str, str]:
    """The host's proxy settings must not redirect the bench's own requests."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
