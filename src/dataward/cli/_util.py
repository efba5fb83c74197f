"""Helpers shared by command modules: opening the workspace, the acting principal, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from dataward.identity import Actor
from dataward.workspace import Workspace

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
#: with ``json_option``: the same JSON written to a file (every command means the same by both)
json_out_option = click.option(
    "--json-out", "json_out", default=None, metavar="FILE", type=click.Path(dir_okay=False), help="Write JSON to FILE."
)


def open_workspace(ctx: click.Context) -> Workspace:
    obj = ctx.find_root().obj
    ws = obj.get("_ws")
    if ws is None:
        ws = Workspace.open(obj["workspace"])
        from dataward.log.witness import check_witness

        check_witness(ws)
        ctx.find_root().call_on_close(lambda: check_witness(ws))  # witness this command's own entries too
        obj["_ws"] = ws
    assert isinstance(ws, Workspace)
    return ws


def acting(ctx: click.Context, ws: Workspace) -> Actor:
    return ws.actor(ctx.find_root().obj.get("principal"))


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def emit(as_json: bool, value: Any, human: Callable[[], None]) -> None:
    if as_json:
        emit_json(value)
    else:
        human()


@contextmanager
def byte_progress(total: int, description: str) -> Iterator[Callable[[str, int], None]]:
    """A transfer progress bar on stderr (silent when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def advance(_what: str, n: int) -> None:
            progress.advance(task, n)

        yield advance
