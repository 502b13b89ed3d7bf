"""A two-megabyte image for light machines: Debian's static busybox with its applet links,
a root user and a web root, for tests and demos that need many small servers."""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from onebox.engine import Engine
from onebox.errors import OperationFailed
from onebox.images.rootfs import build_lock, import_tar

log = logging.getLogger(__name__)

BUSYBOX_IMAGE = "onebox/busybox:latest"
BUSYBOX_LABEL = "onebox.busybox"
BINARY = Path("/bin/busybox")
PACKAGE = "busybox-static"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
}
DIRECTORIES = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "root": 0o700,
    "tmp": 0o1777,
    "var/www": 0o755,
}


def ensure(engine: Engine, report: Callable[[str], None], force: bool = False) -> str:
    """Returns BUSYBOX_IMAGE, making it first when it is missing (or when forced)."""
    if not force and engine.image(BUSYBOX_IMAGE) is not None:
        return BUSYBOX_IMAGE

    with build_lock("busybox"):
        if not force and engine.image(BUSYBOX_IMAGE) is not None:
            return BUSYBOX_IMAGE  # another onebox process made it while this one waited
        version = _installed_version()
        report(f"Making {BUSYBOX_IMAGE} from {PACKAGE} {version}")
        applets = _applets()
        changes = [f"ENV PATH={PATH}", 'CMD ["sh"]', f"LABEL {BUSYBOX_LABEL}={version}"]
        import_tar(engine, [tarball(BINARY.read_bytes(), applets)], BUSYBOX_IMAGE, changes)
    log.info("Made image %s with %d applets", BUSYBOX_IMAGE, len(applets))
    return BUSYBOX_IMAGE


def tarball(binary: bytes, applets: list[str]) -> bytes:
    """The image's whole file system: the binary, a link per applet, root's account."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in DIRECTORIES.items():
            _add(tar, name, tarfile.DIRTYPE, mode)
        _add(tar, "bin/busybox", tarfile.REGTYPE, 0o755, binary)
        for applet in applets:
            if applet.strip("/") != "bin/busybox":
                _add(tar, applet.strip("/"), tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        for name, text in FILES.items():
            _add(tar, name, tarfile.REGTYPE, 0o644, text.encode())
    return buffer.getvalue()


def _add(
    tar: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"", link: str = ""
) -> None:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode, entry.linkname, entry.size = kind, mode, link, len(data)
    tar.addfile(entry, io.BytesIO(data) if data else None)


def _installed_version() -> str:
    """The version of the busybox-static package; a dynamic busybox would not run alone."""
    query = ["dpkg-query", "--show", "--showformat=${db:Status-Abbrev} ${Version}", PACKAGE]
    try:
        answer = subprocess.run(query, capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        answer = ""
    status, _, version = answer.partition(" ")
    if status.strip() != "ii" or not BINARY.is_file():
        raise OperationFailed(
            f"Cannot make image '{BUSYBOX_IMAGE}': {PACKAGE} is not installed",
            f"install it with `apt-get install {PACKAGE}` (or run `bash scripts/setup`)",
        )
    return version.strip()


def _applets() -> list[str]:
    """Each applet's path, like `usr/sbin/httpd`, as the binary itself lists them."""
    listing = subprocess.run(
        [str(BINARY), "--list-full"], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise OperationFailed(
            f"'{BINARY} --list-full' failed: {listing.stderr.strip()}",
            f"reinstall it with `apt-get install --reinstall {PACKAGE}`",
        )
    return [line.strip() for line in listing.stdout.splitlines() if line.strip()]
