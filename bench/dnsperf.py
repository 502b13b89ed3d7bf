"""dnsperf (Debian's) runs and what its output says: queries per second from the summary,
and each answer's latency from its verbose lines, for percentiles."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile

_QPS = re.compile(r"Queries per second:\s+([\d.]+)")
_COMPLETED = re.compile(r"Queries completed:\s+(\d+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")
_AVERAGE = re.compile(r"Average Latency \(s\):\s+([\d.]+)")
_CODES = re.compile(r"Response codes:\s+(.+)")
_CODE = re.compile(r"([A-Z]+) (\d+) \(")


@dataclass(frozen=True)
class Summary:
    qps: float
    completed: int
    lost: int
    average_ms: float
    codes: dict[str, int]
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def all_answered(self) -> bool:
        return self.lost == 0 and set(self.codes) == {"NOERROR"}


def parse_summary(text: str) -> Summary:
    """The statistics block dnsperf prints at the end of a run."""
    found = {
        name: rx.search(text)
        for name, rx in (("qps", _QPS), ("done", _COMPLETED), ("lost", _LOST), ("avg", _AVERAGE))
    }
    missing = [name for name, match in found.items() if match is None]
    if missing:
        raise ValueError(f"dnsperf output lacks {', '.join(missing)}:\n{text[-600:]}")
    codes_line = _CODES.search(text)
    codes = {code: int(n) for code, n in _CODE.findall(codes_line.group(1))} if codes_line else {}
    return Summary(
        qps=float(found["qps"].group(1)),  # type: ignore[union-attr]
        completed=int(found["done"].group(1)),  # type: ignore[union-attr]
        lost=int(found["lost"].group(1)),  # type: ignore[union-attr]
        average_ms=float(found["avg"].group(1)) * 1000,  # type: ignore[union-attr]
        codes=codes,
    )


def latencies_ms(lines: Iterable[str]) -> list[float]:
    """Each answer's latency from `-v` lines like `> NOERROR web.lab.internal A 0.000130`."""
    found = []
    for line in lines:
        if line.startswith("> "):
            parts = line.split()
            if len(parts) >= 5:
                found.append(float(parts[-1]) * 1000)
    return found


def with_percentiles(summary: Summary, latencies: list[float]) -> Summary:
    if not latencies:
        return summary
    return Summary(
        summary.qps,
        summary.completed,
        summary.lost,
        summary.average_ms,
        summary.codes,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


def command(
    server: str,
    port: int,
    queries: Path,
    seconds: float,
    *,
    qps: int | None = None,
    verbose: bool = False,
    outstanding: int = 200,
) -> list[str]:
    args = [
        "dnsperf",
        "-s",
        server,
        "-p",
        str(port),
        "-d",
        str(queries),
        "-l",
        f"{seconds:g}",
        "-q",
        str(outstanding),
        "-t",
        "2",
    ]
    if qps:
        args += ["-Q", str(qps)]
    if verbose:
        args.append("-v")
    return args


def run(
    server: str,
    port: int,
    queries: Path,
    seconds: float,
    *,
    qps: int | None = None,
    verbose: bool = False,
    scratch: Path | None = None,
) -> Summary:
    """One bounded run; verbose runs write their per-answer lines to a file in `scratch`
    and come back with p50 and p99."""
    args = command(server, port, queries, seconds, qps=qps, verbose=verbose)
    if not verbose:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
        return parse_summary(done.stdout)
    out = (scratch or queries.parent) / "dnsperf-verbose.txt"
    with out.open("w") as sink:
        subprocess.run(
            args, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=seconds + 30, check=True
        )
    text = out.read_text()
    out.unlink()
    return with_percentiles(parse_summary(text), latencies_ms(text.splitlines()))
