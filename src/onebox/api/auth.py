"""Who may use the gateway's website and API, and from where: the admin's password
(an scrypt hash in the gateway's data volume, written by the CLI), signed session
cookies with a CSRF token inside, API tokens, and the Host and Origin checks that stop
DNS rebinding and cross-site requests. Nothing here touches Docker or HTTP objects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onebox.labs import admin as admin_account

log = logging.getLogger(__name__)

SECRET_FILE = "dashboard-secret"
TOKENS_FILE = "dashboard-tokens.sqlite"
SESSION_SECONDS = 12 * 3600
TOKEN_PREFIX = "obt_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the admin account ---------------------------------------------------------------


@dataclass(frozen=True)
class Admin:
    username: str
    hash: str
    generation: str


class Admins:
    """The admin account, re-read when its file changes (the CLI may reset it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[float, Admin | None] = (-1.0, None)

    def current(self) -> Admin | None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        if mtime != self._seen[0]:
            self._seen = (mtime, self._load())
        return self._seen[1]

    def _load(self) -> Admin | None:
        try:
            data = json.loads(self.path.read_text())
            return Admin(str(data["username"]), str(data["hash"]), str(data["generation"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning(
                "Cannot read the admin account in %s (%s); nobody can log in "
                "until `onebox dashboard password --reset`",
                self.path,
                exc,
            )
            return None

    def check(self, username: str, password: str) -> Admin | None:
        admin = self.current()
        if admin is None or not hmac.compare_digest(username.encode(), admin.username.encode()):
            return None
        return admin if admin_account.verify_password(password, admin.hash) else None


# -- sessions -----------------------------------------------------------------------


def load_secret(path: Path) -> bytes:
    """The key that signs session cookies, made once per gateway data volume."""
    if path.is_file():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


@dataclass(frozen=True)
class Session:
    user: str
    generation: str
    csrf: str
    expires: float


class Sessions:
    """Signed cookie values: the session lives in the cookie, the key in the gateway."""

    def __init__(self, secret: bytes, seconds: float = SESSION_SECONDS) -> None:
        self.secret = secret
        self.seconds = seconds

    def issue(self, admin: Admin, now: float | None = None) -> tuple[str, Session]:
        expires = (time.time() if now is None else now) + self.seconds
        session = Session(admin.username, admin.generation, secrets.token_urlsafe(18), expires)
        payload = _b64(
            json.dumps(
                {"u": session.user, "g": session.generation, "c": session.csrf, "e": int(expires)}
            ).encode()
        )
        return f"{payload}.{self._sign(payload)}", session

    def read(self, value: str, admin: Admin | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, if it is signed, current and of this admin."""
        payload, _, signature = value.partition(".")
        if admin is None or not hmac.compare_digest(
            signature.encode(), self._sign(payload).encode()
        ):
            return None
        try:
            data: dict[str, Any] = json.loads(_unb64(payload))
            session = Session(str(data["u"]), str(data["g"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        current = time.time() if now is None else now
        if session.expires < current or session.generation != admin.generation:
            return None
        return session if session.user == admin.username else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())


# -- API tokens ---------------------------------------------------------------------


class Tokens:
    """Bearer tokens for scripts: only a digest is stored; the token is shown once."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT "
            "NOT NULL, digest TEXT UNIQUE NOT NULL, created REAL NOT NULL)"
        )

    def create(self, name: str) -> dict[str, Any]:
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(24)}"
        created = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)", (token_id, name, _digest(token), created)
            )
        return {"id": token_id, "name": name, "created": created, "token": token}

    def verify(self, token: str) -> str | None:
        """The token's id when it is one of ours."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM tokens WHERE digest = ?", (_digest(token),)
            ).fetchone()
        return str(row[0]) if row else None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, created FROM tokens ORDER BY created")
            return [{"id": i, "name": n, "created": c} for i, n, c in rows.fetchall()]

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            return bool(self._db.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- where requests may come from ----------------------------------------------------


def split_host(host: str) -> tuple[str, int | None]:
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        name, _, port = host.partition(":")
    return name.rstrip("."), int(port) if port.isdigit() else None


class HostPolicy:
    """The gateway's own names. A Host header naming anything else is a browser that
    was led here by a rebound DNS name, and is refused."""

    LOOPBACK = ("127.0.0.1", "localhost", "::1")

    def __init__(self, lab_names: set[str], local_ports: set[int]) -> None:
        self.lab_names = {name.lower().rstrip(".") for name in lab_names}
        self.local_ports = local_ports

    def allows(self, host: str) -> bool:
        name, port = split_host(host)
        if name in self.lab_names:
            return True
        return name in self.LOOPBACK and port in self.local_ports

    def allows_origin(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and self.allows(parts.netloc)

    def described(self) -> str:
        local = ", ".join(f"127.0.0.1:{p}" for p in sorted(self.local_ports))
        return ", ".join([local, *sorted(self.lab_names)])


class Throttle:
    """Slows password guessing: at most `limit` failed logins a minute."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: deque[float] = deque()

    def blocked(self, now: float | None = None) -> bool:
        current = time.monotonic() if now is None else now
        while self._failures and self._failures[0] < current - self.window:
            self._failures.popleft()
        return len(self._failures) >= self.limit

    def failed(self, now: float | None = None) -> None:
        self._failures.append(time.monotonic() if now is None else now)
