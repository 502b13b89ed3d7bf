"""Long-lived engine streams read on the event loop: per-container stats, one JSON
document a second. A thread per stream would not scale to hundreds of machines, so
these speak HTTP/1.1 to the engine's Unix socket directly."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from onebox.errors import EngineUnavailable

log = logging.getLogger(__name__)

DOCKER_SOCKET = "/var/run/docker.sock"
API_VERSION = "1.41"  # Debian's Docker 20.10; every later engine still answers it
MAX_LINE = 1 << 20


async def stats(
    container_id: str, socket_path: str = DOCKER_SOCKET
) -> AsyncIterator[dict[str, Any]]:
    """The container's stats documents as the engine streams them; ends with the
    container or the connection."""
    path = f"/v{API_VERSION}/containers/{container_id}/stats?stream=true"
    async for line in _lines(path, socket_path):
        if line.strip():
            yield json.loads(line)


async def open_engine(
    socket_path: str = DOCKER_SOCKET,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(socket_path, limit=MAX_LINE)
    except OSError as exc:
        raise EngineUnavailable(
            f"No Docker engine answers at {socket_path}",
            "mount the engine's socket into the gateway",
        ) from exc


async def _lines(path: str, socket_path: str) -> AsyncIterator[bytes]:
    reader, writer = await open_engine(socket_path)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        status, chunked = await read_head(reader)
        if status != 200:
            log.debug("GET %s answered %d", path, status)
            return
        body = _chunks(reader) if chunked else _raw(reader)
        pending = b""
        async for piece in body:
            pending += piece
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line
    finally:
        writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    parts = status_line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    chunked = False
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            return status, chunked
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size_line = await reader.readline()
        if not size_line:
            return
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readline()


async def _raw(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while piece := await reader.read(65536):
        yield piece
