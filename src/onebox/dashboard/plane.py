"""The dashboard plane: serves the API and pages on port 8000 inside the gateway, keeps
the lab's machines in memory (refreshed after each Docker change), follows every
running machine's stats, and writes traffic samples and events into the history."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from onebox.api import auth
from onebox.api.app import Gateway, build
from onebox.api.backend import EngineBackend
from onebox.api.inventory import Inventory
from onebox.api.routes import OPERATIONS
from onebox.dashboard import pages
from onebox.engine import Engine, Label
from onebox.errors import OperationFailed
from onebox.gateway.settings import Settings
from onebox.gateway.watcher import MachineView
from onebox.labs import admin as admin_account
from onebox.metrics.history import History, TrafficRow
from onebox.metrics.sampler import Sampler

log = logging.getLogger(__name__)

PORT = 8000
SAMPLE_SECONDS = 10  # how often traffic goes into the history
PRUNE_SECONDS = 3600
EVENT_ACTIONS = {
    "create": "created",
    "start": "started",
    "die": "died",
    "destroy": "removed",
    "rename": "renamed",
}


def lab_names(settings: Settings) -> set[str]:
    names = {f"gateway.{settings.domain}", str(settings.gateway_ip), *settings.host_names}
    if settings.bind not in ("127.0.0.1", "0.0.0.0"):
        names.add(settings.bind)
    return names


class DashboardPlane:
    name = "dashboard"

    def __init__(self, settings: Settings, engine: Engine, port: int = PORT) -> None:
        self.settings = settings
        self.engine = engine
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.sampler = Sampler()
        self.backend = EngineBackend(engine, settings.lab)
        dashboard_port = settings.ports.get("dashboard", port)
        self.gateway = Gateway(
            lab=settings.lab,
            domain=settings.domain,
            subnet=str(settings.subnet),
            gateway_ip=str(settings.gateway_ip),
            dashboard_port=dashboard_port,
            backend=self.backend,
            inventory=Inventory(self.sampler),
            history=History(data / "history.sqlite"),
            admins=auth.Admins(data / admin_account.ADMIN_FILE),
            sessions=auth.Sessions(auth.load_secret(data / auth.SECRET_FILE)),
            tokens=auth.Tokens(data / auth.TOKENS_FILE),
            hosts=auth.HostPolicy(lab_names(settings), {dashboard_port, port}),
        )
        self.app = build(self.gateway, OPERATIONS, pages.routes(), pages.HANDLERS)
        self.config = uvicorn.Config(
            self.app,
            host="0.0.0.0",
            port=port,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(self.config)
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = threading.Event()

    async def start(self) -> None:
        self.config.load()
        self.server.lifespan = self.config.lifespan_class(self.config)
        try:
            await self.server.startup()  # not serve(): the gateway owns the signals
        except SystemExit as exc:
            raise OperationFailed(
                f"The dashboard cannot listen on port {PORT}",
                "see the gateway's log: `docker logs " f"{self.settings.lab}_gateway`",
            ) from exc
        self.backend.test = await asyncio.to_thread(self._is_test_lab)
        loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self.server.main_loop(), name="dashboard-http"),
            asyncio.create_task(self._refresh_loop(), name="dashboard-refresh"),
            asyncio.create_task(self._tick_loop(), name="dashboard-tick"),
        ]
        threading.Thread(
            target=self._follow_events, args=(loop,), name="dashboard-events", daemon=True
        ).start()
        self._dirty.set()

    def update(self, views: list[MachineView]) -> None:
        self._dirty.set()

    async def close(self) -> None:
        self._stop.set()
        self.server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._tasks[0], 3)
        await self.server.shutdown()
        await self.gateway.launches.close()
        await self.sampler.close()
        self.gateway.history.close()

    def _is_test_lab(self) -> bool:
        gateway = self.engine.gateway(self.settings.lab)
        return bool(gateway and gateway.labels.get(Label.TEST))

    async def _refresh_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                machines = await asyncio.to_thread(self.backend.list_machines)
            except Exception as exc:
                log.warning("Could not list the lab's machines (%s); retrying", exc)
                await asyncio.sleep(1.0)
                self._dirty.set()
                continue
            self.gateway.inventory.replace(machines)

    async def _tick_loop(self) -> None:
        sent: tuple[int, int] = (-1, -1)
        last_sample = last_prune = 0.0
        while True:
            await asyncio.sleep(1.0)
            inventory = self.gateway.inventory
            if inventory.stamp() != sent and len(self.gateway.hub):
                sent = inventory.stamp()
                self.gateway.hub.publish("machines", inventory.rows())
            now = time.time()
            if now - last_sample >= SAMPLE_SECONDS:
                last_sample = now
                self._record_samples(now)
            if now - last_prune >= PRUNE_SECONDS:
                last_prune = now
                self.gateway.history.prune(now)

    def _record_samples(self, now: float) -> None:
        rows = []
        for machine in self.gateway.inventory.machines.values():
            sample = self.sampler.latest.get(machine.id)
            if sample is not None and machine.state == "running":
                rows.append(
                    TrafficRow(
                        machine.name,
                        int(now),
                        sample.rx_bytes,
                        sample.tx_bytes,
                        sample.cpu_percent,
                        sample.memory,
                    )
                )
        if rows:
            self.gateway.history.add_samples(rows)

    def _follow_events(self, loop: asyncio.AbstractEventLoop) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                for event in self.engine.events(self.settings.lab):
                    self._take_event(loop, event)
                    backoff = 0.5
            except Exception as exc:  # the stream breaks when dockerd restarts
                log.debug("event stream ended (%s); reconnecting", exc)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _take_event(self, loop: asyncio.AbstractEventLoop, event: dict[str, Any]) -> None:
        action = EVENT_ACTIONS.get(str(event.get("Action", "")).split(":")[0])
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if action is None or attributes.get(Label.ROLE) != "machine":
            return
        machine = attributes.get(Label.MACHINE) or attributes.get("name", "?")
        detail = f"exit code {attributes['exitCode']}" if "exitCode" in attributes else ""
        when = event.get("timeNano", time.time_ns()) / 1e9
        loop.call_soon_threadsafe(self._record_event, machine, action, detail, when)

    def _record_event(self, machine: str, action: str, detail: str, when: float) -> None:
        entry = self.gateway.history.add_event(machine, action, detail, when)
        self.gateway.hub.publish("event", entry)
