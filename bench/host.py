"""What the figures were taken on: cores, memory, kernel, Docker, Python, the versions
of the peers and load generators, the onebox commit, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from onebox.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
HOST_TOOLS = ("dnsperf", "wrk", "curl")


def _first(path: str, key: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def _dpkg(packages: tuple[str, ...]) -> dict[str, str]:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *packages],
        capture_output=True,
        text=True,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip()


def facts(
    engine: Engine, peer_versions: dict[str, str], gateway_image: str, gateway_python: str
) -> dict[str, str]:
    memory_kib = int(_first("/proc/meminfo", "MemTotal").split()[0])
    version = engine.client.version()
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "CPU": f"{os.cpu_count()} cores, {_first('/proc/cpuinfo', 'model name')}",
        "memory": f"{memory_kib / 1024**2:.1f} GiB",
        "kernel": platform.release(),
        "Docker engine": f"{version.get('Version', '?')} (API {version.get('ApiVersion', '?')})",
        "Python (host)": platform.python_version(),
        "Python (gateway)": gateway_python,
        "peers (Debian packages in onebox/bench-peers)": ", ".join(
            f"{k} {v}" for k, v in sorted(peer_versions.items())
        ),
        "load generators (host)": ", ".join(
            f"{k} {v}" for k, v in sorted(_dpkg(HOST_TOOLS).items())
        ),
        "onebox": f"commit {_git('rev-parse', '--short', 'HEAD')}"
        + (
            " with uncommitted changes in the working tree (the gateway image is built " "from it)"
            if dirty
            else ""
        ),
        "gateway image": gateway_image,
    }


def busy() -> str:
    """Load averages and the containers running that are not the bench's."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"
