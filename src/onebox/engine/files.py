"""Small files inside containers, read and written through the engine's archive calls,
so that the CLI can reach a gateway's data volume without a shell in it."""

from __future__ import annotations

import io
import tarfile
import time

import docker.errors
from docker.models.containers import Container

from onebox.errors import OperationFailed


def read_file(container: Container, directory: str, name: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        stream, _ = container.get_archive(f"{directory.rstrip('/')}/{name}")
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(name)
        return member.read() if member else None


def write_file(
    container: Container, directory: str, name: str, data: bytes, mode: int = 0o600
) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(info, io.BytesIO(data))
    try:
        container.put_archive(directory, buffer.getvalue())
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not write {name} into '{container.name}': " f"{exc.explanation}",
            "check the gateway with `onebox status`, then retry",
        ) from exc
