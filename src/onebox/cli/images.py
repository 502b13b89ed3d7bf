"""`onebox images …`: make onebox's images without a registry, and list them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from onebox.cli.output import JsonOption, emit_json, report, table, user_errors
from onebox.engine import connect
from onebox.images import base, busybox, gateway

app = typer.Typer(
    help="Make onebox's images with no registry (Debian base, busybox, gateway) and list them.",
    no_args_is_help=True,
)

ForceOption = Annotated[bool, typer.Option("--force", help="Make them again even when up to date.")]

PREFIX = "onebox/"


@app.command()
def bootstrap(force: ForceOption = False) -> None:
    """Make the Debian base image: pulled if a registry answers, else debootstrapped."""
    with user_errors():
        tag = base.ensure(connect(), report, force=force)
        report(f"Ready: {tag}")


@app.command()
def build(force: ForceOption = False) -> None:
    """Make the base, busybox and gateway images; each is skipped when up to date."""
    with user_errors():
        engine = connect()
        tags = [
            base.ensure(engine, report, force=force),
            busybox.ensure(engine, report, force=force),
            gateway.ensure(engine, report, force=force),
        ]
        report(f"Ready: {', '.join(tags)}")


@app.command("ls")
def list_images(json_out: JsonOption = False) -> None:
    """List onebox's images: name, id, size and when each was made."""
    with user_errors():
        rows = _rows(connect().client.images.list())
    if json_out:
        emit_json(rows)
        return
    table(
        ["NAME", "ID", "SIZE", "CREATED"],
        [[r["name"], r["id"][7:19], _size(r["size"]), _when(r["created"])] for r in rows],
        "No onebox images yet: `onebox images build`",
    )


def _rows(images: list[Any]) -> list[dict[str, Any]]:
    rows = [
        {"name": tag, "id": image.id, "size": image.attrs.get("Size", 0),
         "created": image.attrs.get("Created", "")}
        for image in images
        for tag in image.tags
        if tag.startswith(PREFIX)
    ]  # fmt: skip
    return sorted(rows, key=lambda row: str(row["name"]))


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created
