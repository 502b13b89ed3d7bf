"""`onebox template …`: list and show the catalog, run a template as a stack, and show a
stack's secrets again."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, err, out, report, table, user_errors
from onebox.engine import connect
from onebox.errors import InvalidInput
from onebox.labs import lab as labs
from onebox.templates import catalog, launch, secret
from onebox.templates.stack import StackInfo

app = typer.Typer(
    help="Ready stacks (WordPress, LAMP, Django, ...) in one command.", no_args_is_help=True
)


@app.command("ls")
def ls(json_out: JsonOption = False) -> None:
    """List the templates."""
    with user_errors():
        found = catalog.all_templates()
        if json_out:
            emit_json([t.as_dict() for t in found])
            return
        table(
            ["TEMPLATE", "SERVICES", "DESCRIPTION"],
            [[t.name, ", ".join(t.services), t.description.split(". ")[0]] for t in found],
            "No templates",
        )


@app.command()
def show(name: str, json_out: JsonOption = False) -> None:
    """Show a template: its services, settings and secrets."""
    with user_errors():
        template = catalog.load(name)
        if json_out:
            emit_json(template.as_dict())
            return
        out.print(f"[bold]{template.name}[/bold]: {template.description}")
        out.print(f"  services  {', '.join(template.services)}")
        for key, default in template.settings.items():
            out.print(f"  setting   {key}={default}   (change with --set {key}=VALUE)")
        for key in template.secrets:
            out.print(f"  secret    {key}   (generated per stack)")
        if template.notes:
            out.print(f"  notes     {template.notes}")


def parse_settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"Setting '{pair}' is not KEY=VALUE", "write it like --set DB_NAME=shop"
            )
        settings[key] = value
    return settings


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Template name (see `onebox template ls`).")],
    stack: Annotated[
        str, typer.Option("--name", "-n", help="Stack name; machines are " "named STACK-SERVICE.")
    ],
    settings: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE")] = None,
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Run a template as a stack of machines; its secrets are shown this once."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        result = launch.run(
            engine,
            current,
            name,
            stack,
            parse_settings(settings or []),
            report,
            test=os.environ.get("ONEBOX_TEST") == "1",
        )
        if json_out:
            emit_json(
                {
                    **result.info.as_dict(),
                    "template": name,
                    "mapping": result.mapping,
                    "secrets": {k: result.secrets[k] for k in result.new_secrets},
                    "notes": result.notes,
                }
            )
            return
        print_stack(result.info, result.mapping)
        if result.new_secrets:
            out.print(
                "[bold]secrets[/bold] (shown once; again with "
                f"`onebox template secrets {stack} --lab {lab}`):"
            )
            for key in result.new_secrets:
                out.print(f"  {key}={result.secrets[key]}")
        elif result.secrets:
            out.print(f"Secrets kept from before: `onebox template secrets {stack} --lab {lab}`")
        if result.notes:
            out.print(result.notes)


def print_stack(info: StackInfo, mapping: list[tuple[str, str]]) -> None:
    by_name = {m.name: m for m in info.machines}
    rows = [
        [
            service,
            machine,
            by_name[machine].ip,
            by_name[machine].state,
            f"http://{by_name[machine].fqdn}/",
        ]
        for service, machine in mapping
        if machine in by_name
    ]
    table(["SERVICE", "MACHINE", "ADDRESS", "STATE", "URL"], rows, "No machines")
    if info.url:
        out.print(f"[bold]Stack '{info.name}' is up:[/bold] {info.url}")


@app.command()
def secrets(stack: str, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Show a stack's generated secrets."""
    with user_errors():
        engine = connect()
        found = secret.load(engine, labs.load(engine, lab).name, stack)
        if json_out:
            emit_json(found)
            return
        if not found:
            err.print(f"Stack '{stack}' has no stored secrets in lab '{lab}'.")
            raise typer.Exit(3)
        for key, value in sorted(found.items()):
            out.print(f"{key}={value}")
