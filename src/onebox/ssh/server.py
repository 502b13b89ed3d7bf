"""The gateway's SSH entry, a data plane: `ssh -p PORT NAME@HOST` lands in machine NAME
through the engine, and direct-tcpip channels (`ssh -L`, `ssh -J`) reach lab machines
only. Public keys only; keys are read from the data volume and named in logs by their
fingerprint, never by their text."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from pathlib import Path
from typing import Any

import asyncssh

from onebox.engine import Engine
from onebox.errors import InvalidInput
from onebox.gateway.settings import Settings
from onebox.gateway.watcher import MachineView
from onebox.ssh import destination, keys, session

log = logging.getLogger(__name__)

INNER_PORT = 22


class KeyFile:
    """The authorized_keys file, read again whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._allowed: dict[bytes, keys.AuthorizedKey] = {}

    def allowed(self) -> dict[bytes, keys.AuthorizedKey]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None or not self._allowed:
                log.info("No SSH keys registered yet (%s is missing)", self.path)
            self._seen, self._allowed = None, {}
            return self._allowed
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature != self._seen:
            self._seen = signature
            self._allowed = self._load()
        return self._allowed

    def _load(self) -> dict[bytes, keys.AuthorizedKey]:
        text = self.path.read_text(errors="replace")
        found, problems = keys.parse_authorized_keys(text, str(self.path))
        for problem in problems:
            log.warning("Skipped a line of the SSH keys: %s", problem)
        log.info(
            "Loaded %d SSH keys: %s",
            len(found),
            ", ".join(key.fingerprint for key in found) or "none",
        )
        return {key.blob: key for key in found}


class SshPlane:
    """Serves SSH on port 22 inside the gateway; the host publishes it as the lab's ssh
    port."""

    name = "ssh"

    def __init__(self, settings: Settings, engine: Engine, port: int = INNER_PORT) -> None:
        self.settings = settings
        self.engine = engine
        self.port = port
        self.keys = KeyFile(Path(settings.data_dir) / keys.AUTHORIZED_KEYS)
        self.machines: dict[str, MachineView] = {}
        self._server: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        host_key = await asyncio.to_thread(keys.ensure_host_key, Path(self.settings.data_dir))
        self.keys.allowed()
        self._server = await asyncssh.create_server(
            lambda: EntryConnection(self),
            "0.0.0.0",
            self.port,
            server_host_keys=[host_key],
            encoding=None,
            line_editor=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
        )

    def update(self, views: list[MachineView]) -> None:
        self.machines = {view.name: view for view in views}

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def lab_map(self) -> destination.LabMap:
        return destination.LabMap(
            domain=self.settings.domain,
            subnet=self.settings.subnet,
            gateway_ip=self.settings.gateway_ip,
            machines={name: view.ip for name, view in self.machines.items() if view.running},
        )

    def login_hint(self) -> str:
        port = self.settings.ports.get("ssh", INNER_PORT)
        return (
            f"list machines with `onebox machine ls --lab {self.settings.lab}`, then "
            f"`ssh -p {port} NAME@HOST`"
        )

    def target(self, user: str) -> session.Target:
        """The machine a login name means, or a refusal that says what to do."""
        name = user.lower().removesuffix(f".{self.settings.domain}")
        view = self.machines.get(name)
        if view is not None and view.running:
            log.info("SSH session into %s", name)
            return session.Target(machine=name, container_id=view.container_id)
        why = "is stopped" if view else "does not exist"
        fix = (
            f"start it with `onebox machine start {name} --lab {self.settings.lab}`"
            if view
            else self.login_hint()
        )
        log.info("Refused a session for machine %s: it %s", shlex.quote(name), why)
        return session.Target(
            machine=name,
            refusal=f"onebox: machine '{name}' {why} in lab " f"'{self.settings.lab}'; {fix}",
        )


class EntryConnection(asyncssh.SSHServer):
    """One client connection: key check and forwarding policy."""

    def __init__(self, plane: SshPlane) -> None:
        self.plane = plane
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self.offered: list[str] = []

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint("sha256")
        if key.public_data in self.plane.keys.allowed():
            self.offered.append(fingerprint)
            return True
        log.info("Refused SSH key %s for %s from %s", fingerprint, username, self.peer)
        if self.conn is not None and fingerprint not in self.offered:
            self.conn.send_auth_banner(
                f"onebox: key {fingerprint} is not registered in lab "
                f"'{self.plane.settings.lab}'; register its .pub on the host with "
                f"`onebox ssh add-key FILE --lab {self.plane.settings.lab}`\n"
            )
        self.offered.append(fingerprint)
        return False

    def session_requested(self) -> session.MachineSession:
        assert self.conn is not None
        user = str(self.conn.get_extra_info("username") or "")
        return session.MachineSession(self.plane.engine, lambda: self.plane.target(user))

    def auth_completed(self) -> None:
        fingerprint = self.offered[-1] if self.offered else "?"
        log.info("SSH login with key %s from %s", fingerprint, self.peer)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Any:
        try:
            address = destination.resolve(dest_host, dest_port, self.plane.lab_map())
        except InvalidInput as exc:
            log.info("Refused forwarding from %s to %s:%d", self.peer, dest_host, dest_port)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, exc.message
            ) from None
        assert self.conn is not None
        log.info("Forwarding from %s to %s:%d", self.peer, address, dest_port)
        return self.conn.forward_connection(str(address), dest_port)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        log.info("Refused a remote forward (-R) from %s", self.peer)
        return False
