"""Processes started in a container with their standard streams attached, as asyncio
streams, with or without a TTY: the engine side of `onebox ssh` and of the gateway's
SSH entry. The start is an upgraded HTTP connection read on the event loop (as in
engine.stream), so no output byte is lost to a buffer; non-TTY output is demultiplexed
into stdout and stderr here."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import docker.errors

from onebox.engine.client import Engine
from onebox.engine.stream import DOCKER_SOCKET, open_engine, read_head
from onebox.errors import EngineUnavailable, NotFound, OperationFailed

log = logging.getLogger(__name__)

STDOUT = 1
STDERR = 2
HEADER = struct.Struct(">BxxxL")  # stream number, three pad bytes, payload length


@dataclass
class Attached:
    """One process in a container; read() gives (stream, bytes) until the process ends."""

    engine: Engine
    exec_id: str
    tty: bool
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk of output and its stream, or None once the process closed it."""
        if self.tty:
            data = await self.reader.read(65536)
            return (STDOUT, data) if data else None
        try:
            stream, size = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            return (STDERR if stream == STDERR else STDOUT, await self.reader.readexactly(size))
        except asyncio.IncompleteReadError:
            return None

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        """Ends the process's input (a no-op for a TTY, which has no half-close)."""
        if not self.tty and self.writer.can_write_eof() and not self.writer.is_closing():
            self.writer.write_eof()

    async def resize(self, columns: int, rows: int) -> None:
        if not self.tty or columns <= 0 or rows <= 0:
            return
        try:
            await asyncio.to_thread(
                self.engine.client.api.exec_resize, self.exec_id, height=rows, width=columns
            )
        except docker.errors.APIError as exc:  # the process may have just ended
            log.debug("resize of exec %s failed: %s", self.exec_id[:12], exc)

    async def exit_code(self) -> int:
        """The process's exit status; waits briefly for the engine to record it."""
        for _ in range(50):
            state = await asyncio.to_thread(self.engine.client.api.exec_inspect, self.exec_id)
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            await asyncio.sleep(0.02)
        return 255

    def close(self) -> None:
        self.writer.close()


async def start(
    engine: Engine,
    container_id: str,
    command: Sequence[str],
    *,
    tty: bool,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
) -> Attached:
    """Starts `command` in the container with stdin, stdout and stderr attached."""
    try:
        created = await asyncio.to_thread(
            engine.client.api.exec_create,
            container_id,
            list(command),
            stdin=True,
            stdout=True,
            stderr=True,
            tty=tty,
            environment=dict(env or {}),
            workdir=workdir,
        )
    except docker.errors.NotFound as exc:
        raise NotFound(
            f"Container '{container_id[:12]}' is gone", "list machines with `onebox machine ls`"
        ) from exc
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not start a process in '{container_id[:12]}': " f"{exc.explanation}",
            "start the machine with `onebox machine start NAME`",
        ) from exc
    exec_id = str(created["Id"])
    reader, writer = await open_engine(_socket_path())
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    version = engine.client.api.api_version
    writer.write(
        f"POST /v{version}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
        f"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status, _ = await read_head(reader)
    if status not in (101, 200):
        writer.close()
        raise OperationFailed(
            f"The engine refused to attach to exec {exec_id[:12]} (HTTP {status})",
            "check that the machine is running with `onebox status`",
        )
    log.debug("attached to exec %s (tty=%s)", exec_id[:12], tty)
    return Attached(engine=engine, exec_id=exec_id, tty=tty, reader=reader, writer=writer)


def _socket_path() -> str:
    """The engine's socket as DOCKER_HOST names it; the hijacked stream needs a unix one."""
    url = urlparse(os.environ.get("DOCKER_HOST", "") or f"unix://{DOCKER_SOCKET}")
    if url.scheme != "unix":
        raise EngineUnavailable(
            f"Attaching to a process needs the engine's unix socket, not {url.geturl()}",
            f"set DOCKER_HOST=unix://{DOCKER_SOCKET} (or the socket's path)",
        )
    return url.path
