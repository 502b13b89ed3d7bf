"""One `docker build` through the engine, followed as it runs: each step to the caller's
progress report, every line to the debug log, and the tail of the output in the error
when it fails. The gateway image and the template recipes both build through it."""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

import docker.errors

from onebox.engine import Engine
from onebox.errors import OperationFailed

log = logging.getLogger(__name__)

Report = Callable[[str], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def build(
    engine: Engine,
    context: Path,
    tag: str,
    labels: dict[str, str],
    report: Report,
    fix: str,
    dockerfile: str | None = None,
    buildargs: dict[str, str] | None = None,
    nocache: bool = False,
) -> str:
    """Builds `tag` from `context`; returns the image id ("" when the engine did not
    say it). `fix` is what the error tells the user to do when a step fails."""
    log.info("Building image %s from %s", tag, context)
    tail: deque[str] = deque(maxlen=20)
    image_id = ""
    try:
        events = engine.client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            rm=True,
            forcerm=True,
            nocache=nocache,
            pull=False,
            decode=True,
            labels=labels,
            buildargs=buildargs,
        )
        for event in events:
            for line in _ANSI.sub("", str(event.get("stream", ""))).splitlines():
                log.debug("build %s: %s", tag, line)
                tail.append(line)
                if line.startswith("Step "):
                    step = " ".join(line.split())
                    report(f"{tag}: {step if len(step) <= 76 else step[:73] + '...'}")
            if event.get("error"):
                raise OperationFailed(
                    f"Building image '{tag}' failed: {str(event['error']).strip()}\n  "
                    + "\n  ".join(tail),
                    fix,
                )
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Building image '{tag}' failed: {exc.explanation}",
            "check the engine with `docker info`, then try again",
        ) from exc
    log.info("Built image %s as %s", tag, image_id[:19])
    return image_id
