"""Names: DNS labels for machines and labs, and domains, checked before anything is made."""

from __future__ import annotations

import re

from onebox.errors import InvalidInput

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Lab names end up inside container names ("LAB_NAME") and default domains.
_LAB = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")

RESERVED_MACHINE_NAMES = {"gateway", "localhost", "ns", "wpad"}
RESERVED_LAB_NAMES = {"bridge", "host", "none"}


def check_machine_name(name: str) -> str:
    """Returns the name, lower-cased, if it is a DNS label a machine may have."""
    if not name:
        raise InvalidInput("A machine name cannot be empty", "give a name like web1")
    lowered = name.lower()
    if len(lowered) > 63:
        raise InvalidInput(
            f"Machine name '{name}' is {len(name)} characters; a DNS label " "holds at most 63",
            "use a shorter name",
        )
    if not _LABEL.match(lowered):
        raise InvalidInput(
            f"Machine name '{name}' is not a valid DNS label",
            "use letters, digits and inner hyphens only (no underscores, dots, or leading or "
            "trailing hyphen), like web-1",
        )
    if lowered.isdigit():
        raise InvalidInput(
            f"Machine name '{name}' is all digits, which resolvers read as an " "address",
            "add a letter, like host-123",
        )
    if lowered in RESERVED_MACHINE_NAMES:
        raise InvalidInput(f"Machine name '{name}' is reserved in every lab", "choose another name")
    return lowered


def check_lab_name(name: str) -> str:
    if not _LAB.match(name) or name in RESERVED_LAB_NAMES:
        raise InvalidInput(
            f"Lab name '{name}' is not allowed",
            "use 1-32 lower-case letters, digits and inner hyphens, like dev or team-2",
        )
    return name


# Room for a 63-character machine name, its dot and the domain within DNS's 253.
MAX_DOMAIN = 253 - 64


def check_domain(domain: str) -> str:
    lowered = domain.lower().rstrip(".")
    labels = lowered.split(".")
    if len(lowered) > MAX_DOMAIN:
        raise InvalidInput(
            f"Domain '{domain}' is {len(lowered)} characters",
            f"use at most {MAX_DOMAIN}, so that every machine's full name fits " "in DNS's 253",
        )
    if labels[-1] == "arpa" or labels[-1].isdigit():
        raise InvalidInput(
            f"Domain '{domain}' is a reverse-lookup or numeric name",
            "use a name under .internal, like dev.internal",
        )
    if len(labels) < 2 or not all(_LABEL.match(p) for p in labels):
        raise InvalidInput(
            f"Domain '{domain}' is not a valid lab domain",
            "give at least two DNS labels, like dev.internal (names under .internal are "
            "reserved for private use)",
        )
    return lowered


def default_domain(lab: str) -> str:
    return "onebox.internal" if lab == "default" else f"{lab}.internal"
