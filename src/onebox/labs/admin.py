"""The lab's dashboard account: one admin whose password hash lives in the gateway's data
volume, written there by the CLI through the engine. The first `up` makes it; a reset
replaces it, which also ends every open dashboard session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass

from docker.models.containers import Container

from onebox.engine import Engine
from onebox.engine.files import read_file, write_file
from onebox.errors import NotFound

log = logging.getLogger(__name__)

DATA_DIR = "/var/lib/onebox"  # where labs.lab mounts the gateway's data volume
ADMIN_FILE = "dashboard-admin.json"
USERNAME = "admin"
PASSWORD_ENV = "ONEBOX_ADMIN_PASSWORD"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_password() -> str:
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


def record(password: str, username: str = USERNAME) -> bytes:
    """The admin file's content. A new generation ends every session of the old one."""
    data = {
        "username": username,
        "hash": hash_password(password),
        "generation": secrets.token_hex(8),
        "changed": time.time(),
    }
    return (json.dumps(data, indent=2) + "\n").encode()


@dataclass(frozen=True)
class NewPassword:
    username: str
    password: str
    from_environment: bool


def ensure(engine: Engine, lab: str) -> NewPassword | None:
    """Makes the admin account if the lab has none; returns its password only then."""
    gateway = _gateway(engine, lab)
    if read_file(gateway, DATA_DIR, ADMIN_FILE) is not None:
        return None
    return _write(engine, lab, os.environ.get(PASSWORD_ENV) or None)


def reset(engine: Engine, lab: str) -> NewPassword:
    """A fresh random password, whatever the environment says."""
    return _write(engine, lab, None)


def _write(engine: Engine, lab: str, given: str | None) -> NewPassword:
    password = given or new_password()
    write_file(_gateway(engine, lab), DATA_DIR, ADMIN_FILE, record(password))
    log.info("Wrote the dashboard admin account of lab %s", lab)
    return NewPassword(USERNAME, password, from_environment=given is not None)


def _gateway(engine: Engine, lab: str) -> Container:
    gateway = engine.gateway(lab)
    if gateway is None:
        raise NotFound(
            f"Lab '{lab}' has no gateway to keep the dashboard account in",
            f"bring it up with `onebox up --lab {lab}`",
        )
    return gateway
