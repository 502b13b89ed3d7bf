"""The lab's machines as the API and dashboard show them, held in memory: the list is
refreshed after each Docker change, the numbers come from the stats sampler. Requests
read from here and never call Docker per machine."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from onebox.machines.machine import Machine
from onebox.metrics.sampler import Sample, Sampler

log = logging.getLogger(__name__)


def machine_json(machine: Machine, sample: Sample | None, spark: list[float]) -> dict[str, Any]:
    running = machine.state == "running"
    return {
        "name": machine.name,
        "ip": machine.ip,
        "fqdn": machine.fqdn,
        "url": f"http://{machine.fqdn}/",
        "state": machine.state,
        "image": machine.image,
        "id": machine.id[:12],
        "started_at": machine.started_at if running else "",
        "web_port": machine.web_port,
        "urls": list(machine.urls),
        "labels": dict(machine.labels),
        "cpu_percent": sample.cpu_percent if sample and running else 0.0,
        "memory_bytes": sample.memory if sample and running else 0,
        "memory_limit": sample.memory_limit if sample else 0,
        "rx_bytes": sample.rx_bytes if sample else 0,
        "tx_bytes": sample.tx_bytes if sample else 0,
        "rx_rate": round(sample.rx_rate, 1) if sample and running else 0.0,
        "tx_rate": round(sample.tx_rate, 1) if sample and running else 0.0,
        "spark": [round(v, 1) for v in spark],
    }


class Inventory:
    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.machines: dict[str, Machine] = {}  # by name, in address order
        self.version = 0
        self.loaded = asyncio.Event()

    def replace(self, machines: list[Machine]) -> None:
        machines.sort(key=lambda m: tuple(int(p) for p in (m.ip or "0.0.0.0").split(".")))
        self.machines = {m.name: m for m in machines}
        self.version += 1
        self.loaded.set()
        running = {m.id for m in machines if m.state == "running"}
        self.sampler.track(running)
        for gone in set(self.sampler.recent) - {m.id for m in machines}:
            self.sampler.forget(gone)

    def get(self, name: str) -> Machine | None:
        return self.machines.get(name.lower())

    def row(self, machine: Machine) -> dict[str, Any]:
        spark = list(self.sampler.recent.get(machine.id, ()))
        return machine_json(machine, self.sampler.latest.get(machine.id), spark)

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(m) for m in self.machines.values()]

    def stamp(self) -> tuple[int, int]:
        """Changes whenever rows() would."""
        return self.version, self.sampler.version


def uptime_seconds(started_at: str, now: datetime) -> int | None:
    if not started_at or started_at.startswith("0001"):
        return None
    try:
        started = datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    return max(0, int((now - started).total_seconds()))


class Hub:
    """Server-sent events to every open page; a slow page misses updates, never blocks."""

    def __init__(self, depth: int = 16) -> None:
        self.depth = depth
        self._queues: set[asyncio.Queue[str]] = set()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(self.depth)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._queues.discard(queue)

    @staticmethod
    def message(event: str, data: Any) -> str:
        return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def publish(self, event: str, data: Any) -> None:
        if not self._queues:
            return
        text = self.message(event, data)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(text)

    def __len__(self) -> int:
        return len(self._queues)
