"""The bench's own lab and everything else the bench makes in Docker: made with names
under `obtest-bench-`, remembered by id, and removed by id at the end, also after a
failure. The lab goes with `onebox destroy`, then anything still labelled with it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors

from onebox.engine import Engine
from onebox.labs import lab as labs

log = logging.getLogger(__name__)

ONEBOX = str(Path(sys.executable).parent / "onebox")
PREFIX = "obtest-bench-"


def onebox(*args: str, timeout: float = 600) -> str:
    """Runs the real CLI as a user would; its stdout, or an error with its stderr."""
    done = subprocess.run(
        [ONEBOX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ONEBOX_LOG": "WARNING"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"onebox {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


@dataclass
class Leftovers:
    """What the bench made outside its lab, by id, removed last-made first."""

    engine: Engine
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def remove(self) -> None:
        wait_for_engine(self.engine)
        api = self.engine.client.api
        for container in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(container, force=True, v=True)
        for network in reversed(self.networks):
            _remove_network(api, network)
        self.containers.clear()
        self.networks.clear()


def _remove_network(api: Any, network: str) -> None:
    """Docker may still hold an endpoint of a container removed a moment ago: a few tries,
    then a warning naming the network, never an exception that would lose the results."""
    for attempt in range(5):
        try:
            api.remove_network(network)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if attempt == 4:
                log.warning(
                    "Could not remove network %s: %s; remove it with `docker network " "rm %s`",
                    network[:12],
                    exc.explanation,
                    network[:12],
                )
            time.sleep(2)


@dataclass
class BenchLab:
    engine: Engine
    name: str
    lab: labs.Lab

    @property
    def domain(self) -> str:
        return str(self.lab.domain)

    @property
    def gateway_ip(self) -> str:
        return str(self.lab.gateway_ip)

    def address(self, host: int) -> str:
        """The lab address .host; the bench's peers sit at .3-.9, kept for lab services."""
        return str(self.lab.subnet.network_address + host)

    def gateway(self) -> Any:
        found = self.engine.gateway(self.name)
        if found is None:
            raise RuntimeError(f"the gateway of bench lab {self.name} is gone")
        return found

    def gateway_memory_mb(self) -> float:
        """Memory the gateway's cgroup holds, less inactive file cache, as `docker stats`."""
        stats = self.gateway().stats(stream=False)["memory_stats"]
        detail = stats.get("stats", {})
        cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        return float(stats["usage"] - cache) / 1e6

    def gateway_python_pid(self) -> int | None:
        """The host pid of the gateway's Python process, for py-spy."""
        top = self.gateway().top(ps_args="-eo pid,args")
        for process in top.get("Processes") or []:
            pid, args = process[0], process[-1]
            if "onebox-gateway" in args or "python" in args.split()[0]:
                return int(pid)
        return None


def up() -> BenchLab:
    """A new lab for the bench. No DNS upstream: the bench asks only lab names, and
    nothing may leave the machine."""
    from onebox.engine import connect

    name = f"{PREFIX}{secrets.token_hex(3)}"
    try:
        info = json.loads(onebox("up", "--lab", name, "--upstream", "none", "--json"))
    except BaseException:
        destroy(connect(), name)
        raise
    engine = connect()
    log.info("Bench lab %s is up at %s", name, info["subnet"])
    return BenchLab(engine=engine, name=name, lab=labs.load(engine, name))


def destroy(engine: Engine, name: str) -> None:
    """`onebox destroy`, then by id whatever still carries the lab's label."""
    try:
        onebox("destroy", "--lab", name, "--yes", timeout=900)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log.warning("onebox destroy of %s failed (%s); removing by label and id", name, exc)
    wait_for_engine(engine)
    label = {"label": f"onebox.lab={name}"}
    api = engine.client.api
    for container in engine.client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(container.id, force=True, v=True)
    for volume in engine.client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_volume(volume.id, force=True)
    for network in engine.client.networks.list(filters=label):
        try:
            api.remove_network(network.id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # a stale endpoint: only a dockerd restart helps
            log.warning(
                "Docker would not remove network %s (%s); remove it by id later",
                network.name,
                exc.explanation,
            )


def wait_for_engine(engine: Engine, seconds: float = 180) -> None:
    """Clean-up must not give up while another user's test restarts dockerd."""

    def answers() -> bool:
        try:
            return bool(engine.client.ping())
        except Exception:  # any failure to reach the engine counts as not yet
            return False

    if not answers():
        log.warning("The Docker engine does not answer; waiting up to %.0f s to clean up", seconds)
        wait_until(answers, "the Docker engine", seconds)


def wait_until(check: Any, what: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(0.05)
