"""The host's Debian mirrors, read from its apt sources, and the apt sources an image gets.
Pure parsing and rendering: nothing here fetches anything."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from onebox.errors import NotFound

# apt-secure: the image's keyring from the debian-archive-keyring package that debootstrap
# installs; the host's Signed-By path may not exist inside the image.
IMAGE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# The suites an image follows, by their part after the codename: the release itself,
# its point-release updates and its security updates.
IMAGE_SUITE_KINDS = ("", "updates", "security")


@dataclass(frozen=True)
class AptSource:
    """One binary (`deb`) archive: a URI and the suites and components taken from it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def suite_kind(suite: str) -> str:
    """`bookworm` -> "", `bookworm-updates` -> "updates", `bookworm/updates` -> "updates"."""
    for separator in ("-", "/"):
        if separator in suite:
            return suite.split(separator, 1)[1]
    return ""


def parse_deb822(text: str) -> list[AptSource]:
    """Sources from a deb822 `.sources` file; `deb-src` only and disabled stanzas are left out."""
    sources: list[AptSource] = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        sources += [
            AptSource(uri.rstrip("/"), suites, components) for uri in stanza.get("uris", "").split()
        ]
    return sources


def parse_one_line(text: str) -> list[AptSource]:
    """Sources from a one-line `sources.list`: `deb [options] URI SUITE COMPONENT...`."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("deb") and "[" in line:
            kind, _, rest = line.partition("[")
            line = kind + rest.partition("]")[2]
        words = line.split()
        if len(words) < 3 or words[0] != "deb":
            continue
        sources.append(AptSource(words[1].rstrip("/"), (words[2],), tuple(words[3:])))
    return sources


def host_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every enabled `deb` source of the host, in apt's own reading order."""
    apt = root / "etc/apt"
    sources: list[AptSource] = []
    if (apt / "sources.list").is_file():
        sources += parse_one_line((apt / "sources.list").read_text())
    parts = apt / "sources.list.d"
    for path in sorted(parts.glob("*")) if parts.is_dir() else []:
        if path.suffix == ".sources":
            sources += parse_deb822(path.read_text())
        elif path.suffix == ".list":
            sources += parse_one_line(path.read_text())
    return sources


def archive_uri(sources: Iterable[AptSource], kind: str = "") -> str:
    """The URI of the first source that carries a suite of this kind (the release by
    default): the mirror to bootstrap from."""
    source = _first_of_kind(list(sources), kind)
    if source is not None:
        return source.uri
    what = f"'{kind}' suite" if kind else "Debian release"
    raise NotFound(
        f"No {what} in the host's apt sources (/etc/apt/sources.list and "
        "/etc/apt/sources.list.d/)",
        "add the Debian mirror you use to /etc/apt/sources.list, as a line like "
        "`deb http://MIRROR/debian bookworm main`, then run `apt-get update`",
    )


def image_sources(sources: Iterable[AptSource], codename: str) -> str:
    """A deb822 `debian.sources` for an image of `codename`: its release, updates and
    security suites, each from the host's mirror for that kind of suite. Updates always
    live in the release's archive, so a host without them still gives them; security
    lives apart, and is left out when the host names no mirror for it."""
    listed = list(sources)
    release = _first_of_kind(listed, "")
    if release is None:
        archive_uri(listed)  # raises the error that says what to add
    suites_by_uri: dict[str, list[str]] = {}
    components_by_uri: dict[str, tuple[str, ...]] = {}
    for kind in IMAGE_SUITE_KINDS:
        source = _first_of_kind(listed, kind) or (release if kind == "updates" else None)
        if source is None:
            continue
        suites_by_uri.setdefault(source.uri, []).append(f"{codename}-{kind}" if kind else codename)
        components_by_uri.setdefault(source.uri, source.components or ("main",))
    stanzas = [
        f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\n"
        f"Components: {' '.join(components_by_uri[uri])}\nSigned-By: {IMAGE_KEYRING}\n"
        for uri, suites in suites_by_uri.items()
    ]
    return "\n".join(stanzas)


def _first_of_kind(sources: list[AptSource], kind: str) -> AptSource | None:
    for source in sources:
        if any(suite_kind(suite) == kind for suite in source.suites):
            return source
    return None


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs as lower-cased field -> value; comment lines are dropped before
    paragraphs are split, so a comment never ends one."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, ""
        elif line[0] in " \t" and field:
            current[field] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            field = name.strip().lower()
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas
