"""Wheels for images, made on the host because containers reach no package index: onebox's
dependencies downloaded for the image's Python, and onebox's own wheel built from its source
checkout. Both are cached by what they are made from, so an unchanged input costs nothing."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import onebox
from onebox.errors import OperationFailed
from onebox.state import cache_dir

log = logging.getLogger(__name__)

# The image's Python: Debian bookworm's python3 is CPython 3.11 on x86-64 glibc.
PLATFORM = [
    "--only-binary=:all:",
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_17_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
]  # fmt: skip
KEEP_BUILDS = 5
_EXTRA = re.compile(r"\bextra\s*==")
_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

Report = Callable[[str], None]


def runtime_requirements() -> list[str]:
    """onebox's declared dependencies, as installed here, without any extra's."""
    try:
        declared = importlib.metadata.requires("onebox") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise OperationFailed(
            "onebox is importable but not installed, so its dependencies are unknown",
            "install it from the checkout with `pip install -e .`",
        ) from exc
    return [line for line in declared if not _EXTRA.search(line.partition(";")[2])]


def dependency_wheels(report: Report) -> Path:
    """A directory of wheels for every runtime dependency, for the image's Python."""
    requirements = runtime_requirements()
    key = _digest("\n".join([*requirements, *PLATFORM]).encode())[:16]
    target = _wheels_dir() / f"deps-{key}"
    if (target / ".complete").is_file():
        return target

    report(f"Downloading wheels for {len(requirements)} dependencies")
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=_wheels_dir(), prefix="partial-") as scratch:
        out = Path(scratch, "out")
        _pip("download", "--dest", str(out), *PLATFORM, *requirements)
        (out / ".complete").write_text("\n".join(requirements) + "\n")
        _publish(out, target)
    _prune(keep=target)
    log.info("Downloaded dependency wheels into %s", target)
    return target


def project_wheel(report: Report) -> Path:
    """onebox's own wheel, built from the checkout this onebox runs from."""
    checkout = source_checkout()
    files = _source_files(checkout)
    key = _digest(b"".join(_entry(checkout, path) for path in files))[:16]
    target = _wheels_dir() / f"onebox-{key}"
    built = sorted(target.glob("onebox-*.whl"))
    if built:
        return built[0]

    report(f"Building the onebox wheel from {checkout}")
    with tempfile.TemporaryDirectory(dir=_wheels_dir(), prefix="partial-") as scratch:
        # A copy, so that no build/ directory in the checkout leaks deleted modules in.
        source, out = Path(scratch, "source"), Path(scratch, "out")
        for path in files:
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkout / path, source / path)
        _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(source))
        _publish(out, target)
    _prune(keep=target)
    return sorted(target.glob("onebox-*.whl"))[0]


def source_checkout() -> Path:
    """The directory holding onebox's pyproject.toml, above the imported package."""
    package = Path(onebox.__file__).resolve().parent
    for parent in package.parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and _project_name(pyproject) == "onebox":
            return parent
    raise OperationFailed(
        f"onebox runs from {package}, an installed wheel rather than a source checkout, "
        "so no onebox wheel can be built for the image",
        "clone the onebox repository, install it with `pip install -e .` from the clone, "
        "and run `onebox images build` with that install",
    )


def _source_files(checkout: Path) -> list[Path]:
    """What the wheel is made of, relative to the checkout, in a stable order."""
    tops = [Path(name) for name in ("pyproject.toml", "README.md", "LICENSE")]
    files = [path for path in tops if (checkout / path).is_file()]
    for path in sorted((checkout / "src").rglob("*")):
        relative = path.relative_to(checkout)
        skipped = any(p in _SKIPPED or p.endswith(".egg-info") for p in relative.parts)
        if path.is_file() and not skipped and path.suffix != ".pyc":
            files.append(relative)
    return files


def _entry(checkout: Path, path: Path) -> bytes:
    content = (checkout / path).read_bytes()
    return f"{path}\0{len(content)}\0".encode() + content


def _project_name(pyproject: Path) -> str:
    try:
        return str(tomllib.loads(pyproject.read_text()).get("project", {}).get("name", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return ""


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"]
    log.info("Running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        log.debug("pip: %s", line)
    if done.returncode != 0:
        tail = "\n  ".join((done.stdout + done.stderr).strip().splitlines()[-12:])
        raise OperationFailed(
            f"`pip {args[0]}` for the gateway image failed:\n  {tail}",
            "check that this host reaches the Python package index (`pip download "
            "--no-deps -d /tmp/probe docker`), then run `onebox images build` again",
        )


def _publish(built: Path, target: Path) -> None:
    """Moves a finished directory into place; when another process placed the same one
    first, theirs stays."""
    try:
        built.rename(target)
    except OSError:
        if not target.is_dir():
            raise


def _prune(keep: Path) -> None:
    """Keeps the newest few sets like `keep`: another checkout may be building from one."""
    kind = keep.name.split("-", 1)[0]
    builds = sorted(_wheels_dir().glob(f"{kind}-*"), key=lambda p: p.stat().st_mtime)
    for old in builds[:-KEEP_BUILDS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _wheels_dir() -> Path:
    path = cache_dir() / "wheels"
    path.mkdir(exist_ok=True)
    return path


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
