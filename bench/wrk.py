"""wrk (Debian's) runs and what its output says: requests per second, latency
percentiles, bytes read, and errors."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")

# Sends every request in absolute form to the proxy it connects to: wrk has no proxy option.
PROXY_SCRIPT = """\
wrk.path = os.getenv("BENCH_TARGET_URL")
wrk.headers["Host"] = os.getenv("BENCH_TARGET_HOST")
"""


@dataclass(frozen=True)
class Summary:
    rps: float
    requests: int
    seconds: float
    bytes_read: int
    p50_ms: float
    p99_ms: float
    bad_answers: int  # answers other than 2xx and 3xx
    socket_errors: int  # connect, read, write errors and timeouts

    @property
    def mib_per_s(self) -> float:
        return self.bytes_read / 1024**2 / self.seconds if self.seconds else 0.0


def parse(text: str) -> Summary:
    rps, total = _RPS.search(text), _TOTAL.search(text)
    percentiles = {int(q): float(v) * _UNITS_TIME[u] for q, v, u in _PERCENTILE.findall(text)}
    if rps is None or total is None or 50 not in percentiles or 99 not in percentiles:
        raise ValueError(f"wrk output lacks its summary (run with --latency):\n{text[-600:]}")
    bad = int(m.group(1)) if (m := _NON_2XX.search(text)) else 0
    socket = _SOCKET.search(text)
    return Summary(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS_TIME[total.group(3)] / 1000,
        bytes_read=int(float(total.group(4)) * _UNITS_SIZE[total.group(5)]),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        bad_answers=bad,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def command(
    url: str,
    seconds: float,
    *,
    host: str = "",
    connections: int = 64,
    threads: int = 2,
    script: Path | None = None,
) -> list[str]:
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if host:
        args += ["-H", f"Host: {host}"]
    if script:
        args += ["-s", str(script)]
    return [*args, url]


def run(
    url: str,
    seconds: float,
    *,
    host: str = "",
    connections: int = 64,
    script: Path | None = None,
    env: dict[str, str] | None = None,
) -> Summary:
    args = command(url, seconds, host=host, connections=connections, script=script)
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=seconds + 30, check=True, env=env
    )
    return parse(done.stdout)
