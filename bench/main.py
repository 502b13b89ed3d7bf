"""`bench/run`: every benchmark in one bounded run, then bench/RESULTS.md. Sections run
in an order that lets the many machines of the scale figure serve the DNS and dashboard
figures too. A section that fails is written down as not measured; the bench lab and
everything else the run made go at the end, by id, whatever happened."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import benchlab, dashboard, dnsbench, host, peers, start, webbench
from bench.benchlab import BenchLab, Leftovers
from bench.results import Report, Section
from bench.scale import Scale, remove_lab_machines

log = logging.getLogger("bench")

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTIONS = ("start", "scale", "dns", "dashboard", "reverse", "forward")


@dataclass(frozen=True)
class Plan:
    start_count: int = 20
    scale_count: int = 200
    seconds: float = 8.0  # one DNS load step; at most 20 by the issue
    web_seconds: float = 5.0  # one HTTP load step
    reps: int = 3
    requests: int = 50  # dashboard requests of each kind
    only: tuple[str, ...] = SECTIONS

    @classmethod
    def quick(cls, only: tuple[str, ...]) -> Plan:
        return cls(
            start_count=3,
            scale_count=20,
            seconds=2.0,
            web_seconds=2.0,
            reps=3,
            requests=10,
            only=only,
        )


def parse_args(argv: list[str]) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few machines and 2 s load steps: checks the harness, not onebox",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections of {', '.join(SECTIONS)}",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args(argv)
    only = tuple(s for s in args.only.split(",") if s)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}; pick from {SECTIONS}")
    return (Plan.quick(only) if args.quick else Plan(only=only)), args.out


class Run:
    def __init__(
        self,
        plan: Plan,
        lab: BenchLab,
        leftovers: Leftovers,
        scratch: Path,
        write: Callable[[list[Section]], None],
    ) -> None:
        self.plan, self.lab, self.leftovers, self.scratch = plan, lab, leftovers, scratch
        self.write = write
        self.sections: list[Section] = []

    def step(self, name: str, title: str, work: Callable[[], Section | None]) -> None:
        if name not in self.plan.only:
            return
        begin = time.monotonic()
        log.info("Running %s", name)
        try:
            section = work()
        except Exception as exc:  # a failed section is a finding; the rest still run
            log.error("Section %s failed:\n%s", name, traceback.format_exc())
            section = Section(name, title, skipped=f"the run failed: {exc}")
        if section is not None:
            self.sections.append(section)
            self.write(self.sections)
        log.info("%s took %.0f s", name, time.monotonic() - begin)

    def all(self) -> None:
        plan = self.plan
        self.step(
            "start", "Machine start", lambda: start.run(self.lab, self.leftovers, plan.start_count)
        )
        scale = Scale(self.lab, self.leftovers, plan.scale_count)
        addresses: dict[str, str] = {}

        def sequential() -> None:
            addresses.update(scale.sequential())

        if "scale" in plan.only:
            self.step("scale", scale.section.title, sequential)
        elif {"dns", "dashboard"} & set(plan.only):
            sequential()
        settings = dnsbench.Settings(plan.seconds, plan.reps, self.scratch)
        self.step("dns", "DNS", lambda: dnsbench.run(self.lab, self.leftovers, addresses, settings))
        self.step(
            "dashboard", "Dashboard", lambda: dashboard.run(self.lab, len(addresses), plan.requests)
        )
        self.step("scale", scale.section.title, scale.finish)
        if {"reverse", "forward"} & set(plan.only):
            self.web()

    def web(self) -> None:
        remove_lab_machines(self.lab)  # what the sections above left
        settings = webbench.Settings(self.plan.web_seconds, self.plan.reps, self.scratch)
        backend = webbench.start_backend(self.lab)
        self.step(
            "reverse",
            "Reverse proxy",
            lambda: webbench.Reverse(self.lab, self.leftovers, backend, settings).run(),
        )
        self.step(
            "forward",
            "Forward proxy",
            lambda: webbench.Forward(self.lab, self.leftovers, backend, settings).run(),
        )


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    plan, out = parse_args(argv)
    from onebox.engine import connect
    from onebox.images import busybox

    engine = connect()
    began, started = time.monotonic(), datetime.now(UTC)
    conditions = [f"At the start: {host.busy()}."]
    busybox.ensure(engine, lambda line: log.info("%s", line))
    peers.ensure_image(engine)
    leftovers = Leftovers(engine)
    lab: BenchLab | None = None
    try:
        peer_versions = peers.versions(engine, leftovers)
        lab = benchlab.up()
        gateway = lab.gateway()
        gateway_python = gateway.exec_run(["python3", "--version"]).output.decode().strip()
        machine = host.facts(engine, peer_versions, gateway.image.id[:19], gateway_python)

        def write(sections: list[Section]) -> None:
            """After every section, so that a failure later loses nothing measured."""
            report = Report(
                started=started.strftime("%Y-%m-%d %H:%M UTC"),
                minutes=(time.monotonic() - began) / 60,
                machine=machine,
                sections=sections,
                commands=[
                    "bash scripts/setup",
                    "bash bench/setup",
                    "bench/run " + " ".join(shlex.quote(a) for a in argv),
                ],
                conditions=[*conditions, f"At the end: {host.busy()}."],
            )
            out.write_text(report.markdown())

        with tempfile.TemporaryDirectory(prefix="obtest-bench-") as scratch:
            run = Run(plan, lab, leftovers, Path(scratch), write)
            run.all()
        log.info("Wrote %s", out)
    finally:
        try:
            leftovers.remove()
        finally:
            if lab is not None:
                benchlab.destroy(engine, lab.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
