"""The template catalog: compose files under `catalog/NAME/compose.yaml`, each with an
`x-onebox` block (description, settings with defaults, generated secrets, the service
that has the URL, notes). Templates are data; this module only reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onebox.errors import InvalidInput, NotFound
from onebox.templates import compose, interpolation

CATALOG = Path(__file__).resolve().parent / "catalog"


@dataclass
class Template:
    name: str
    path: Path
    description: str
    settings: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    url_service: str | None = None
    notes: str = ""
    services: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "settings": self.settings,
            "secrets": self.secrets,
            "url_service": self.url_service,
            "services": self.services,
            "notes": self.notes,
        }

    def variables(
        self, stack: str, domain: str, overrides: dict[str, str], secrets: dict[str, str]
    ) -> dict[str, str]:
        unknown = sorted(set(overrides) - set(self.settings))
        if unknown:
            known = ", ".join(sorted(self.settings)) or "none"
            raise InvalidInput(
                f"Template '{self.name}' has no setting {', '.join(unknown)}",
                f"its settings are: {known} (see `onebox template show " f"{self.name}`)",
            )
        return {**self.settings, **overrides, **secrets, "STACK": stack, "DOMAIN": domain}

    def project(self, stack: str, variables: dict[str, str]) -> compose.Project:
        data = interpolation.substitute_tree(compose.read_file(self.path), variables)
        return compose.plan(data, stack, self.path.parent, variables)


def names() -> list[str]:
    return sorted(p.parent.name for p in CATALOG.glob("*/compose.yaml"))


def load(name: str) -> Template:
    path = CATALOG / name / "compose.yaml"
    if not path.is_file():
        raise NotFound(
            f"Template '{name}' does not exist",
            f"list templates with `onebox template ls`; there are: " f"{', '.join(names())}",
        )
    data = compose.read_file(path)
    meta = data.get("x-onebox") or {}
    settings = {
        str(k): "" if v is None else str(v) for k, v in (meta.get("settings") or {}).items()
    }
    return Template(
        name=name,
        path=path,
        description=str(meta.get("description", "")).strip(),
        settings=settings,
        secrets=[str(s) for s in meta.get("secrets") or []],
        url_service=meta.get("url"),
        notes=str(meta.get("notes", "")).strip(),
        services=[str(s) for s in data["services"]],
    )


def all_templates() -> list[Template]:
    return [load(name) for name in names()]
