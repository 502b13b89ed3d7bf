"""`onebox ca …`: the lab's certificate authority, for a user to trust once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, err, user_errors
from onebox.engine import connect
from onebox.errors import InvalidInput
from onebox.labs import lab as labs
from onebox.proxy import ca

app = typer.Typer(
    help="The lab's certificate authority behind its HTTPS URLs.", no_args_is_help=True
)


@app.command()
def export(
    lab: LabOption = "default",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the CA certificate (PEM) here; default: stdout."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Write the lab's CA certificate, e.g. for `curl --cacert` or a browser's trust store."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        pem = ca.export(engine, current.name)
        if out_file is None:
            if json_out:
                emit_json({"lab": current.name, "pem": pem.decode()})
            else:
                typer.echo(pem.decode(), nl=False)
            return
        try:
            out_file.write_bytes(pem)
        except OSError as exc:
            raise InvalidInput(
                f"Could not write '{out_file}': {exc.strerror}",
                "give --out a path in a folder you can write to",
            ) from exc
        if json_out:
            emit_json({"lab": current.name, "path": str(out_file)})
        else:
            err.print(
                f"Wrote the CA of lab '{current.name}' to {out_file}; trust it with e.g. "
                f"`curl --cacert {out_file} https://NAME.{current.domain}:"
                f"{current.ports.get('https', 443)}/`"
            )
