"""Root file trees made on the host and imported into the engine as images, and the lock
that keeps two onebox processes from making the same image at once."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path

import docker.errors

from onebox.engine import Engine
from onebox.errors import OperationFailed
from onebox.state import lock

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_OCTAL = re.compile(r"\\([0-7]{3})")


def build_lock(image: str) -> AbstractContextManager[None]:
    """Held while one image is made; a second process waits, then finds it made."""
    return lock(f"image-{image}")


def import_tar(engine: Engine, chunks: Iterable[bytes], tag: str, changes: list[str]) -> str:
    """Imports a tar stream as image `tag`, with Dockerfile-style `changes`; returns its id."""
    repository, _, version = tag.rpartition(":")
    try:
        answer = engine.client.api.import_image(
            src=iter(chunks), repository=repository, tag=version, changes=changes, stream_src=True
        )
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not import image '{tag}': {exc.explanation}",
            "check the engine's log and free disk space (`docker system df`)",
        ) from exc
    _raise_on_error(tag, str(answer))
    image_id = str(engine.require_image(tag).id)
    log.info("Imported image %s as %s", tag, image_id[:19])
    return image_id


def import_tree(engine: Engine, root: Path, tag: str, changes: list[str]) -> str:
    """Imports the directory `root` as the root file system of image `tag`."""
    command = ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", "-", "."]
    with tempfile.TemporaryFile() as problems:
        tar = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=problems)
        stream = tar.stdout
        assert stream is not None
        try:
            image_id = import_tar(engine, iter(lambda: stream.read(CHUNK), b""), tag, changes)
        except BaseException:
            tar.kill()  # else it blocks forever writing to a pipe nobody reads
            raise
        finally:
            stream.close()
            tar.wait()
        problems.seek(0)
        said = problems.read().decode(errors="replace").strip()
    if tar.returncode != 0:
        engine.client.images.remove(image_id, force=True)  # made from a cut-short tar
        raise OperationFailed(
            f"Could not pack '{root}' for image '{tag}': {said}",
            f"check that {root} is readable and run the command again",
        )
    return image_id


def remove_tree(path: Path) -> None:
    """Removes a tree that a bootstrap may have left file systems mounted in; a tree that
    still holds a mount after unmounting is kept, so that nothing outside it is deleted."""
    mounts = mounts_under(path)
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
    if mounts_under(path):
        log.warning("Leaving %s in place: file systems are still mounted in it", path)
        return
    shutil.rmtree(path, ignore_errors=True)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    with open("/proc/self/mounts") as table:
        fields = [line.split() for line in table]
    # The mount table escapes spaces and other odd bytes in paths as octal (\040).
    points = [_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), f[1]) for f in fields if len(f) > 1]
    return [point for point in points if point.startswith(prefix)]


def _raise_on_error(tag: str, answer: str) -> None:
    for line in answer.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("error"):
            raise OperationFailed(
                f"Could not import image '{tag}': {event['error']}",
                "check the engine's log and free disk space " "(`docker system df`)",
            )
