"""Who may use a lab's SSH entry: the authorized_keys file in the gateway's data volume,
read and written through the engine so that it outlives the gateway container. The
gateway's SSH plane notices a new file on the next login; nothing is restarted."""

from __future__ import annotations

import logging

from docker.models.containers import Container

from onebox.engine import Engine, files
from onebox.errors import NotFound
from onebox.labs.lab import Lab
from onebox.ssh import keys
from onebox.state import lab_lock

log = logging.getLogger(__name__)

DATA_DIR = "/var/lib/onebox"  # where labs.lab mounts the gateway's data volume


def _gateway(engine: Engine, lab: Lab) -> Container:
    gateway = engine.gateway(lab.name)
    if gateway is None:
        raise NotFound(
            f"Lab '{lab.name}' has no gateway to keep SSH keys in",
            f"bring it up with `onebox up --lab {lab.name}`",
        )
    return gateway


def _save(gateway: Container, current: list[keys.AuthorizedKey]) -> None:
    files.write_file(gateway, DATA_DIR, keys.AUTHORIZED_KEYS, keys.render(current).encode())


def list_keys(engine: Engine, lab: Lab) -> list[keys.AuthorizedKey]:
    data = files.read_file(_gateway(engine, lab), DATA_DIR, keys.AUTHORIZED_KEYS) or b""
    found, problems = keys.parse_authorized_keys(data.decode(errors="replace"), "the key file")
    for problem in problems:
        log.warning("Skipped a line of the SSH keys: %s", problem)
    return found


def add_keys(engine: Engine, lab: Lab, new: list[keys.AuthorizedKey]) -> list[keys.AuthorizedKey]:
    """Registers the keys; returns those that were not registered before."""
    with lab_lock(lab.name):
        gateway = _gateway(engine, lab)
        combined, added = keys.merge(list_keys(engine, lab), new)
        if added:
            _save(gateway, combined)
    for key in added:
        log.info("Registered SSH key %s in lab %s", key.fingerprint, lab.name)
    return added


def remove_key(engine: Engine, lab: Lab, fingerprint: str) -> keys.AuthorizedKey:
    with lab_lock(lab.name):
        gateway = _gateway(engine, lab)
        remaining, removed = keys.without(list_keys(engine, lab), fingerprint, lab.name)
        _save(gateway, remaining)
    log.info("Removed SSH key %s from lab %s", removed.fingerprint, lab.name)
    return removed
