"""`onebox dashboard`: the address of the lab's dashboard, and its admin password: made
by the first `up` and shown once, or replaced by `onebox dashboard password --reset`."""

from __future__ import annotations

from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, err, out, user_errors
from onebox.engine import Engine, connect
from onebox.errors import InvalidInput
from onebox.labs import admin
from onebox.labs import lab as labs

app = typer.Typer(help="The lab's dashboard: its address and its admin password.")


def _url(lab: labs.Lab) -> str:
    return str(lab.as_dict()["gateway"]["dashboard_url"])


@app.callback(invoke_without_command=True)
def dashboard(ctx: typer.Context, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Print the dashboard's address."""
    if ctx.invoked_subcommand:
        return
    with user_errors():
        current = labs.load(connect(), lab)
        if json_out:
            emit_json({"lab": current.name, "url": _url(current), "user": admin.USERNAME})
            return
        out.print(f"{_url(current)}  (user {admin.USERNAME})")


@app.command()
def password(
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Make a new password and print " "it; open sessions end."),
    ] = False,
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Replace the dashboard's admin password with a new one, printed once."""
    with user_errors():
        if not reset:
            raise InvalidInput(
                "The dashboard password is kept only as a hash and cannot be " "shown again",
                f"make a new one: `onebox dashboard password " f"--reset --lab {lab}`",
            )
        engine = connect()
        current = labs.load(engine, lab)
        made = admin.reset(engine, lab)
        if json_out:
            emit_json(
                {"lab": lab, "url": _url(current), "user": made.username, "password": made.password}
            )
            return
        out.print(
            f"New dashboard password for [bold]{made.username}[/bold]: "
            f"[bold]{made.password}[/bold]\n  {_url(current)}"
        )


def announce_admin(engine: Engine, lab: labs.Lab) -> None:
    """Run by `up`: makes the admin account on a lab's first `up` and shows its password
    once, on stderr, so that `--json` output stays clean."""
    made = admin.ensure(engine, lab.name)
    if made is None:
        return
    secret = (
        f"from ${admin.PASSWORD_ENV}"
        if made.from_environment
        else f"[bold]{made.password}[/bold] (shown once)"
    )
    err.print(
        f"Dashboard {_url(lab)}  user [bold]{made.username}[/bold]  password {secret}\n"
        f"  lost it? `onebox dashboard password --reset --lab {lab.name}`"
    )
