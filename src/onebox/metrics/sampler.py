"""Live CPU, memory and traffic of every running machine. One streaming stats reader
per machine on the event loop (a one-shot stats call costs the engine a second or two
each); the latest sample and a short rate history are kept in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from onebox.engine import stream

log = logging.getLogger(__name__)

RECENT = 60  # seconds of traffic rate kept per machine for the sparklines
RETRY_SECONDS = 2.0

Follow = Callable[[str], AsyncIterator[dict[str, Any]]]


@dataclass(frozen=True)
class Sample:
    time: float
    cpu_percent: float
    memory: int
    memory_limit: int
    rx_bytes: int
    tx_bytes: int
    rx_rate: float = 0.0
    tx_rate: float = 0.0


def parse(doc: dict[str, Any], previous: Sample | None, now: float) -> Sample:
    """One stats document as a sample; rates come from the previous sample."""
    cpu, pre = doc.get("cpu_stats") or {}, doc.get("precpu_stats") or {}
    used = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    cpu_percent = 100.0 * used / system * cores if used > 0 and system > 0 else 0.0

    memory = doc.get("memory_stats") or {}
    details = memory.get("stats") or {}
    # What `docker stats` shows: usage less the page cache that could be dropped.
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    used_memory = max(0, int(memory.get("usage", 0)) - int(cache))

    networks = (doc.get("networks") or {}).values()
    rx = sum(int(n.get("rx_bytes", 0)) for n in networks)
    tx = sum(int(n.get("tx_bytes", 0)) for n in networks)
    rx_rate = tx_rate = 0.0
    if previous is not None and now > previous.time:
        elapsed = now - previous.time
        rx_rate = max(0.0, (rx - previous.rx_bytes) / elapsed)
        tx_rate = max(0.0, (tx - previous.tx_bytes) / elapsed)
    return Sample(
        time=now,
        cpu_percent=round(cpu_percent, 2),
        memory=used_memory,
        memory_limit=int(memory.get("limit", 0)),
        rx_bytes=rx,
        tx_bytes=tx,
        rx_rate=rx_rate,
        tx_rate=tx_rate,
    )


class Sampler:
    """Follows the stats of the machines it is told to track, by container id."""

    def __init__(self, follow: Follow = stream.stats, keep: int = RECENT) -> None:
        self.follow = follow
        self.keep = keep
        self.latest: dict[str, Sample] = {}
        self.recent: dict[str, deque[float]] = {}
        self.version = 0  # grows with every new sample, so readers know when to send
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def track(self, container_ids: set[str]) -> None:
        """Starts readers for new ids and stops those no longer given."""
        for gone in set(self._tasks) - container_ids:
            self._tasks.pop(gone).cancel()
            self.latest.pop(gone, None)
        for new in container_ids - set(self._tasks):
            self._tasks[new] = asyncio.create_task(self._run(new), name=f"stats-{new[:12]}")

    def forget(self, container_id: str) -> None:
        self.recent.pop(container_id, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, container_id: str) -> None:
        while True:
            try:
                async for doc in self.follow(container_id):
                    self._take(container_id, doc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("stats of %s broke off: %s", container_id[:12], exc)
            await asyncio.sleep(RETRY_SECONDS)

    def _take(self, container_id: str, doc: dict[str, Any]) -> None:
        if str(doc.get("read", "")).startswith("0001"):  # a stopped container's empty stats
            return
        sample = parse(doc, self.latest.get(container_id), time.time())
        self.latest[container_id] = sample
        rates = self.recent.setdefault(container_id, deque(maxlen=self.keep))
        rates.append(sample.rx_rate + sample.tx_rate)
        self.version += 1
