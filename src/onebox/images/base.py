"""The Debian base image that onebox builds on: pulled when a registry answers, otherwise
bootstrapped from the host's own Debian mirror with debootstrap and imported. It never
changes an image it did not make."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

import requests

from onebox.engine import Engine
from onebox.errors import OperationFailed
from onebox.images import mirror
from onebox.images.rootfs import build_lock, import_tree, remove_tree
from onebox.state import cache_dir

log = logging.getLogger(__name__)

BASE_IMAGE = "onebox/base:bookworm"
CODENAME = "bookworm"
BASE_LABEL = "onebox.base"
PULL_IMAGE = "debian:bookworm-slim"
# A registry that answers sends progress at once; one that is unreachable is either refused
# at once (no DNS, as here) or answers nothing until the engine's own TCP timeouts, minutes
# later. This bounds each silent wait, not a pull that is making progress.
PULL_PATIENCE = 8.0

Report = Callable[[str], None]


def ensure(engine: Engine, report: Report, force: bool = False) -> str:
    """Returns BASE_IMAGE, making it first when it is missing (or when forced)."""
    if not force and engine.image(BASE_IMAGE) is not None:
        return BASE_IMAGE

    with build_lock("base"):
        if not force and engine.image(BASE_IMAGE) is not None:
            return BASE_IMAGE  # another onebox process made it while this one waited
        if not _tag_pulled(engine, report):
            bootstrap(engine, report)
    return BASE_IMAGE


def bootstrap(engine: Engine, report: Report) -> str:
    """Makes BASE_IMAGE from a minimal debootstrap of Debian, with the host's mirrors."""
    program = _debootstrap_program()
    sources = mirror.host_sources()
    uri = mirror.archive_uri(sources)
    work = Path(tempfile.mkdtemp(prefix="bootstrap-", dir=cache_dir()))
    try:
        root = work / "root"
        secure = any(source.uri.startswith("https:") for source in sources)
        _debootstrap(program, root, uri, secure, report)
        _configure(root, sources)

        report(f"Importing the tree as {BASE_IMAGE}")
        import_tree(engine, root, BASE_IMAGE, [f"LABEL {BASE_LABEL}={CODENAME}", 'CMD ["bash"]'])
    finally:
        remove_tree(work)
    log.info("Made base image %s from %s", BASE_IMAGE, uri)
    return BASE_IMAGE


def _tag_pulled(engine: Engine, report: Report) -> bool:
    """Tags the official slim image as the base, pulling it first; False when no registry
    gives it."""
    local = engine.image(PULL_IMAGE)
    if local is None:
        report(f"Pulling {PULL_IMAGE}")
        if not _pull(engine):
            report("No registry answers; bootstrapping Debian from the host's mirror instead")
            return False
        local = engine.require_image(PULL_IMAGE)
    repository, _, tag = BASE_IMAGE.rpartition(":")
    local.tag(repository, tag)
    log.info("Tagged %s as %s", PULL_IMAGE, BASE_IMAGE)
    return True


def _pull(engine: Engine) -> bool:
    api = engine.client.api
    repository, _, tag = PULL_IMAGE.rpartition(":")
    # APIClient.pull waits with no time limit; this same request, made on the client's own
    # session, bounds every read by PULL_PATIENCE.
    url = f"{api.base_url}/v{api.api_version}/images/create"
    params = {"fromImage": repository, "tag": tag}
    try:
        with api.post(url, params=params, stream=True, timeout=PULL_PATIENCE) as response:
            if response.status_code != 200:
                log.info("Pull of %s refused: %s", PULL_IMAGE, response.text.strip())
                return False
            for line in response.iter_lines():
                event = json.loads(line)
                if event.get("error"):
                    log.info("Pull of %s failed: %s", PULL_IMAGE, event["error"])
                    return False
    except (requests.RequestException, ValueError) as exc:
        log.info("Pull of %s gave up: %s", PULL_IMAGE, exc)
        return False
    return True


def _debootstrap_program() -> str:
    if os.geteuid() != 0:
        raise OperationFailed(
            f"Bootstrapping image '{BASE_IMAGE}' needs root: debootstrap chroots and makes "
            "device nodes",
            "run it as root: `sudo onebox images bootstrap`",
        )
    program = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if program is None:
        raise OperationFailed(
            f"Cannot bootstrap image '{BASE_IMAGE}': debootstrap is not installed",
            "install it with `apt-get install debootstrap` (or run `bash scripts/setup`)",
        )
    return program


def _debootstrap(program: str, root: Path, uri: str, secure: bool, report: Report) -> None:
    # Without ca-certificates, apt inside the image cannot check an https mirror.
    include = ["--include=ca-certificates"] if secure else []
    command = [program, "--variant=minbase", *include, CODENAME, str(root), uri]
    report(f"Bootstrapping Debian {CODENAME} from {uri} (about half a minute)")
    log.info("Running %s", " ".join(command))
    tail: deque[str] = deque(maxlen=15)
    phases: set[str] = set()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            log.debug("debootstrap: %s", line.rstrip())
            words = line.split()
            if line.startswith("I: ") and len(words) > 1 and words[1] not in phases:
                phases.add(words[1])
                report(line[3:].rstrip())
    if proc.returncode != 0:
        kept = _keep_log(root)
        raise OperationFailed(
            f"debootstrap of Debian {CODENAME} from {uri} failed:\n  " + "\n  ".join(tail),
            f"read {kept}, check that `apt-get update` works on this host, then run "
            "`onebox images bootstrap` again",
        )


def _configure(root: Path, sources: list[mirror.AptSource]) -> None:
    """Points the image's apt at the host's mirrors for the release, its updates and its
    security suite, and drops the package lists and packages the bootstrap fetched."""
    apt = root / "etc/apt"
    (apt / "sources.list").unlink(missing_ok=True)
    (apt / "sources.list.d").mkdir(exist_ok=True)
    (apt / "sources.list.d/debian.sources").write_text(mirror.image_sources(sources, CODENAME))

    leftovers = [
        *(root / "var/lib/apt/lists").glob("*"),
        *(root / "var/cache/apt").glob("*.bin"),
        *(root / "var/cache/apt/archives").glob("*.deb"),
    ]
    for path in leftovers:
        if path.is_file() and path.name != "lock":
            path.unlink()


def _keep_log(root: Path) -> Path:
    """Copies debootstrap's own log out of the tree that is about to be removed."""
    kept = cache_dir() / "debootstrap.log"
    written = root / "debootstrap/debootstrap.log"
    if written.is_file():
        shutil.copyfile(written, kept)
    else:
        kept.write_text("debootstrap wrote no log; its output is in the error above\n")
    return kept
