"""Public keys that may log in to the SSH entry, in OpenSSH's authorized_keys format,
and the gateway's host key. Pure file-format work: no engine, no network. Keys are
named by their SHA256 fingerprint in every message and log line, never by their text."""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from onebox.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

AUTHORIZED_KEYS = "authorized_keys"
HOST_KEY = "ssh_host_ed25519_key"
ALGORITHM_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-")


@dataclass(frozen=True)
class AuthorizedKey:
    algorithm: str
    blob: bytes
    comment: str
    fingerprint: str

    def line(self) -> str:
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.algorithm} {encoded} {self.comment}".rstrip()

    def as_dict(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "algorithm": self.algorithm,
            "comment": self.comment,
        }


def parse_line(line: str, where: str) -> AuthorizedKey:
    """One `ALGORITHM BASE64 [COMMENT]` line; InvalidInput names the line, not the key."""
    fields = line.split(None, 2)
    if not fields[0].startswith(ALGORITHM_PREFIXES):
        raise InvalidInput(
            f"{where} starts with '{fields[0][:20]}', not a key type",
            "give plain public key lines (like `ssh-ed25519 AAAA... me@host`)"
            "; options such as from= or command= are not supported",
        )
    if len(fields) < 2:
        raise InvalidInput(
            f"{where} has a key type but no key", "copy the whole line of the .pub file"
        )
    try:
        blob = base64.b64decode(fields[1], validate=True)
        key = asyncssh.import_public_key(f"{fields[0]} {fields[1]}")
    except (binascii.Error, asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidInput(
            f"{where} is not a valid {fields[0]} public key ({exc})",
            "copy the line again from the .pub file, or make a new key with "
            "`ssh-keygen -t ed25519`",
        ) from None
    comment = fields[2].strip() if len(fields) > 2 else ""
    return AuthorizedKey(
        algorithm=key.get_algorithm(),
        blob=blob,
        comment=comment,
        fingerprint=key.get_fingerprint("sha256"),
    )


def _key_lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_authorized_keys(text: str, source: str) -> tuple[list[AuthorizedKey], list[str]]:
    """Every valid key of a file, and one problem line per line that was skipped; a bad
    line must not lock everybody out."""
    keys: list[AuthorizedKey] = []
    problems: list[str] = []
    for number, line in _key_lines(text):
        try:
            keys.append(parse_line(line, f"Line {number} of {source}"))
        except InvalidInput as exc:
            problems.append(exc.message)
    return keys, problems


def read_public_keys(text: str, source: str) -> list[AuthorizedKey]:
    """The keys of a file a user hands over: strict, so a mistake is told, not skipped."""
    if "PRIVATE KEY" in text:
        raise InvalidInput(
            f"'{source}' holds a private key", "give the public half: the file ending in .pub"
        )
    keys = [parse_line(line, f"Line {number} of '{source}'") for number, line in _key_lines(text)]
    if not keys:
        raise InvalidInput(
            f"'{source}' holds no public key", "give a .pub file, e.g. ~/.ssh/id_ed25519.pub"
        )
    return keys


def render(keys: Iterable[AuthorizedKey]) -> str:
    lines = [key.line() for key in keys]
    header = "# Keys allowed into this lab's SSH entry; change with `onebox ssh add-key`.\n"
    return header + "".join(f"{line}\n" for line in lines)


def merge(
    current: list[AuthorizedKey], new: list[AuthorizedKey]
) -> tuple[list[AuthorizedKey], list[AuthorizedKey]]:
    """The combined list and the keys that were not there yet."""
    known = {key.blob for key in current}
    added: list[AuthorizedKey] = []
    for key in new:
        if key.blob not in known:
            known.add(key.blob)
            added.append(key)
    return current + added, added


def without(
    current: list[AuthorizedKey], fingerprint: str, lab: str
) -> tuple[list[AuthorizedKey], AuthorizedKey]:
    """The list less the key with this fingerprint (with or without `SHA256:`)."""
    wanted = fingerprint if fingerprint.startswith("SHA256:") else f"SHA256:{fingerprint}"
    for key in current:
        if key.fingerprint == wanted:
            return [k for k in current if k is not key], key
    raise NotFound(
        f"No key with fingerprint '{fingerprint}' in lab '{lab}'",
        f"list the keys with `onebox ssh keys --lab {lab}`",
    )


def ensure_host_key(data_dir: Path) -> asyncssh.SSHKey:
    """The gateway's host key, made once and kept in its data volume so that clients
    see the same key after the gateway is recreated."""
    path = data_dir / HOST_KEY
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="onebox gateway")
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    os.replace(partial, path)
    log.info("Made the SSH host key %s", key.get_fingerprint("sha256"))
    return key
