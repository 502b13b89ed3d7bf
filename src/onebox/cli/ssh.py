"""`onebox ssh NAME [-- COMMAND]` enters a machine from the host; `onebox ssh add-key`,
`keys` and `rm-key` manage who may use the gateway's SSH entry.

NAME and the verbs share the first position: a first word that is one of the verbs is
the verb, anything else is a machine name (`onebox ssh web` means `onebox ssh enter
web`). A machine that is named like a verb is entered with `onebox ssh enter NAME`."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from onebox.cli.output import JsonOption, LabOption, emit_json, out, table, user_errors
from onebox.engine import Engine, attach, connect
from onebox.errors import Conflict, InvalidInput
from onebox.labs import lab as labs
from onebox.machines import machine as machines
from onebox.ssh import access, keys
from onebox.ssh.session import LOGIN_SHELL

ENTER = "enter"


class MachineOrVerb(TyperGroup):
    """Routes `onebox ssh NAME ...` to the `enter` command and verbs to themselves."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [ENTER, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=MachineOrVerb,
    no_args_is_help=True,
    help="Enter machines (`onebox ssh NAME [-- COMMAND]`) and manage the keys "
    "of the gateway's SSH entry.",
)


@app.command(ENTER)
def enter(
    name: Annotated[str, typer.Argument(help="Machine to enter.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(help="Command and its arguments, after `--`; default: a login shell."),
    ] = None,
    lab: LabOption = "default",
) -> None:
    """Open a shell in a machine, or run one command there and return its exit code."""
    with user_errors():
        engine = connect()
        container = machines.find(engine, labs.load(engine, lab), name)
        if container.status != "running":
            raise Conflict(
                f"Machine '{name}' is {container.status}",
                f"start it with `onebox machine start {name} --lab {lab}`",
            )
        argv = list(command) if command else list(LOGIN_SHELL)
        docker_cli = shutil.which("docker")
        if docker_cli and sys.stdin.isatty() and sys.stdout.isatty():
            # Raw mode, window size and signals of an interactive TTY are the docker CLI's job.
            term = os.environ.get("TERM", "xterm")
            os.execv(
                docker_cli, [docker_cli, "exec", "-it", "-e", f"TERM={term}", container.id, *argv]
            )
        code = asyncio.run(_pipe(engine, container.id, argv))
    raise typer.Exit(code)


async def _pipe(engine: Engine, container_id: str, argv: list[str]) -> int:
    """Runs argv without a TTY: this process's stdin, stdout and stderr are the command's."""
    running = await attach.start(engine, container_id, argv, tty=False)
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def read_stdin() -> None:  # a thread: stdin may be a file, a pipe or a terminal
        while data := os.read(0, 65536):
            loop.call_soon_threadsafe(chunks.put_nowait, data)
        loop.call_soon_threadsafe(chunks.put_nowait, b"")

    async def feed() -> None:
        while data := await chunks.get():
            await running.write(data)
        running.close_stdin()

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    feeding = asyncio.create_task(feed())
    while (chunk := await running.read()) is not None:
        target = sys.stderr.buffer if chunk[0] == attach.STDERR else sys.stdout.buffer
        target.write(chunk[1])
        target.flush()
    feeding.cancel()
    await asyncio.gather(feeding, return_exceptions=True)
    code = await running.exit_code()
    running.close()
    return code


@app.command("add-key")
def add_key(
    file: Annotated[Path, typer.Argument(help="Public key file, e.g. ~/.ssh/id_ed25519.pub.")],
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Allow a public key into the lab's SSH entry (password login stays off)."""
    with user_errors():
        try:
            text = file.read_text(errors="replace")
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read '{file}': {exc.strerror}",
                "give the path of a .pub file, e.g. ~/.ssh/id_ed25519.pub",
            ) from exc
        wanted = keys.read_public_keys(text, str(file))
        engine = connect()
        current = labs.load(engine, lab)
        added = access.add_keys(engine, current, wanted)
        if json_out:
            emit_json(
                {
                    "lab": lab,
                    "added": [k.as_dict() for k in added],
                    "already": [k.as_dict() for k in wanted if k not in added],
                }
            )
            return
        for key in wanted:
            verb = "Registered" if key in added else "Already registered:"
            out.print(f"{verb} {key.fingerprint} {key.comment}".rstrip())
        port = current.ports.get("ssh")
        if port:
            out.print(f"Log in with `ssh -p {port} NAME@127.0.0.1` (NAME: a machine of the lab)")


@app.command("keys")
def list_keys(lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """List the keys allowed into the lab's SSH entry."""
    with user_errors():
        engine = connect()
        found = access.list_keys(engine, labs.load(engine, lab))
        if json_out:
            emit_json([key.as_dict() for key in found])
            return
        table(
            ["FINGERPRINT", "TYPE", "COMMENT"],
            [[k.fingerprint, k.algorithm, k.comment] for k in found],
            f"No keys yet: `onebox ssh add-key ~/.ssh/id_ed25519.pub --lab {lab}`",
        )


@app.command("rm-key")
def rm_key(
    fingerprint: Annotated[str, typer.Argument(help="SHA256:... as `onebox ssh keys` shows.")],
    lab: LabOption = "default",
    json_out: JsonOption = False,
) -> None:
    """Stop allowing a key; sessions already open stay open."""
    with user_errors():
        engine = connect()
        removed = access.remove_key(engine, labs.load(engine, lab), fingerprint)
        if json_out:
            emit_json(removed.as_dict())
            return
        out.print(f"Removed {removed.fingerprint} {removed.comment}".rstrip())
