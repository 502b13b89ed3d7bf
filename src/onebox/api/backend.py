"""What the API does to the lab, through the domain packages: list, create and drive
machines, read logs, list images and networks, launch templates and remove stacks.
Calls block; handlers run them in a thread. Tests give the API a stand-in with the same
methods."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from docker.models.containers import Container

from onebox.engine import Engine
from onebox.engine import summary as summaries
from onebox.engine.terminal import Shell, Terminal
from onebox.errors import Conflict, InvalidInput, NotFound
from onebox.labs import lab as labs
from onebox.machines import machine as machines
from onebox.templates import catalog, compose, launch
from onebox.templates import image as template_images
from onebox.templates import stack as stacks

log = logging.getLogger(__name__)

VERBS = ("start", "stop", "restart")
Report = Callable[[str], None]


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

    def templates(self) -> list[dict[str, Any]]: ...

    def check_launch(self, name: str, stack: str, settings: dict[str, str]) -> None: ...

    def launch(
        self, name: str, stack: str, settings: dict[str, str], report: Report
    ) -> dict[str, Any]: ...

    def stacks(self) -> list[dict[str, Any]]: ...

    def remove_stack(self, stack: str, volumes: bool) -> int: ...


class EngineBackend:
    """The real one, on the Docker engine the gateway's socket leads to."""

    def __init__(self, engine: Engine, lab: str, test: bool = False) -> None:
        self.engine = engine
        self.lab_name = lab
        self.test = test  # machines made here carry the test suite's label, as the lab does
        self.lister = summaries.MachineLister(engine, lab)
        self._lab: labs.Lab | None = None
        self._templates: list[dict[str, Any]] | None = None

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

    def templates(self) -> list[dict[str, Any]]:
        if self._templates is None:  # package data: it cannot change while the gateway runs
            self._templates = [template.as_dict() for template in catalog.all_templates()]
        return self._templates

    def check_launch(self, name: str, stack: str, settings: dict[str, str]) -> None:
        """Refuses at once what the launch would refuse before making anything: an unknown
        template or setting, a bad or taken stack name, and (when registries are off) an
        image that is missing and has no recipe."""
        template = catalog.load(name)
        compose.check_stack_name(stack)
        lab = self.lab()
        secrets = {key: "x" for key in template.secrets}
        project = template.project(stack, template.variables(stack, lab.domain, settings, secrets))
        if stacks.containers(self.engine, lab, stack):
            raise Conflict(
                f"Stack '{stack}' already exists in lab '{lab.name}'",
                "choose another stack name, or remove that stack first",
            )
        if os.environ.get("ONEBOX_OFFLINE") != "1":
            return  # a registry may still give the image; the launch itself will tell
        for service in project.services.values():
            if service.build is None and not service.recipe:
                template_images.resolve(self.engine, service, stack, lambda line: None)

    def launch(
        self, name: str, stack: str, settings: dict[str, str], report: Report
    ) -> dict[str, Any]:
        made = launch.run(self.engine, self.lab(), name, stack, settings, report, self.test)
        by_name = {m.name: m for m in made.info.machines}
        return {
            "template": name,
            "stack": stack,
            "url": made.info.url,
            "machines": [
                {**by_name[machine].as_dict(), "service": service, "url": _url(by_name[machine])}
                for service, machine in made.mapping
                if machine in by_name
            ],
            "secrets": {key: made.secrets[key] for key in made.new_secrets},
            "kept_secrets": sorted(set(made.secrets) - set(made.new_secrets)),
            "notes": made.notes,
        }

    def stacks(self) -> list[dict[str, Any]]:
        return [
            {
                "name": info.name,
                "url": info.url,
                "machines": [{**m.as_dict(), "url": _url(m)} for m in info.machines],
            }
            for info in stacks.list_stacks(self.engine, self.lab())
        ]

    def remove_stack(self, stack: str, volumes: bool) -> int:
        lab = self.lab()
        log.info("Removing stack %s from the API", stack)
        removed = stacks.down(self.engine, lab, stack, lambda line: None, volumes)
        if not removed:
            raise NotFound(
                f"Stack '{stack}' has no machines in lab '{lab.name}'",
                "list stacks with GET /api/stacks",
            )
        return removed


def _url(machine: machines.Machine) -> str:
    return f"http://{machine.fqdn}/"
