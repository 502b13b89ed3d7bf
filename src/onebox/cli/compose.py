"""`onebox compose up/down`: an existing compose file's services as machines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, report, user_errors
from onebox.cli.stack import VolumesOption, remove
from onebox.cli.template import print_stack
from onebox.engine import connect
from onebox.labs import lab as labs
from onebox.templates import compose, stack

app = typer.Typer(
    help="Run a compose file's services as machines with their own names.", no_args_is_help=True
)

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Stack name; machines are " "named STACK-SERVICE.")
]


@app.command()
def up(
    name: NameOption,
    file: Annotated[Path, typer.Option("--file", "-f", help="The compose file.")] = Path(
        "compose.yaml"
    ),
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Create (or start) a machine for each service of the file."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        variables = {**os.environ, "STACK": name, "DOMAIN": current.domain}
        project = compose.load(file, name, variables)
        for service, machine in project.mapping():
            if service != machine.removeprefix(f"{name}-"):
                report(f"Service '{service}' becomes machine '{machine}'")
        url = next(
            (s for s in project.order if project.services[s].ports or project.services[s].expose),
            None,
        )
        info = stack.up(
            engine, current, project, report, url, test=os.environ.get("ONEBOX_TEST") == "1"
        )
        if json_out:
            emit_json({**info.as_dict(), "mapping": project.mapping(), "ignored": project.ignored})
            return
        print_stack(info, project.mapping())


@app.command()
def down(
    name: NameOption,
    lab: LabOption = "default",
    volumes: VolumesOption = False,
    json_out: JsonOption = False,
) -> None:
    """Remove the stack's machines; with --volumes, its named volumes too."""
    remove(name, lab, volumes, json_out)
