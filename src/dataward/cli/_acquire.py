"""Commands: acquire, verify, batch."""

from __future__ import annotations

import contextlib
import os

import click
from rich.table import Table

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import get_batch, list_batches
from dataward.cli._app import cli
from dataward.cli._util import acting, byte_progress, console, emit, emit_json, json_option, open_workspace
from dataward.records.leaves import FORMATS


def _total_bytes(paths: tuple[str, ...]) -> int:
    total = 0
    for p in paths:
        if os.path.isdir(p):
            for dp, _dn, fns in os.walk(p):
                for fn in fns:
                    with contextlib.suppress(OSError):
                        total += os.path.getsize(os.path.join(dp, fn))
        elif os.path.isfile(p):
            total += os.path.getsize(p)
    return total


@cli.command("acquire")
@click.argument("source_name", metavar="SOURCE")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--expect", type=click.Path(dir_okay=False), help="Supplier's SHA256SUMS file (sha256sum format).")
@click.option("--expect-signed", type=click.Path(dir_okay=False), help="Supplier-signed DSSE manifest.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Record format (default: by extension)."
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Hash records on this Dask cluster.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Hash records on a local Dask cluster of N workers.")
@json_option
@click.pass_context
def acquire_cmd(
    ctx: click.Context,
    source_name: str,
    paths: tuple[str, ...],
    expect: str | None,
    expect_signed: str | None,
    fmt: str | None,
    scheduler: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Acquire PATHS from SOURCE into a new quarantined batch."""
    from dataward.scale.dask import make_executor

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    with contextlib.ExitStack() as stack, byte_progress(_total_bytes(paths), "acquiring") as progress:
        executor = make_executor(scheduler, workers)
        if executor is not None:
            stack.enter_context(executor)
        batch = acquire(
            ws,
            actor,
            source_name,
            paths,
            expect=expect,
            expect_signed=expect_signed,
            format=fmt,
            progress=progress,
            executor=executor,
        )

    def human() -> None:
        console.print(
            f"Batch [bold]{batch.id}[/] from {batch.source}: {batch.file_count} file(s), "
            f"{batch.record_count:,} record(s), "
            f"{batch.byte_count:,} bytes, state [yellow]{batch.state}[/]"
        )
        console.print(f"  Merkle root {batch.merkle_root}")
        console.print(f"  signed manifest {batch.manifest_digest}")

    emit(as_json, batch.to_json(), human)


@cli.command("verify")
@click.argument("batch_id", metavar="BATCH")
@json_option
@click.pass_context
def verify_cmd(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """Re-read and re-hash every object of BATCH; check records, Merkle roots and the manifest signature."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    report = verify_batch(ws, batch_id)
    ws.record(actor, "batch.verify", f"batch:{batch_id}", {"ok": report.ok, "problems": len(report.problems)})
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        console.print(
            f"[green]OK[/] batch {batch_id}: {report.files_checked} file(s), {report.records_checked:,} record(s), "
            f"manifest signed by {report.signer}"
        )
    else:
        console.print(f"[red]FAILED[/] batch {batch_id}: {len(report.problems)} problem(s)")
        for p in report.problems:
            console.print(f"  {p.line()}", markup=False)
    ctx.exit(0 if report.ok else 3)


@cli.group()
def batch() -> None:
    """Batches: list, show."""


@batch.command("list")
@click.option("--source", default=None)
@click.option("--state", default=None)
@json_option
@click.pass_context
def batch_list(ctx: click.Context, source: str | None, state: str | None, as_json: bool) -> None:
    """List batches."""
    ws = open_workspace(ctx)
    items = list_batches(ws, source=source, state=state)

    def human() -> None:
        t = Table("batch", "source", "state", "files", "records", "acquired", "by")
        for b in items:
            t.add_row(
                b.id, b.source, str(b.state), str(b.file_count), f"{b.record_count:,}", b.created_at[:19], b.created_by
            )
        console.print(t)

    emit(as_json, [b.to_json() for b in items], human)


@batch.command("show")
@click.argument("batch_id", metavar="BATCH")
@json_option
@click.pass_context
def batch_show(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """Show a batch and its files."""
    ws = open_workspace(ctx)
    b = get_batch(ws, batch_id)

    def human() -> None:
        console.print(f"[bold]{b.id}[/] from {b.source}, state {b.state}, acquired {b.created_at} by {b.created_by}")
        t = Table("file", "format", "records", "bytes", "sha256")
        for f in b.files:
            t.add_row(f.name, f.format, f"{f.record_count:,}", f"{f.size:,}", f.sha256[:16] + "...")
        console.print(t)

    emit(as_json, b.to_json(), human)
