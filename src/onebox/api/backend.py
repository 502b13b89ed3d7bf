"""What the API does to the lab, through the domain packages: list, create and drive
machines, read logs, list images and networks. Calls block; handlers run them in a
thread. Tests give the API a stand-in with the same methods."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any, Protocol

from docker.models.containers import Container

from onebox.engine import Engine
from onebox.engine import summary as summaries
from onebox.engine.terminal import Shell, Terminal
from onebox.errors import Conflict, InvalidInput
from onebox.labs import lab as labs
from onebox.machines import machine as machines

log = logging.getLogger(__name__)

VERBS = ("start", "stop", "restart")


class Backend(Protocol):
    def list_machines(self) -> list[machines.Machine]: ...

    def create(self, body: dict[str, Any]) -> machines.Machine: ...

    def act(self, verb: str, name: str) -> machines.Machine: ...

    def remove(self, name: str) -> machines.Machine: ...

    def logs(self, name: str, tail: int) -> str: ...

    def follow_logs(self, name: str, tail: int) -> Iterator[bytes]: ...

    async def open_terminal(self, name: str, cols: int, rows: int) -> Shell: ...

    def images(self) -> list[dict[str, Any]]: ...

    def networks(self) -> list[dict[str, Any]]: ...


class EngineBackend:
    """The real one, on the Docker engine the gateway's socket leads to."""

    def __init__(self, engine: Engine, lab: str, test: bool = False) -> None:
        self.engine = engine
        self.lab_name = lab
        self.test = test  # machines made here carry the test suite's label, as the lab does
        self.lister = summaries.MachineLister(engine, lab)
        self._lab: labs.Lab | None = None

    def lab(self) -> labs.Lab:
        if self._lab is None:
            self._lab = labs.load(self.engine, self.lab_name)
        return self._lab

    def list_machines(self) -> list[machines.Machine]:
        lab = self.lab()
        return [machines.describe(lab, c) for c in self.lister.containers()]

    def create(self, body: dict[str, Any]) -> machines.Machine:
        request = machines.CreateRequest(
            name=body["name"],
            image=body["image"],
            ip=body.get("ip") or None,
            command=body.get("command") or [],
            web_port=body.get("web_port", 80),
            test=self.test,
        )
        log.info("Creating machine %s from the API", request.name)
        return machines.create(self.engine, self.lab(), request)

    def act(self, verb: str, name: str) -> machines.Machine:
        if verb not in VERBS:
            raise InvalidInput(
                f"'{verb}' is not something a machine does", f"use one of {', '.join(VERBS)}"
            )
        if verb == "start":
            return machines.start(self.engine, self.lab(), name)
        if verb == "stop":
            return machines.stop(self.engine, self.lab(), name)
        return machines.restart(self.engine, self.lab(), name)

    def remove(self, name: str) -> machines.Machine:
        log.info("Removing machine %s from the API", name)
        return machines.remove(self.engine, self.lab(), name)

    def logs(self, name: str, tail: int) -> str:
        chunks = machines.logs(self.engine, self.lab(), name, follow=False, tail=tail)
        return b"".join(chunks).decode(errors="replace")

    def follow_logs(self, name: str, tail: int) -> Iterator[bytes]:
        return machines.logs(self.engine, self.lab(), name, follow=True, tail=tail)

    async def open_terminal(self, name: str, cols: int, rows: int) -> Shell:
        container_id = await asyncio.to_thread(self._running_container, name)
        return await Terminal.open(self.engine, container_id, cols, rows)

    def _running_container(self, name: str) -> str:
        container: Container = machines.find(self.engine, self.lab(), name)
        if container.status != "running":
            raise Conflict(
                f"Machine '{name}' is {container.status}", "start it first, then open its terminal"
            )
        return str(container.id)

    def images(self) -> list[dict[str, Any]]:
        return summaries.images(self.engine)

    def networks(self) -> list[dict[str, Any]]:
        return summaries.networks(self.engine)
