"""Interactive shells in machines for the browser terminal: a docker exec with a TTY,
attached through engine.attach, offered as plain bytes in and out."""

from __future__ import annotations

import logging
from typing import Protocol

from onebox.engine import attach
from onebox.engine.client import Engine

log = logging.getLogger(__name__)

# bash where the image has it, else the POSIX shell every image has.
SHELL = [
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; " "else exec sh -l; fi",
]
ENVIRONMENT = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}


class Shell(Protocol):
    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    def close(self) -> None: ...


class Terminal:
    """One shell with a TTY; read() returns b"" once the shell has ended."""

    def __init__(self, attached: attach.Attached) -> None:
        self.attached = attached

    @classmethod
    async def open(
        cls, engine: Engine, container_id: str, cols: int = 80, rows: int = 24
    ) -> Terminal:
        attached = await attach.start(engine, container_id, SHELL, tty=True, env=ENVIRONMENT)
        terminal = cls(attached)
        await terminal.resize(cols, rows)
        return terminal

    async def read(self) -> bytes:
        chunk = await self.attached.read()
        return chunk[1] if chunk else b""

    async def write(self, data: bytes) -> None:
        await self.attached.write(data)

    async def resize(self, cols: int, rows: int) -> None:
        await self.attached.resize(max(2, min(cols, 1000)), max(2, min(rows, 1000)))

    def close(self) -> None:
        """Closing the stream hangs the shell up, as closing a terminal window does."""
        self.attached.close()
