"""Commands: log checkpoint | verify | prove | consistency | show."""

from __future__ import annotations

import click
from rich.table import Table

from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, emit_json, json_option, open_workspace
from dataward.log import query
from dataward.log.verify import verify_log
from dataward.log.witness import current_checkpoint


@cli.group()
def log() -> None:
    """The tamper-evident audit log."""


@log.command("checkpoint")
@json_option
@click.pass_context
def log_checkpoint(ctx: click.Context, as_json: bool) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint)."""
    ws = open_workspace(ctx)
    got = current_checkpoint(ws)
    if got is None:
        raise click.ClickException("the log is empty")
    cp, note = got
    emit(
        as_json,
        {"origin": cp.origin, "size": cp.size, "root": cp.root_hash.hex(), "note": note.decode()},
        lambda: click.echo(note.decode(), nl=False),
    )


@log.command("verify")
@json_option
@click.pass_context
def log_verify(ctx: click.Context, as_json: bool) -> None:
    """Recompute the tree from every entry; check every signature and the latest checkpoint."""
    ws = open_workspace(ctx)
    result = verify_log(ws)
    if result.ok:
        acting_name = ctx.find_root().obj.get("principal")
        if acting_name:
            ws.record(acting(ctx, ws), "log.verify", f"log:{ws.id}", {"entries": result.entries, "root": result.root})
    if as_json:
        emit_json(result.to_json())
    elif result.ok:
        console.print(
            f"[green]OK[/] {result.entries:,} entries, {result.signatures_checked:,} signatures, root {result.root}"
        )
        for m in result.marked[:10]:
            console.print(f"  [yellow]note[/] {m}", markup=True)
    else:
        console.print(f"[red]FAILED[/] {len(result.problems)} problem(s) in the audit log")
        for p in result.problems:
            console.print(f"  {p.line()}", markup=False)
    ctx.exit(0 if result.ok else 3)


@log.command("prove")
@click.argument("entry", type=int)
@json_option
@click.pass_context
def log_prove(ctx: click.Context, entry: int, as_json: bool) -> None:
    """Inclusion proof of ENTRY (a sequence number) in the latest checkpoint."""
    ws = open_workspace(ctx)
    p = query.prove_inclusion(ws, entry)

    def human() -> None:
        console.print(f"entry {p.seq} of {p.size}: leaf {p.leaf_hash.hex()}")
        for i, h in enumerate(p.proof):
            console.print(f"  [{i}] {h.hex()}")
        click.echo(p.checkpoint.decode(), nl=False)

    emit(as_json, p.to_json(), human)


@log.command("consistency")
@click.argument("old_size", type=int)
@click.argument("new_size", type=int, required=False)
@json_option
@click.pass_context
def log_consistency(ctx: click.Context, old_size: int, new_size: int | None, as_json: bool) -> None:
    """Consistency proof from OLD_SIZE to NEW_SIZE (default: the latest size)."""
    ws = open_workspace(ctx)
    p = query.prove_consistency(ws, old_size, new_size)

    def human() -> None:
        console.print(f"consistency {p.size1} -> {p.size2}")
        for i, h in enumerate(p.proof):
            console.print(f"  [{i}] {h.hex()}")

    emit(as_json, p.to_json(), human)


@log.command("show")
@click.option("--action", default=None, help="Filter by action (wildcard *).")
@click.option("--principal", default=None)
@click.option("--subject", default=None, help="Filter by subject (wildcard *).")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@json_option
@click.pass_context
def log_show(
    ctx: click.Context, action: str | None, principal: str | None, subject: str | None, limit: int, as_json: bool
) -> None:
    """Browse log entries, newest first."""
    ws = open_workspace(ctx)
    entries = query.show_entries(ws, action=action, principal=principal, subject=subject, limit=limit)

    def human() -> None:
        t = Table("#", "time", "principal", "action", "subject", "details")
        for e in entries:
            d = ", ".join(f"{k}={v}" for k, v in list(e.details.items())[:4])
            t.add_row(str(e.seq), e.time[:19], e.principal, e.action, e.subject, d[:80])
        console.print(t)

    emit(as_json, [e.to_json() for e in entries], human)
