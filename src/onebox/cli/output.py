"""How the CLI speaks: tables and progress for people on stderr/stdout, JSON for
scripts, and one place that turns onebox errors into messages and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import docker.errors
import typer
from rich.console import Console
from rich.table import Table

from onebox.errors import NotFound, OneboxError, OperationFailed, exit_code

out = Console(highlight=False, soft_wrap=True)  # commands stay whole for copy and paste
err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


# The options every command shares, defined once.
LabOption = Annotated[str, typer.Option("--lab", "-l", help="Lab to act on.", envvar="ONEBOX_LAB")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def report(line: str) -> None:
    """Progress for a person, on stderr so that --json output stays clean."""
    err.print(f"[dim]•[/dim] {line}")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    if not rows:
        out.print(empty)
        return
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    out.print(grid)


@contextmanager
def user_errors() -> Iterator[None]:
    """Prints a OneboxError as `error: …` with its fix and exits with its code."""
    try:
        try:
            yield
        except docker.errors.NotFound as exc:  # removed by someone else meanwhile
            raise NotFound(
                f"It was removed while onebox worked on it: {exc.explanation}",
                "run the command again",
            ) from exc
        except docker.errors.APIError as exc:
            raise OperationFailed(
                f"The Docker engine refused: {exc.explanation}",
                "read the reason above, then run the command again",
            ) from exc
    except OneboxError as exc:
        err.print(f"[bold red]error:[/bold red] {exc.message}", markup=True, soft_wrap=True)
        if exc.fix:
            err.print(f"  [bold]fix:[/bold] {exc.fix}", soft_wrap=True)
        raise typer.Exit(exit_code(exc)) from None
