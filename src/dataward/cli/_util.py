"""Helpers shared by command modules: opening the workspace, the acting principal, output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from dataward.errors import InputError
from dataward.identity import Actor
from dataward.workspace import Workspace

if TYPE_CHECKING:
    from rich.table import Table

    from dataward.synthetic import VersionReader

# soft_wrap: rich never breaks a line itself, so a hash or an id stays whole in a pipe or a log file
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def piped() -> bool:
    """stdout is not a terminal: print whole values, one record a line, no table art."""
    return not console.is_terminal


def shown(value: str, width: int = 16) -> str:
    """A digest or id as a person reads it on a terminal (cut to ``width``), whole when piped."""
    return value if piped() or len(value) <= width else value[:width]


def print_table(table: Table) -> None:
    """A rich table on a terminal; piped, its header and rows as tab-separated lines of whole values."""
    if not piped():
        console.print(table)
        return
    from rich.text import Text

    columns = table.columns
    click.echo("\t".join(str(c.header) for c in columns))
    cells = [list(c.cells) for c in columns]
    for row in zip(*cells, strict=True):
        click.echo("\t".join(c.plain if isinstance(c, Text) else Text.from_markup(str(c)).plain for c in row))


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
    """The principal named by --as / DATAWARD_PRINCIPAL, acting with its key from the caller's keyring.

    An encrypted key is opened with DATAWARD_PASSPHRASE, or a passphrase asked for on a terminal.
    """
    from dataward.store.keyring import PassphraseNeeded

    principal = ctx.find_root().obj.get("principal")
    try:
        return ws.actor(principal)
    except PassphraseNeeded:
        if not sys.stdin.isatty():
            raise
        p = click.prompt(f"Passphrase for {principal}'s key", hide_input=True, err=True)
        return ws.actor(principal, passphrase=str(p).encode())


def version_reader(ws: Workspace, actor: Actor) -> VersionReader:
    """Reads released versions verified as ``actor`` (each read logged as ``data.read``), for generators
    conditioned on them (:mod:`dataward.synthetic` sits below the release layer, so it is handed this)."""
    from dataward.release.reader import open_dataset
    from dataward.release.versions import get_version
    from dataward.synthetic import ConditioningInput

    def read(spec: str) -> ConditioningInput:
        v = get_version(ws, spec)
        return ConditioningInput(v.spec, v.merkle_root, open_dataset(v.spec, workspace=ws, principal=actor))

    return read


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
    if not err_console.is_terminal:  # nothing to draw: rich's progress machinery is not even imported
        yield lambda _what, _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def advance(_what: str, n: int) -> None:
            progress.advance(task, n)

        yield advance


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--executor``, ``--workers`` and ``--scheduler``: where ``check`` and ``detect`` run their suite."""
    options = [
        click.option(
            "--executor",
            type=click.Choice(["local", "processes", "dask"]),
            default=None,
            help="Split the suite across workers: local (in process), processes (this machine), dask "
            "(default: the workspace's `executor` setting, else one process).",
        ),
        click.option(
            "--workers",
            "executor_workers",
            type=click.IntRange(1, 1024),
            default=None,
            help="Workers of the executor (default: the usable cores; dask: 2).",
        ),
        click.option(
            "--scheduler", default=None, metavar="tcp://HOST:PORT", help="A Dask scheduler (--executor dask)."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def executor_setting(flag: str | None, workspace: str | os.PathLike[str] | None) -> str | None:
    """``--executor`` if given, else the ``executor`` setting of the workspace's configuration file (when
    there is a workspace there), else None: the single-process path."""
    if flag:
        return flag
    if workspace is None:
        return None
    import tomllib
    from pathlib import Path

    from dataward.scale.runs import EXECUTORS
    from dataward.workspace import CONFIG_NAME

    cfg = Path(workspace) / CONFIG_NAME
    try:
        value = tomllib.loads(cfg.read_text(encoding="utf-8")).get("executor")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # no workspace here (check and detect work on files without one)
    if value is not None and value not in EXECUTORS:
        raise InputError(f"{cfg}: executor = {value!r} is not one of {', '.join(EXECUTORS)}")
    return value if isinstance(value, str) else None
