"""Follows Docker events for one lab and hands each change to the data planes as a
fresh snapshot of the lab's machines. Rebuilding from a full listing, not patching
from single events, keeps the view right after missed events and engine restarts."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from onebox.engine import Engine, Label
from onebox.engine.labels import ROLE_MACHINE
from onebox.gateway.settings import Settings
from onebox.machines.machine import machine_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MachineView:
    name: str
    ip: ipaddress.IPv4Address
    running: bool
    web_port: int = 80
    urls: tuple[str, ...] = field(default_factory=tuple)
    container_id: str = ""


def snapshot(engine: Engine, settings: Settings) -> list[MachineView]:
    views = []
    for container in engine.machines(settings.lab):
        labels = container.labels
        if labels.get(Label.ROLE) != ROLE_MACHINE or not labels.get(Label.IP):
            continue
        name = machine_name(settings.lab, container)
        urls = tuple(u for u in labels.get(Label.URLS, "").split(",") if u)
        views.append(
            MachineView(
                name=name,
                ip=ipaddress.IPv4Address(labels[Label.IP]),
                running=container.status == "running",
                web_port=int(labels.get(Label.WEB_PORT, "80")),
                urls=urls,
                container_id=container.id,
            )
        )
    return views


Listener = Callable[[list[MachineView]], None]


class Watcher:
    """Calls every listener on the event loop with a new snapshot after each change."""

    def __init__(self, engine: Engine, settings: Settings, loop: asyncio.AbstractEventLoop):
        self.engine = engine
        self.settings = settings
        self.loop = loop
        self.listeners: list[Listener] = []
        self._stop = threading.Event()
        self._dirty = threading.Event()

    def refresh_now(self) -> list[MachineView]:
        views = snapshot(self.engine, self.settings)
        for listener in self.listeners:
            self.loop.call_soon_threadsafe(listener, views)
        return views

    def start(self) -> None:
        threading.Thread(target=self._follow_events, name="docker-events", daemon=True).start()
        threading.Thread(target=self._refresh_loop, name="refresh", daemon=True).start()
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def _follow_events(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                for event in self.engine.events(self.settings.lab):
                    log.debug("event %s %s", event.get("Action"), event.get("id", "")[:12])
                    self._dirty.set()
                    backoff = 0.5
            except Exception as exc:  # the stream breaks when dockerd restarts
                log.warning("Docker event stream ended (%s); reconnecting", exc)
            self._dirty.set()
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            self._dirty.clear()
            time.sleep(0.02)  # gather a burst of events into one snapshot
            try:
                self.refresh_now()
            except Exception as exc:
                log.warning("Could not list the lab's machines (%s); retrying", exc)
                time.sleep(1.0)
                self._dirty.set()
