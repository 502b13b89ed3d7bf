"""A gateway web app over a stand-in backend, for tests that need no engine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from onebox.api import auth
from onebox.api.app import Gateway, build
from onebox.api.inventory import Inventory
from onebox.api.routes import OPERATIONS
from onebox.dashboard import pages
from onebox.engine.terminal import Shell
from onebox.errors import Conflict, InvalidInput, NotFound, OperationFailed
from onebox.labs import admin
from onebox.machines.machine import Machine
from onebox.metrics.history import History
from onebox.metrics.sampler import Sample, Sampler
from onebox.templates.compose import check_stack_name

PORT = 17800
BASE_URL = f"http://127.0.0.1:{PORT}"
PASSWORD = "correct horse battery staple"


def machine(name: str, index: int, state: str = "running") -> Machine:
    return Machine(
        name=name,
        ip=f"10.99.0.{10 + index}",
        fqdn=f"{name}.lab.internal",
        state=state,
        image="onebox/busybox:latest",
        id=f"{index:064x}",
        started_at="2026-12-04T10:00:00.000000000Z",
    )


class FakeBackend:
    def __init__(self, count: int = 2) -> None:
        self.machines = {f"m{i}": machine(f"m{i}", i) for i in range(count)}
        self.calls: list[tuple[str, str]] = []
        self.stacks_made: dict[str, list[Machine]] = {}
        self.gate = threading.Event()  # a launch finishes once the test sets it
        self.gate.set()

    def list_machines(self) -> list[Machine]:
        return list(self.machines.values())

    def _find(self, name: str) -> Machine:
        if name not in self.machines:
            raise NotFound(f"Machine '{name}' does not exist", "list machines")
        return self.machines[name]

    def create(self, body: dict[str, Any]) -> Machine:
        if body["name"] in self.machines:
            raise Conflict(f"Machine '{body['name']}' already exists", "choose another name")
        if body["image"] != "onebox/busybox:latest":
            raise NotFound(f"Image '{body['image']}' does not exist", "build it")
        made = machine(body["name"], len(self.machines) + 1)
        self.machines[made.name] = made
        self.calls.append(("create", made.name))
        return made

    def act(self, verb: str, name: str) -> Machine:
        found = self._find(name)
        found.state = "exited" if verb == "stop" else "running"
        self.calls.append((verb, name))
        return found

    def remove(self, name: str) -> Machine:
        self.calls.append(("remove", name))
        return self.machines.pop(self._find(name).name)

    def logs(self, name: str, tail: int) -> str:
        self._find(name)
        return "hello\n"

    def follow_logs(self, name: str, tail: int) -> Iterator[bytes]:
        self._find(name)
        return iter([b"hello\n"])

    async def open_terminal(self, name: str, cols: int, rows: int) -> Shell:
        raise Conflict(f"Machine '{name}' is exited", "start it first")

    def images(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "0123456789ab",
                "tags": ["onebox/busybox:latest"],
                "size": 2000000,
                "created": 0,
                "used_by": ["lab_m0"],
            }
        ]

    def networks(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "abcdef012345",
                "name": "lab_net",
                "driver": "bridge",
                "subnets": ["10.99.0.0/24"],
                "lab": "lab",
                "containers": 3,
            }
        ]

    def templates(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "static-site",
                "description": "A static web site served by nginx.",
                "settings": {},
                "secrets": [],
                "url_service": "web",
                "services": ["web"],
                "notes": "",
            },
            {
                "name": "redis",
                "description": "A Redis server with a password.",
                "settings": {"maxmemory": "64mb"},
                "secrets": ["REDIS_PASSWORD"],
                "url_service": None,
                "services": ["redis"],
                "notes": "Connect with redis-cli.",
            },
            {
                "name": "broken",
                "description": "Fails while its image builds.",
                "settings": {},
                "secrets": [],
                "url_service": None,
                "services": ["app"],
                "notes": "",
            },
        ]

    def check_launch(self, name: str, stack: str, settings: dict[str, str]) -> None:
        known = {t["name"]: t for t in self.templates()}
        if name not in known:
            raise NotFound(f"Template '{name}' does not exist", "list templates")
        check_stack_name(stack)
        if set(settings) - set(known[name]["settings"]):
            raise InvalidInput(f"Template '{name}' has no such setting", "see its settings")
        if stack in self.stacks_made:
            raise Conflict(f"Stack '{stack}' already exists", "choose another stack name")

    def launch(
        self, name: str, stack: str, settings: dict[str, str], report: Callable[[str], None]
    ) -> dict[str, Any]:
        service = self.templates()[[t["name"] for t in self.templates()].index(name)]["services"][0]
        report(f"Building onebox/recipe-{service}:latest")
        self.gate.wait(10)
        if name == "broken":
            raise OperationFailed("Build of 'onebox/recipe-app:latest' failed", "fix the recipe")
        made = machine(f"{stack}-{service}", 50 + len(self.stacks_made))
        self.stacks_made[stack] = [made]
        report(f"Creating machine {made.name}")
        secrets = {"REDIS_PASSWORD": "s3cret"} if name == "redis" else {}
        return {
            "template": name,
            "stack": stack,
            "url": f"http://{made.fqdn}/",
            "machines": [{**made.as_dict(), "service": service, "url": f"http://{made.fqdn}/"}],
            "secrets": secrets,
            "kept_secrets": [],
            "notes": "",
        }

    def stacks(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "url": f"http://{made[0].fqdn}/",
                "machines": [{**m.as_dict(), "url": f"http://{m.fqdn}/"} for m in made],
            }
            for name, made in sorted(self.stacks_made.items())
        ]

    def remove_stack(self, stack: str, volumes: bool) -> int:
        if stack not in self.stacks_made:
            raise NotFound(f"Stack '{stack}' has no machines", "list stacks")
        self.calls.append(("remove_stack", f"{stack} volumes={volumes}"))
        return len(self.stacks_made.pop(stack)) + (2 if volumes else 0)


def make_app(tmp: Path, count: int = 2) -> tuple[Starlette, Gateway, FakeBackend]:
    (tmp / admin.ADMIN_FILE).write_bytes(admin.record(PASSWORD))
    backend = FakeBackend(count)
    sampler = Sampler()
    inventory = Inventory(sampler)
    inventory.machines = {m.name: m for m in backend.list_machines()}
    for index, m in enumerate(backend.list_machines()):
        sampler.latest[m.id] = Sample(
            time=0.0,
            cpu_percent=1.5,
            memory=5_000_000,
            memory_limit=10**9,
            rx_bytes=1000 * index,
            tx_bytes=500 * index,
            rx_rate=10.0,
            tx_rate=5.0,
        )
    gateway = Gateway(
        lab="lab",
        domain="lab.internal",
        subnet="10.99.0.0/24",
        gateway_ip="10.99.0.2",
        dashboard_port=PORT,
        backend=backend,
        inventory=inventory,
        history=History(tmp / "history.sqlite"),
        admins=auth.Admins(tmp / admin.ADMIN_FILE),
        sessions=auth.Sessions(auth.load_secret(tmp / auth.SECRET_FILE)),
        tokens=auth.Tokens(tmp / auth.TOKENS_FILE),
        hosts=auth.HostPolicy({"gateway.lab.internal", "10.99.0.2"}, {PORT, 8000}),
    )
    return build(gateway, OPERATIONS, pages.routes(), pages.HANDLERS), gateway, backend
