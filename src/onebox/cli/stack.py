"""`onebox stack …`: list the lab's stacks and remove one."""

from __future__ import annotations

from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, out, report, table, user_errors
from onebox.engine import connect
from onebox.errors import NotFound
from onebox.labs import lab as labs
from onebox.templates import stack as stacks

app = typer.Typer(
    help="Stacks: machines made together from a template or a compose file.", no_args_is_help=True
)

VolumesOption = Annotated[
    bool,
    typer.Option(
        "--volumes", "-v", help="Remove its volumes and " "secrets too (its data is lost)."
    ),
]


@app.command("ls")
def ls(lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """List the lab's stacks."""
    with user_errors():
        engine = connect()
        found = stacks.list_stacks(engine, labs.load(engine, lab))
        if json_out:
            emit_json([s.as_dict() for s in found])
            return
        table(
            ["STACK", "MACHINES", "URL"],
            [
                [s.name, ", ".join(f"{m.name} ({m.state})" for m in s.machines), s.url or "-"]
                for s in found
            ],
            f"No stacks yet: `onebox template run wordpress --name blog --lab {lab}`",
        )


def remove(stack: str, lab: str, volumes: bool, json_out: bool) -> None:
    with user_errors():
        engine = connect()
        removed = stacks.down(engine, labs.load(engine, lab), stack, report, volumes)
        if not removed:
            raise NotFound(
                f"Stack '{stack}' has no machines in lab '{lab}'",
                f"list stacks with `onebox stack ls --lab {lab}`",
            )
        if json_out:
            emit_json({"stack": stack, "removed": removed})
        else:
            kept = "" if volumes else " (volumes and secrets kept; --volumes removes them)"
            out.print(f"Stack '{stack}' removed: {removed} objects{kept}.")


@app.command()
def rm(
    stack: str,
    lab: LabOption = "default",
    volumes: VolumesOption = False,
    json_out: JsonOption = False,
) -> None:
    """Remove a stack's machines; with --volumes, its data too."""
    remove(stack, lab, volumes, json_out)
