"""Where onebox keeps files on the host: lock files and caches. Docker holds the
truth about labs and machines; nothing here is needed to rebuild them."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


def state_dir() -> Path:
    configured = os.environ.get("ONEBOX_STATE_DIR")
    if configured:
        path = Path(configured)
    elif os.geteuid() == 0:
        path = Path("/var/lib/onebox")
    else:
        path = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "onebox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("ONEBOX_CACHE_DIR", state_dir() / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def lock_dir() -> Path:
    locks = state_dir() / "locks"
    locks.mkdir(exist_ok=True)
    return locks


@contextmanager
def lock(name: str) -> Iterator[None]:
    """An exclusive lock between onebox processes on this host (the gateways included:
    they mount this folder), held for the block."""
    with open(lock_dir() / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lab_lock(lab: str) -> AbstractContextManager[None]:
    """Serialises address allocation and lab changes."""
    return lock(lab)
