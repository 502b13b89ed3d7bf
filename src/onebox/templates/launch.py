"""`template run`: a catalog template made into a stack, with its secrets generated once
per stack and its settings checked before anything is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from onebox.engine import Engine
from onebox.errors import Conflict, OneboxError
from onebox.labs.lab import Lab
from onebox.templates import catalog, compose, interpolation, secret, stack

Report = Callable[[str], None]


@dataclass
class Launch:
    template: catalog.Template
    info: stack.StackInfo
    mapping: list[tuple[str, str]]
    secrets: dict[str, str]
    new_secrets: list[str] = field(default_factory=list)
    notes: str = ""


def run(
    engine: Engine,
    lab: Lab,
    name: str,
    stack_name: str,
    overrides: dict[str, str],
    report: Report,
    test: bool = False,
) -> Launch:
    template = catalog.load(name)
    stack_name = compose.check_stack_name(stack_name)
    template.variables(stack_name, lab.domain, overrides, {})  # refuses unknown settings
    if stack.containers(engine, lab, stack_name):
        raise Conflict(
            f"Stack '{stack_name}' already exists in lab '{lab.name}'",
            f"choose another --name, or remove it with `onebox stack rm "
            f"{stack_name} --lab {lab.name}`",
        )
    placeholders = {key: "x" for key in template.secrets}
    template.project(
        stack_name, template.variables(stack_name, lab.domain, overrides, placeholders)
    )
    secrets, new = secret.ensure(engine, lab.name, stack_name, template.secrets, test)
    variables = template.variables(stack_name, lab.domain, overrides, secrets)
    project = template.project(stack_name, variables)
    try:
        info = stack.up(engine, lab, project, report, template.url_service, test)
    except OneboxError:
        if new and not stack.containers(engine, lab, stack_name):
            secret.remove(engine, lab.name, stack_name)  # nothing was made to use them
        raise
    public = {k: v for k, v in variables.items() if k not in secrets}
    notes = interpolation.substitute(template.notes, public)
    return Launch(template, info, project.mapping(), secrets, new, notes)
