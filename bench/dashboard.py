"""Dashboard: server time of the machines page and of `GET /api/machines` with the lab's
machines, as time to the first byte of the answer on a kept-open connection from the
host to the gateway's lab address (no docker-proxy in the way). There is no peer."""

from __future__ import annotations

import http.client
import json
import logging
import time

from bench.benchlab import BenchLab, onebox
from bench.results import Goal, Row, Section, Target
from bench.stats import Spread

log = logging.getLogger(__name__)

PORT = 8000


def _login(lab: BenchLab) -> str:
    """A session cookie for a fresh admin password."""
    password = json.loads(onebox("dashboard", "password", "--reset", "--lab", lab.name, "--json"))[
        "password"
    ]
    connection = http.client.HTTPConnection(lab.gateway_ip, PORT, timeout=10)
    body = json.dumps({"username": "admin", "password": password})
    connection.request(
        "POST",
        "/api/session",
        body=body,
        headers={"Host": lab.gateway_ip, "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"dashboard login answered {response.status}")
    cookies = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
    return "; ".join(cookies)


def timed(lab: BenchLab, path: str, cookie: str, count: int) -> tuple[list[float], bytes]:
    """Milliseconds from sending each request to its answer's first bytes; the last body."""
    connection = http.client.HTTPConnection(lab.gateway_ip, PORT, timeout=30)
    headers = {"Host": lab.gateway_ip, "Cookie": cookie}
    times, body = [], b""
    for _ in range(count + 1):  # the first one warms the connection and is not counted
        begin = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        first = time.perf_counter()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        times.append((first - begin) * 1000)
    connection.close()
    return times[1:], body


def run(lab: BenchLab, machines: int, count: int) -> Section:
    section = Section("dashboard", f"Dashboard with {machines} machines")
    cookie = _login(lab)
    page, html = timed(lab, "/", cookie, count)
    api, listing = timed(lab, "/api/machines", cookie, count)
    listed = json.loads(listing)
    shown = len(listed) if isinstance(listed, list) else len(listed.get("machines", []))
    section.add(
        Row(
            "dashboard",
            f"machines page, {machines} machines, server time",
            "ms",
            Spread.of(page),
            target=Target(Goal.VALUE_AT_MOST, 50, "ms"),
        )
    )
    section.add(
        Row(
            "dashboard",
            f"GET /api/machines, {machines} machines, server time",
            "ms",
            Spread.of(api),
        )
    )
    section.notes.append(
        f"Time to first byte over {count} requests each on one kept-open connection to "
        f"{lab.gateway_ip}:{PORT}; the page was {len(html) / 1024:.0f} KiB, the API listed "
        f"{shown} machines ({len(listing) / 1024:.0f} KiB)."
    )
    return section
