"""Compose-style variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?error}`, `$$`) over a parsed YAML tree, and `.env`/`env_file` reading."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from onebox.errors import InvalidInput, NotFound

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATTERN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<plain>{_NAME})|\{{(?P<braced>{_NAME})"
    rf"(?:(?P<op>:?[-?])(?P<arg>[^}}]*))?\}}|(?P<bad>))"
)


def substitute(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """One string with its variables replaced; an unknown variable becomes empty."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("plain"):
            return variables.get(match.group("plain"), "")
        name = match.group("braced")
        if name is None:
            raise InvalidInput(
                f"Bad variable reference in {where or 'the file'}: '{text}'",
                "write ${NAME}, ${NAME:-default}, or $$ for a plain $",
            )
        return _braced(name, match.group("op"), match.group("arg") or "", variables, where)

    return _PATTERN.sub(replace, text)


def _braced(name: str, op: str | None, arg: str, variables: Mapping[str, str], where: str) -> str:
    value = variables.get(name)
    empty = value is None or (value == "" and op is not None and op.startswith(":"))
    if op in ("-", ":-"):
        return arg if empty else str(value)
    if op in ("?", ":?") and empty:
        raise InvalidInput(
            f"Variable '{name}' is required by {where or 'the file'}: " f"{arg or 'it is not set'}",
            f"set {name} and run the command again",
        )
    return value or ""


def substitute_tree(tree: Any, variables: Mapping[str, str], where: str = "") -> Any:
    """Every string in a parsed YAML tree (values only, keys kept), substituted."""
    if isinstance(tree, str):
        return substitute(tree, variables, where)
    if isinstance(tree, dict):
        return {
            key: substitute_tree(value, variables, f"{where}.{key}".strip("."))
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [substitute_tree(item, variables, where) for item in tree]
    return tree


def parse_env_text(text: str) -> dict[str, str]:
    """KEY=VALUE lines as docker compose reads them: comments, `export`, quotes."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[key.strip()] = value
    return found


def read_env_file(path: Path, required: bool = True) -> dict[str, str]:
    if not path.is_file():
        if not required:
            return {}
        raise NotFound(
            f"Env file '{path}' does not exist",
            "create it, or fix the env_file path in the compose file",
        )
    return parse_env_text(path.read_text())
