"""DNS: queries per second and latency for the lab's machine names at the gateway,
against dnsmasq answering the same names from a hosts file in a container on the same
network, reached the same way (from the host to its lab address); and p99 at a fixed
5,000 queries per second. One run through the published port shows docker-proxy's cost."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bench import dnsperf, peers, profile
from bench.benchlab import BenchLab, Leftovers, wait_until
from bench.results import Goal, Row, Section, Target
from bench.scale import resolves_at
from bench.stats import Spread

log = logging.getLogger(__name__)

DNSMASQ_HOST = 3
FIXED_QPS = 5000
HOSTS = "/etc/bench/hosts"


@dataclass
class Settings:
    seconds: float
    reps: int
    scratch: Path


def start_dnsmasq(lab: BenchLab, leftovers: Leftovers, addresses: dict[str, str]) -> str:
    hosts = "".join(f"{ip} {name}.{lab.domain}\n" for name, ip in addresses.items())
    command = [
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        f"--addn-hosts={HOSTS}",
        f"--local=/{lab.domain}/",
        "--user=root",
        "--cache-size=10000",
        "--port=53",
    ]
    address = peers.start(lab, leftovers, "dnsmasq", DNSMASQ_HOST, command, {HOSTS: hosts})
    name, ip = next(iter(addresses.items()))
    wait_until(lambda: resolves_at(address, f"{name}.{lab.domain}", ip), "dnsmasq to answer", 30)
    return address


def run(
    lab: BenchLab, leftovers: Leftovers, addresses: dict[str, str], settings: Settings
) -> Section:
    section = Section("dns", f"DNS: {len(addresses)} lab names")
    queries = settings.scratch / "queries.txt"
    queries.write_text("".join(f"{name}.{lab.domain} A\n" for name in addresses))
    dnsmasq = start_dnsmasq(lab, leftovers, addresses)
    ours, theirs = [], []
    for _ in range(settings.reps):
        ours.append(dnsperf.run(lab.gateway_ip, 53, queries, settings.seconds))
        theirs.append(dnsperf.run(dnsmasq, 53, queries, settings.seconds))
    _check_answers(section, ours + theirs)
    qps = section.add(
        Row(
            "dns",
            "queries per second, most it answers",
            "qps",
            Spread.of([s.qps for s in ours]),
            "dnsmasq",
            Spread.of([s.qps for s in theirs]),
            Target(Goal.RATIO_AT_LEAST, 0.9),
        )
    )
    published = dnsperf.run("127.0.0.1", lab.lab.ports["dns"], queries, settings.seconds)
    section.add(
        Row(
            "dns",
            "queries per second through the published port (docker-proxy)",
            "qps",
            Spread.single(published.qps),
            "onebox at its lab address",
            Spread.of([s.qps for s in ours]),
        )
    )
    _latency_rows(section, lab, dnsmasq, queries, settings)
    section.notes.append(
        f"dnsperf from the host to the gateway's lab address {lab.gateway_ip}:53 and to "
        f"dnsmasq's {dnsmasq}:53 on the same bridge, {settings.seconds:g} s per run, "
        "200 queries outstanding, both sides alternating; dnsperf shares the 2 cores with "
        "the server it measures."
    )
    section.notes.append(
        f"Through 127.0.0.1:{lab.lab.ports['dns']} every datagram passes Docker's userland "
        f"proxy: {published.qps:,.0f} qps against {median(ours):,.0f} at the lab "
        "address (onebox medians), so the lab address is the path measured."
    )
    if qps.verdict() != "met":
        pid = lab.gateway_python_pid()
        if pid is not None:
            section.profile = profile.record(
                pid,
                min(settings.seconds, 5),
                lambda: dnsperf.run(lab.gateway_ip, 53, queries, min(settings.seconds, 5)),
                settings.scratch,
            )
    return section


def median(summaries: list[dnsperf.Summary]) -> float:
    return Spread.of([s.qps for s in summaries]).median


def _latency_rows(
    section: Section, lab: BenchLab, dnsmasq: str, queries: Path, settings: Settings
) -> None:
    short = min(settings.seconds, 3)
    ours = dnsperf.run(lab.gateway_ip, 53, queries, short, verbose=True, scratch=settings.scratch)
    theirs = dnsperf.run(dnsmasq, 53, queries, short, verbose=True, scratch=settings.scratch)
    for label, attr in (("p50", "p50_ms"), ("p99", "p99_ms")):
        section.add(
            Row(
                "dns",
                f"{label} latency at the most it answers",
                "ms",
                Spread.single(getattr(ours, attr)),
                "dnsmasq",
                Spread.single(getattr(theirs, attr)),
            )
        )
    fixed: dict[str, list[dnsperf.Summary]] = {lab.gateway_ip: [], dnsmasq: []}
    for _ in range(settings.reps):
        for server, runs in fixed.items():
            runs.append(
                dnsperf.run(
                    server,
                    53,
                    queries,
                    settings.seconds,
                    qps=FIXED_QPS,
                    verbose=True,
                    scratch=settings.scratch,
                )
            )
    fixed_ours, fixed_theirs = fixed[lab.gateway_ip], fixed[dnsmasq]
    for label, attr, target in (
        ("p50", "p50_ms", None),
        ("p99", "p99_ms", Target(Goal.VALUE_AT_MOST, 1.0, "ms")),
    ):
        section.add(
            Row(
                "dns",
                f"{label} latency at {FIXED_QPS:,} qps",
                "ms",
                Spread.of([getattr(s, attr) for s in fixed_ours]),
                "dnsmasq",
                Spread.of([getattr(s, attr) for s in fixed_theirs]),
                target,
            )
        )


def _check_answers(section: Section, summaries: list[dnsperf.Summary]) -> None:
    wrong = [s for s in summaries if not s.all_answered]
    if wrong:
        section.notes.append(
            "Not every query got NOERROR: "
            + "; ".join(f"lost {s.lost}, codes {s.codes}" for s in wrong)
        )
