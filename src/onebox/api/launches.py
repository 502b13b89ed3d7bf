"""Template launches that the gateway runs for the API: each one a background task whose
progress lines and result stay in memory, so that a page can follow it as server-sent
events. A launch's generated secrets leave memory with the first answer that shows them;
the stack's secrets volume keeps them for `onebox template secrets`."""

from __future__ import annotations

import asyncio
import logging
import secrets as random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from onebox.api.inventory import Hub
from onebox.errors import Conflict, NotFound, OneboxError

log = logging.getLogger(__name__)

Report = Callable[[str], None]
# The work of one launch, run in a thread: it reports lines and returns the result.
Work = Callable[[Report], dict[str, Any]]

KEPT = 50  # finished launches remembered, newest first
MAX_LINES = 2000  # a launch that reports more keeps its last lines


@dataclass
class Launch:
    id: str
    template: str
    stack: str
    started: float
    state: str = "running"  # then "done" or "failed"
    lines: list[str] = field(default_factory=list)  # the last MAX_LINES of them
    first: int = 0  # the number of lines[0] among all the launch reported
    result: dict[str, Any] | None = None
    error: dict[str, str | None] | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # until shown once
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) > MAX_LINES:
            del self.lines[0]
            self.first += 1
        self._wake()

    def finish(self, result: dict[str, Any] | None, error: OneboxError | None) -> None:
        if error is not None:
            self.state, self.error = "failed", {"error": error.message, "fix": error.fix}
        else:
            self.state, self.result = "done", dict(result or {})
            self.secrets = dict(self.result.pop("secrets", None) or {})
        self._wake()

    def _wake(self) -> None:
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()

    def view(self, reveal: bool = False) -> dict[str, Any]:
        """The launch as the API shows it; `reveal` hands the secrets out, this once."""
        result = None
        if self.result is not None:
            result = {**self.result, "secrets": self.secrets if reveal else {}}
            if reveal:
                self.secrets = {}
        return {
            "id": self.id,
            "template": self.template,
            "stack": self.stack,
            "started": self.started,
            "state": self.state,
            "lines": list(self.lines),
            "result": result,
            "error": self.error,
        }


class Launches:
    """The gateway's launches by id; at most one running launch per stack name."""

    def __init__(self) -> None:
        self.by_id: dict[str, Launch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, launch_id: str) -> Launch:
        found = self.by_id.get(launch_id)
        if found is None:
            raise NotFound(
                f"Launch '{launch_id}' is not known to this gateway",
                "list recent launches with GET /api/launches; a restarted gateway forgets them",
            )
        return found

    def recent(self) -> list[Launch]:
        return sorted(self.by_id.values(), key=lambda launch: launch.started, reverse=True)

    def start(self, template: str, stack: str, work: Work) -> Launch:
        """Runs `work` in a thread and returns its record at once."""
        if any(x.stack == stack and x.state == "running" for x in self.by_id.values()):
            raise Conflict(
                f"Stack '{stack}' is being launched already",
                "follow that launch on the Templates page, or choose another stack name",
            )
        launch = Launch(random.token_hex(6), template, stack, time.time())
        self.by_id[launch.id] = launch
        self._forget_old()
        task = asyncio.create_task(self._run(launch, work), name=f"launch-{stack}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("Launching template %s as stack %s", template, stack)
        return launch

    async def _run(self, launch: Launch, work: Work) -> None:
        loop = asyncio.get_running_loop()

        def report(line: str) -> None:
            loop.call_soon_threadsafe(launch.add, line)

        try:
            result = await asyncio.to_thread(work, report)
        except OneboxError as exc:
            launch.finish(None, exc)
            # Not the message: it may quote a service's log, and secrets never go to logs.
            log.info(
                "Launch of stack %s failed; GET /api/launches/%s says why", launch.stack, launch.id
            )
            return
        except Exception as exc:
            log.exception("Launch of stack %s broke", launch.stack)
            launch.finish(None, OneboxError(f"The launch broke: {exc}", "see the gateway's log"))
            return
        launch.finish(result, None)
        log.info("Launched stack %s", launch.stack)

    def _forget_old(self) -> None:
        finished = [x for x in self.recent() if x.state != "running"]
        for old in finished[KEPT:]:
            del self.by_id[old.id]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def follow(launch: Launch, ping_seconds: float) -> AsyncIterator[str]:
    """Server-sent events: a `line` per progress line, past ones first, then one `done`
    with the whole launch (its secrets, if no one has seen them yet)."""
    sent = 0
    while True:
        waiter = launch.changed
        if sent < launch.first:
            yield Hub.message("line", f"… ({launch.first - sent} lines left out)")
            sent = launch.first
        for line in launch.lines[sent - launch.first :]:
            yield Hub.message("line", line)
        sent = launch.first + len(launch.lines)
        if launch.state != "running":
            yield Hub.message("done", launch.view(reveal=True))
            return
        try:
            await asyncio.wait_for(waiter.wait(), ping_seconds)
        except TimeoutError:
            yield ": ping\n\n"
