"""Machine start: `onebox machine create` until the machine answers HTTP by its name
through the gateway's reverse proxy, against `docker run` of the same image on a plain
bridge network until it answers by address. The two alternate, so noise hits both."""

from __future__ import annotations

import logging
import subprocess
import time

from bench import peers, web
from bench.benchlab import ONEBOX, PREFIX, BenchLab, Leftovers
from bench.results import Goal, Row, Section, Target
from bench.stats import Spread

log = logging.getLogger(__name__)

IMAGE = "onebox/busybox:latest"
# /etc/hostname holds the machine's name: a page that proves which machine answered.
SERVE = ["httpd", "-f", "-p", "80", "-h", "/etc"]
WAIT_SECONDS = 60.0


def onebox_start(lab: BenchLab, name: str) -> tuple[float, float]:
    """Seconds until it answers by name, and until the CLI returned."""
    port = lab.lab.ports["http"]
    begin = time.monotonic()
    cli = subprocess.Popen(
        [ONEBOX, "machine", "create", name, "--lab", lab.name, "--image", IMAGE, "--", *SERVE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    answered = web.wait_for_body(
        "127.0.0.1", port, "/hostname", f"{name}.{lab.domain}", name, WAIT_SECONDS
    )
    _, stderr = cli.communicate(timeout=WAIT_SECONDS)
    returned = time.monotonic()
    if cli.returncode != 0 or answered is None:
        raise RuntimeError(f"machine {name} did not answer by name: {stderr.decode()}")
    return answered - begin, returned - begin


def docker_run(name: str, network: str, address: str) -> list[str]:
    """`docker run` as a user would start the same web server with a fixed address."""
    return [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name,
        "--network",
        network,
        "--ip",
        address,
        IMAGE,
        *SERVE,
    ]


def docker_start(leftovers: Leftovers, network: str, address: str, name: str) -> float:
    begin = time.monotonic()
    run = subprocess.Popen(
        docker_run(name, network, address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    answered = web.wait_for_body(address, 80, "/hostname", address, name, WAIT_SECONDS)
    out, err = run.communicate(timeout=WAIT_SECONDS)
    if out.strip():
        leftovers.containers.append(out.decode().strip())
    if run.returncode != 0 or answered is None:
        raise RuntimeError(f"docker run {name} did not answer: {err.decode()}")
    return answered - begin


def remove_machine(lab: BenchLab, name: str) -> None:
    container = lab.engine.container(f"{lab.name}_{name}")
    if container is not None:
        lab.engine.client.api.remove_container(container.id, force=True, v=True)


def run(lab: BenchLab, leftovers: Leftovers, count: int) -> Section:
    section = Section("start", "Machine start")
    network, subnet = peers.plain_network(
        lab.engine, leftovers, f"{lab.name.removeprefix(PREFIX)}-start"
    )
    base = subnet.rsplit(".", 1)[0]
    by_name, cli_done, by_address = [], [], []
    for i in range(count):
        name = f"s{i:02d}"
        answered, returned = onebox_start(lab, name)
        by_name.append(answered)
        cli_done.append(returned)
        remove_machine(lab, name)
        dname = f"{PREFIX}{lab.name.removeprefix(PREFIX)}-d{i:02d}"
        by_address.append(docker_start(leftovers, network, f"{base}.{10 + i}", dname))
        lab.engine.client.api.remove_container(leftovers.containers.pop(), force=True, v=True)
    section.add(
        Row(
            "start",
            "machine start to answering HTTP (onebox by name, docker by " "address)",
            "s",
            Spread.of(by_name),
            "docker run",
            Spread.of(by_address),
            Target(Goal.RATIO_AT_MOST, 1.15),
        )
    )
    section.add(
        Row(
            "start",
            "`onebox machine create` until the command returns",
            "s",
            Spread.of(cli_done),
            "docker run",
            Spread.of(by_address),
        )
    )
    section.notes.append(
        f"Image {IMAGE} running `{' '.join(SERVE)}`; onebox polled at "
        f"http://127.0.0.1:{{http port}}/hostname with Host NAME.{lab.domain} (the lab's "
        "published reverse proxy), docker polled at http://ADDRESS/hostname on a plain "
        "bridge network; each poll every 10 ms from the moment the command is started."
    )
    return section
