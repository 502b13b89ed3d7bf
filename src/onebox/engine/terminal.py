"""Interactive shells in machines: a docker exec with a TTY whose raw byte stream is
bridged to the caller on the event loop. The exec is created and resized through the
SDK; its start is an upgraded HTTP connection, read and written with asyncio."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import docker.errors

from onebox.engine.client import Engine
from onebox.engine.stream import API_VERSION, DOCKER_SOCKET, open_engine, read_head
from onebox.errors import Conflict, OperationFailed

log = logging.getLogger(__name__)

# bash where the image has it, else the POSIX shell every image has.
SHELL = [
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; " "else exec sh -l; fi",
]


class Shell(Protocol):
    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    def close(self) -> None: ...


class Terminal:
    """One shell with a TTY; read() returns b"" once the shell has ended."""

    def __init__(
        self,
        engine: Engine,
        exec_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.engine = engine
        self.exec_id = exec_id
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(
        cls,
        engine: Engine,
        container_id: str,
        cols: int = 80,
        rows: int = 24,
        socket_path: str = DOCKER_SOCKET,
    ) -> Terminal:
        exec_id = await asyncio.to_thread(_create_exec, engine, container_id)
        reader, writer = await open_engine(socket_path)
        body = json.dumps({"Detach": False, "Tty": True}).encode()
        writer.write(
            f"POST /v{API_VERSION}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, _ = await read_head(reader)
        if status not in (101, 200):
            writer.close()
            raise OperationFailed(
                f"The engine refused to start a shell ({status})",
                "check that the machine is running, then retry",
            )
        terminal = cls(engine, exec_id, reader, writer)
        await terminal.resize(cols, rows)
        return terminal

    async def read(self) -> bytes:
        return await self._reader.read(65536)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def resize(self, cols: int, rows: int) -> None:
        cols, rows = max(2, min(cols, 1000)), max(2, min(rows, 1000))
        try:
            await asyncio.to_thread(
                self.engine.client.api.exec_resize, self.exec_id, height=rows, width=cols
            )
        except docker.errors.APIError as exc:  # the shell may have just ended
            log.debug("resize of exec %s failed: %s", self.exec_id[:12], exc)

    def close(self) -> None:
        """Closing the stream hangs the shell up, as closing a terminal window does."""
        self._writer.close()


def _create_exec(engine: Engine, container_id: str) -> str:
    try:
        created = engine.client.api.exec_create(
            container_id,
            SHELL,
            stdin=True,
            tty=True,
            environment={"TERM": "xterm-256color", "COLORTERM": "truecolor"},
        )
    except docker.errors.APIError as exc:
        raise Conflict(
            f"Cannot open a shell: {exc.explanation}", "start the machine first"
        ) from exc
    return str(created["Id"])
