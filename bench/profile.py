"""Brief profiles of the gateway under load with py-spy (run from the host against the
gateway's Python process), summed by the frame where the time was spent."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PY_SPY = str(Path(sys.executable).parent / "py-spy")


def top_frames(raw: str, count: int = 8) -> list[str]:
    """The frames holding most samples, from py-spy's raw (collapsed stack) output:
    lines of `frame;frame;...;leaf N`. Each line reads `share  function (file:line)`."""
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        leaf = stack.split(";")[-1]
        own[_short(leaf)] += int(samples)
        total += int(samples)
    if not total:
        return ["(no samples)"]
    return [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]


def _short(frame: str) -> str:
    """`handle (/usr/lib/python3/dist-packages/onebox/dns/server.py:120)` keeps the
    path from the package on."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "dist-packages/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where}" if where else name


def record(pid: int, seconds: float, load: Callable[[], object], scratch: Path) -> list[str]:
    """Samples `pid` for `seconds` while `load` runs; the top frames, or why there are none."""
    out = scratch / f"py-spy-{pid}.txt"
    args = [
        PY_SPY,
        "record",
        "--pid",
        str(pid),
        "--duration",
        f"{seconds:.0f}",
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    worker = threading.Thread(target=load)
    try:
        spy = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        return [f"(py-spy could not run: {exc}; install it with `bash bench/setup`)"]
    worker.start()
    _, err = spy.communicate(timeout=seconds + 60)
    worker.join()
    if spy.returncode != 0 or not out.exists():
        return [f"(py-spy failed: {err.strip()[-300:]})"]
    return top_frames(out.read_text())
