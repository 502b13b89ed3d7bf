"""`onebox machine …`: create, list, show, start, stop, restart, rm, rename, exec, logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, out, table, user_errors
from onebox.engine import Engine, connect
from onebox.errors import InvalidInput
from onebox.labs import lab as labs
from onebox.machines import machine as machines

app = typer.Typer(
    help="Create and drive machines: containers that play computers.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Machine name (a DNS label).")]

DEFAULT_IMAGE = "onebox/base:bookworm"


def _print(machine: machines.Machine, json_out: bool, verb: str) -> None:
    if json_out:
        emit_json(machine.as_dict())
    else:
        out.print(
            f"Machine '{machine.name}' {verb}: {machine.ip}  {machine.fqdn}  " f"{machine.state}"
        )


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"Environment setting '{pair}' is not KEY=VALUE",
                "write it like --env GREETING=hello",
            )
        env[key] = value
    return env


@app.command()
def create(
    name: NameArg,
    command: Annotated[list[str] | None, typer.Argument(help="Command to run (after --).")] = None,
    image: Annotated[str, typer.Option(help="Image to run.")] = DEFAULT_IMAGE,
    ip: Annotated[str | None, typer.Option(help="Fixed address; default: the next free.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    web_port: Annotated[int, typer.Option(help="Port of the machine's web server.")] = 80,
    url: Annotated[
        list[str] | None, typer.Option(help="More names, e.g. shop.DOMAIN or " "*.shop.DOMAIN")
    ] = None,
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Create and start a machine with its own address and DNS name."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        request = machines.CreateRequest(
            name=name,
            image=image,
            ip=ip,
            command=command or [],
            environment=_parse_env(env or []),
            web_port=web_port,
            urls=url or [],
            test=os.environ.get("ONEBOX_TEST") == "1",
        )
        _print(machines.create(engine, current, request), json_out, "created")


@app.command("ls")
def ls(lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """List the lab's machines."""
    with user_errors():
        engine = connect()
        listed = machines.list_machines(engine, labs.load(engine, lab))
        if json_out:
            emit_json([m.as_dict() for m in listed])
            return
        table(
            ["NAME", "ADDRESS", "FQDN", "STATE", "IMAGE"],
            [[m.name, m.ip, m.fqdn, m.state, m.image] for m in listed],
            f"No machines yet: `onebox machine create web1 --lab {lab}`",
        )


@app.command()
def show(name: NameArg, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Show one machine."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        container = machines.find(engine, current, name)
        container.reload()
        machine = machines.describe(current, container)
        if json_out:
            emit_json({**machine.as_dict(), "labels": machine.labels})
            return
        for key, value in machine.as_dict().items():
            out.print(f"[bold]{key:>11}[/bold]  {value}")


def _act(verb: str, name: str, lab: str, json_out: bool) -> None:
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        actions: dict[str, Callable[[Engine, labs.Lab, str], machines.Machine]] = {
            "start": machines.start,
            "stop": machines.stop,
            "restart": machines.restart,
            "rm": machines.remove,
        }
        action = actions[verb]
        done = {"start": "started", "stop": "stopped", "restart": "restarted", "rm": "removed"}[
            verb
        ]
        _print(action(engine, current, name), json_out, done)


@app.command()
def start(name: NameArg, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Start a stopped machine."""
    _act("start", name, lab, json_out)


@app.command()
def stop(name: NameArg, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Stop a machine; it keeps its address."""
    _act("stop", name, lab, json_out)


@app.command()
def restart(name: NameArg, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Restart a machine; it keeps its address."""
    _act("restart", name, lab, json_out)


@app.command()
def rm(name: NameArg, lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Remove a machine and free its address."""
    _act("rm", name, lab, json_out)


@app.command()
def rename(
    name: NameArg, new_name: NameArg, lab: LabOption = "default", json_out: JsonOption = False
) -> None:
    """Rename a machine; its DNS name follows."""
    with user_errors():
        engine = connect()
        _print(machines.rename(engine, labs.load(engine, lab), name, new_name), json_out, "renamed")


@app.command("exec")
def exec_(
    name: NameArg,
    command: Annotated[list[str], typer.Argument(help="Command and its arguments.")],
    lab: LabOption = "default",
) -> None:
    """Run a command in a machine; stdin, stdout and stderr are the command's, and so
    is the exit code."""
    from onebox.cli.ssh import enter  # the same session as `onebox ssh NAME -- COMMAND`

    enter(name, command, lab)


@app.command()
def logs(
    name: NameArg,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    tail: Annotated[str, typer.Option(help="Lines from the end, or `all`.")] = "all",
    lab: LabOption = "default",
) -> None:
    """Print a machine's output."""
    with user_errors():
        engine = connect()
        if not tail.isdigit() and tail != "all":
            raise InvalidInput(
                f"--tail '{tail}' is not a number of lines",
                "give a whole number like --tail 50, or --tail all",
            )
        lines: int | str = int(tail) if tail.isdigit() else "all"
        for chunk in machines.logs(engine, labs.load(engine, lab), name, follow, lines):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
