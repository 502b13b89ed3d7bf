"""The gateway image: built on the base image from gateway.Dockerfile and wheels made on the
host, and rebuilt only when what it is built from has changed."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker.errors

from onebox.engine import Engine
from onebox.images import base, wheelhouse
from onebox.images import build as image_build
from onebox.images.base import BASE_IMAGE
from onebox.images.busybox import BUSYBOX_IMAGE
from onebox.images.rootfs import build_lock
from onebox.state import cache_dir

log = logging.getLogger(__name__)

GATEWAY_IMAGE = "onebox/gateway:latest"
HASH_LABEL = "onebox.context-hash"
DOCKERFILE = Path(__file__).with_name("gateway.Dockerfile")

__all__ = ["BASE_IMAGE", "BUSYBOX_IMAGE", "GATEWAY_IMAGE", "current_id", "ensure"]

Report = Callable[[str], None]


def ensure(engine: Engine, report: Report, force: bool = False) -> str:
    """Returns GATEWAY_IMAGE, building it first when its build context has changed since the
    image was built (or when forced, then without Docker's cache). ONEBOX_GATEWAY_IMAGE names
    a ready image to use instead, with no build: for pinning a known-good gateway."""
    pinned = os.environ.get("ONEBOX_GATEWAY_IMAGE")
    if pinned and not force:
        engine.require_image(pinned)
        return pinned
    base.ensure(engine, report)
    with build_lock("gateway"), tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        context = Path(scratch)
        digest = _prepare(context, engine.require_image(BASE_IMAGE).id, report)
        current = engine.image(GATEWAY_IMAGE)
        if not force and current is not None and current.labels.get(HASH_LABEL) == digest:
            log.debug("Image %s is up to date (%s)", GATEWAY_IMAGE, digest)
            return GATEWAY_IMAGE
        _build(engine, context, digest, report, fresh=force)
    if current is not None:
        _remove_if_unused(engine, current.id)
    return GATEWAY_IMAGE


def current_id(engine: Engine) -> str | None:
    """The id of the newest gateway image, to compare with a running gateway's image id."""
    image = engine.image(GATEWAY_IMAGE)
    return None if image is None else str(image.id)


def _prepare(context: Path, base_id: str, report: Report) -> str:
    """Lays out the build context and returns its hash: Dockerfile, wheels and the id of
    the base image they go on, since a new base changes every layer."""
    deps, own = wheelhouse.dependency_wheels(report), wheelhouse.project_wheel(report)
    (context / "wheels/deps").mkdir(parents=True)
    (context / "wheels/onebox").mkdir()
    for wheel in deps.glob("*.whl"):
        shutil.copy2(wheel, context / "wheels/deps" / wheel.name)
    shutil.copy2(own, context / "wheels/onebox" / own.name)
    shutil.copy2(DOCKERFILE, context / "Dockerfile")

    digest = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(f"\0{path.relative_to(context)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _build(engine: Engine, context: Path, digest: str, report: Report, fresh: bool) -> None:
    report(f"Building {GATEWAY_IMAGE}")
    image_build.build(
        engine,
        context,
        GATEWAY_IMAGE,
        {HASH_LABEL: digest},
        report,
        "fix the step that failed (the output above ends with it), then run "
        "`onebox images build` again",
        nocache=fresh,
    )


def _remove_if_unused(engine: Engine, image_id: str) -> None:
    """Drops the image a rebuild replaced; one that a gateway still runs on stays."""
    if image_id == current_id(engine):
        return
    try:
        engine.client.images.remove(image_id)
    except docker.errors.APIError as exc:
        log.debug("Keeping replaced image %s: %s", image_id[:19], exc.explanation)
