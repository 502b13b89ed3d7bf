"""The gateway's memory of the past, in SQLite in its data volume: traffic samples of
every machine and the lab's events. Docker knows the present; this keeps what Docker
forgets. Old rows are pruned, so the file stays small."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600  # traffic samples; events are kept a week
EVENTS_KEEP_SECONDS = 7 * KEEP_SECONDS
SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    machine TEXT NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
    cpu REAL NOT NULL, memory INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_machine ON samples (machine, t);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (t);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL, machine TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_by_time ON events (t);
"""


@dataclass(frozen=True)
class TrafficRow:
    machine: str
    t: int
    rx: int
    tx: int
    cpu: float
    memory: int


class History:
    """Thread-safe: the event loop writes, request handlers and threads read."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def add_samples(self, rows: Iterable[TrafficRow]) -> None:
        values = [(r.machine, r.t, r.rx, r.tx, r.cpu, r.memory) for r in rows]
        with self._lock:
            self._db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)", values)

    def traffic(self, machine: str, since: float) -> list[dict[str, Any]]:
        """Samples of one machine since a time, with rates between neighbours."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t, rx, tx, cpu, memory FROM samples WHERE machine = ? AND t >= ? "
                "ORDER BY t",
                (machine, int(since)),
            ).fetchall()
        points: list[dict[str, Any]] = []
        for previous, row in zip([None, *rows], rows, strict=False):
            t, rx, tx, cpu, memory = row
            rx_rate = tx_rate = 0.0
            if previous is not None and t > previous[0] and rx >= previous[1]:
                rx_rate = (rx - previous[1]) / (t - previous[0])
                tx_rate = max(0.0, (tx - previous[2]) / (t - previous[0]))
            points.append(
                {
                    "t": t,
                    "rx_bytes": rx,
                    "tx_bytes": tx,
                    "rx_rate": rx_rate,
                    "tx_rate": tx_rate,
                    "cpu_percent": cpu,
                    "memory_bytes": memory,
                }
            )
        return points

    def add_event(
        self, machine: str, action: str, detail: str = "", when: float | None = None
    ) -> dict[str, Any]:
        t = time.time() if when is None else when
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (t, machine, action, detail) VALUES (?, ?, ?, ?)",
                (t, machine, action, detail),
            )
        return {
            "id": cursor.lastrowid,
            "t": t,
            "machine": machine,
            "action": action,
            "detail": detail,
        }

    def events(self, limit: int = 100, machine: str | None = None) -> list[dict[str, Any]]:
        """The newest events first."""
        query = "SELECT id, t, machine, action, detail FROM events"
        args: list[Any] = []
        if machine is not None:
            query += " WHERE machine = ?"
            args.append(machine)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [{"id": i, "t": t, "machine": m, "action": a, "detail": d} for i, t, m, a, d in rows]

    def prune(self, now: float | None = None, keep: float = KEEP_SECONDS) -> int:
        cutoff = (time.time() if now is None else now) - keep
        with self._lock:
            gone = self._db.execute("DELETE FROM samples WHERE t < ?", (cutoff,)).rowcount
            gone += self._db.execute(
                "DELETE FROM events WHERE t < ?", (cutoff + keep - EVENTS_KEEP_SECONDS,)
            ).rowcount
        return int(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()
