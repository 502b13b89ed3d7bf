"""Scale: many machines in one lab, created one after another and by 8 workers through
onebox's Python API, against `docker run` doing the same on a plain bridge network; the
gateway's memory at 0, 50 and all machines; every name and URL checked."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from bench import peers, web
from bench.benchlab import PREFIX, BenchLab, Leftovers
from bench.results import Goal, Row, Section, Target
from bench.start import IMAGE, SERVE, docker_run
from bench.stats import Spread
from onebox.machines import machine as machines

log = logging.getLogger(__name__)

WORKERS = 8
SETTLE_SECONDS = 3.0  # lets the gateway take in the last events before its memory is read
CHECK_SECONDS = 120.0


def names(count: int) -> list[str]:
    return [f"m{i:03d}" for i in range(count)]


def _create(lab: BenchLab, name: str) -> str:
    request = machines.CreateRequest(name=name, image=IMAGE, command=SERVE)
    return str(machines.create(lab.engine, lab.lab, request).ip)


def _parallel(work: Callable[[str], object], items: Sequence[str]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(work, items))


def resolves(lab: BenchLab, name: str, address: str) -> bool:
    return resolves_at(lab.gateway_ip, f"{name}.{lab.domain}", address)


def resolves_at(server: str, fqdn: str, address: str) -> bool:
    query = dns.message.make_query(fqdn, dns.rdatatype.A)
    try:
        reply = dns.query.udp(query, server, port=53, timeout=1.0)
    except (OSError, dns.exception.DNSException):
        return False
    return any(item.address == address for rrset in reply.answer for item in rrset)


def serves(lab: BenchLab, name: str) -> bool:
    answer = web.get("127.0.0.1", lab.lab.ports["http"], "/hostname", f"{name}.{lab.domain}")
    return bool(answer and answer[0] == 200 and answer[1].decode().startswith(name))


def check_all(lab: BenchLab, addresses: dict[str, str]) -> tuple[int, int, float]:
    """How many names resolve right and how many URLs serve their machine, once both are
    all right or the time is up; and the seconds that took."""
    begin = time.monotonic()
    good_dns: set[str] = set()
    good_url: set[str] = set()
    while time.monotonic() - begin < CHECK_SECONDS:
        good_dns |= {n for n, a in addresses.items() if n not in good_dns and resolves(lab, n, a)}
        good_url |= {n for n in addresses if n not in good_url and serves(lab, n)}
        if len(good_dns) == len(good_url) == len(addresses):
            break
        time.sleep(0.5)
    return len(good_dns), len(good_url), time.monotonic() - begin


def remove_lab_machines(lab: BenchLab) -> None:
    ids = [c.id for c in lab.engine.machines(lab.name)]
    api = lab.engine.client.api
    _parallel(lambda cid: api.remove_container(cid, force=True, v=True), ids)


class Scale:
    """Run in two parts: the sequential onebox create leaves its machines for the DNS and
    dashboard figures; `finish` removes them and does the rest."""

    def __init__(self, lab: BenchLab, leftovers: Leftovers, count: int) -> None:
        self.lab, self.leftovers, self.count = lab, leftovers, count
        self.section = Section("scale", f"Scale: {count} machines in one lab")
        self.memory: dict[int, float] = {}

    def _memory(self) -> float:
        time.sleep(SETTLE_SECONDS)
        return self.lab.gateway_memory_mb()

    def sequential(self) -> dict[str, str]:
        """Creates the machines one after another; returns name -> address."""
        self.memory[0] = self._memory()
        addresses: dict[str, str] = {}
        elapsed = 0.0
        marks = {50, self.count} if self.count > 50 else {self.count}
        for name in names(self.count):
            begin = time.monotonic()
            addresses[name] = _create(self.lab, name)
            elapsed += time.monotonic() - begin
            if len(addresses) in marks:
                self.memory[len(addresses)] = self._memory()
        self.onebox_sequential = elapsed
        self._check("one after another", addresses)
        return addresses

    def _check(self, how: str, addresses: dict[str, str]) -> None:
        right_dns, right_url, seconds = check_all(self.lab, addresses)
        self.section.notes.append(
            f"Created {how}: {right_dns}/{len(addresses)} names resolve to the right address "
            f"at the gateway and {right_url}/{len(addresses)} URLs "
            f"(http://NAME.{self.lab.domain}/ on the published port) serve their own machine, "
            f"all checked within {seconds:.1f} s after the last create."
        )

    def finish(self) -> Section:
        remove_lab_machines(self.lab)
        begin = time.monotonic()
        _parallel(lambda n: _create(self.lab, n), names(self.count))
        onebox_parallel = time.monotonic() - begin
        listed = machines.list_machines(self.lab.engine, self.lab.lab)
        self._check(f"by {WORKERS} workers", {m.name: m.ip for m in listed})
        remove_lab_machines(self.lab)
        docker_sequential, docker_parallel = self._docker()
        self._rows(docker_sequential, onebox_parallel, docker_parallel)
        return self.section

    def _docker(self) -> tuple[float, float]:
        tag = self.lab.name.removeprefix(PREFIX)
        network, subnet = peers.plain_network(self.lab.engine, self.leftovers, f"{tag}-scale")
        base = subnet.rsplit(".", 1)[0]
        plans = [
            (f"{PREFIX}{tag}-{n}", f"{base}.{10 + i}") for i, n in enumerate(names(self.count))
        ]
        sequential = self._docker_round(network, plans, "a", 1)
        return sequential, self._docker_round(network, plans, "b", WORKERS)

    def _docker_round(
        self, network: str, plans: list[tuple[str, str]], suffix: str, workers: int
    ) -> float:
        """`docker run -d` for every plan with this many at once; removes them again."""
        made: list[str] = []

        def run(plan: tuple[str, str]) -> None:
            name, address = plan
            done = subprocess.run(
                docker_run(f"{name}{suffix}", network, address),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
            if done.stdout.strip():
                made.append(done.stdout.strip())
                self.leftovers.containers.append(done.stdout.strip())
            if done.returncode != 0:
                raise RuntimeError(f"docker run {name} failed: {done.stderr}")

        begin = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, plans))
        elapsed = time.monotonic() - begin
        api = self.lab.engine.client.api
        _parallel(lambda cid: api.remove_container(cid, force=True, v=True), made)
        return elapsed

    def _rows(
        self, docker_sequential: float, onebox_parallel: float, docker_parallel: float
    ) -> None:
        add, n = self.section.add, self.count
        add(
            Row(
                "scale",
                f"{n} machines created one after another, total",
                "s",
                Spread.single(self.onebox_sequential),
                "docker run",
                Spread.single(docker_sequential),
            )
        )
        add(
            Row(
                "scale",
                f"{n} machines created by {WORKERS} workers, total",
                "s",
                Spread.single(onebox_parallel),
                "docker run",
                Spread.single(docker_parallel),
            )
        )
        for count, memory in sorted(self.memory.items()):
            target = Target(Goal.VALUE_AT_MOST, 150, "MB") if count == n and n >= 200 else None
            add(
                Row(
                    "scale",
                    f"gateway memory with {count} machines",
                    "MB",
                    Spread.single(memory),
                    target=target,
                )
            )
        self.section.notes.append(
            "One run each (a total over all machines, so no spread). onebox through its "
            "Python API (`onebox.machines.machine.create`, as the dashboard and API call it), "
            "which waits 1 s after each start to see that the machine stays up; docker "
            "through `docker run -d` with a fixed --ip, on a plain bridge network."
        )
