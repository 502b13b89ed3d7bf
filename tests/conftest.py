"""Shared fixtures. Everything a test makes carries the `obtest-` prefix and the
`onebox.test` label, and is removed by id afterwards, also when the test fails."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ONEBOX = str(Path(sys.executable).parent / "onebox")
PREFIX = "obtest-"


def new_name(kind: str = "lab") -> str:
    return f"{PREFIX}{kind}-{secrets.token_hex(3)}"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def onebox(
    *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 600
) -> Result:
    """Runs the real CLI as a user would."""
    full_env = {**os.environ, "ONEBOX_TEST": "1", **(env or {})}
    proc = subprocess.run(
        [ONEBOX, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"onebox {' '.join(args)} exited {proc.returncode}:\n" f"{proc.stdout}\n{proc.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def engine() -> Any:
    from onebox.engine import connect

    return connect()


def remove_lab_objects(engine: Any, lab: str) -> None:
    """The safety net behind `onebox destroy`: every object labelled with this test
    lab, removed by id."""
    import docker.errors

    label = {"label": f"onebox.lab={lab}"}
    for container in engine.client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.api.remove_container(container.id, force=True, v=True)
    for volume in engine.client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.api.remove_volume(volume.id, force=True)
    for network in engine.client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.api.remove_network(network.id)


@dataclass
class LabHandle:
    name: str
    info: dict[str, Any]
    upstream: Any  # the local stub DNS server that plays the outside world

    @property
    def domain(self) -> str:
        return str(self.info["domain"])

    @property
    def dns_port(self) -> int:
        return int(self.info["gateway"]["dns_port"])

    def cli(self, *args: str, check: bool = True) -> Result:
        return onebox(*args, check=check, env={"ONEBOX_LAB": self.name})


def free_subnet(engine: Any) -> str:
    from onebox.addressing import subnet
    from onebox.labs.lab import _taken_subnets

    return str(subnet.choose(_taken_subnets(engine)))


@pytest.fixture(scope="session")
def busybox_image(engine: Any) -> str:
    from onebox.images import busybox

    return busybox.ensure(engine, lambda line: None)


class ThreadedStub:
    """The stub upstream DNS server on its own event loop thread, so that sync tests can
    run it beside the lab. It plays the outside world on the lab bridge's address."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from onebox.dns.stub import StubUpstream

        self.stub = StubUpstream()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return str(self.stub.address)

    @staticmethod
    def reserve_port() -> int:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    def start(self, host: str, port: int) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.stub.start(host, port), self.loop).result(10)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.stub.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def make_lab(engine: Any) -> Iterator[LabHandle]:
    import ipaddress

    name = new_name()
    stub = ThreadedStub()
    port = stub.reserve_port()
    try:
        # The subnet is chosen here, before `up`, so that the stub's address is known;
        # another process may take it meanwhile, and then the next free one is tried.
        for _ in range(5):
            subnet = free_subnet(engine)
            bridge = str(ipaddress.IPv4Network(subnet)[1])
            result = onebox(
                "up",
                "--lab",
                name,
                "--subnet",
                subnet,
                "--upstream",
                f"{bridge}:{port}",
                "--json",
                check=False,
            )
            if result.code != 4 or "overlaps" not in result.stderr:
                break
        if result.code != 0:
            raise AssertionError(f"onebox up failed:\n{result.stdout}\n{result.stderr}")
        info = result.json()
        stub.start(bridge, port)
        yield LabHandle(name=name, info=info, upstream=stub)
    finally:
        stub.close()
        onebox("destroy", "--lab", name, "--yes", check=False)
        remove_lab_objects(engine, name)


@pytest.fixture(scope="module")
def lab(engine: Any, busybox_image: str) -> Iterator[LabHandle]:
    yield from make_lab(engine)
