"""A stack's generated secrets (database passwords), kept as labels of an empty Docker
volume named `LAB_STACK.secrets`. Docker, not a host file, holds them because Docker is
onebox's source of truth: the CLI on the host and the gateway's API see the same
secrets, they live exactly as long as the stack's data volumes (`stack rm` keeps both,
`--volumes` removes both), and `onebox destroy` finds them by their lab label. Anyone
who can read them can already read the machines' environment. Never logged."""

from __future__ import annotations

import json
import secrets as random
from collections.abc import Iterable

from onebox.engine import Engine, Label

ROLE = "secrets"
SECRETS_LABEL = "onebox.secrets"


def volume_name(lab: str, stack: str) -> str:
    return f"{lab}_{stack}.secrets"


def load(engine: Engine, lab: str, stack: str) -> dict[str, str]:
    filters = {"label": [f"{Label.LAB}={lab}", f"{Label.STACK}={stack}", f"{Label.ROLE}={ROLE}"]}
    for volume in engine.client.volumes.list(filters=filters):
        labels = volume.attrs.get("Labels") or {}
        found: dict[str, str] = json.loads(labels.get(SECRETS_LABEL, "{}"))
        return found
    return {}


def ensure(
    engine: Engine, lab: str, stack: str, keys: Iterable[str], test: bool = False
) -> tuple[dict[str, str], list[str]]:
    """The stack's secrets, generating the missing ones; returns them and the new keys."""
    current = load(engine, lab, stack)
    new = [key for key in keys if key not in current]
    if not new:
        return current, []
    current.update({key: random.token_urlsafe(18) for key in new})
    labels = {
        Label.LAB: lab,
        Label.STACK: stack,
        Label.ROLE: ROLE,
        SECRETS_LABEL: json.dumps(current, sort_keys=True),
    }
    if test:
        labels[Label.TEST] = "1"
    remove(engine, lab, stack)  # labels cannot change, so a grown set is a new volume
    engine.client.volumes.create(volume_name(lab, stack), labels=labels)
    return current, new


def remove(engine: Engine, lab: str, stack: str) -> int:
    filters = {"label": [f"{Label.LAB}={lab}", f"{Label.STACK}={stack}", f"{Label.ROLE}={ROLE}"]}
    found = engine.client.volumes.list(filters=filters)
    for volume in found:
        engine.client.api.remove_volume(volume.id, force=True)
    return len(found)
