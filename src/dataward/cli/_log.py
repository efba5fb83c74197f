"""Commands: log checkpoint | key | verify | replay | prove | consistency | verify-proof | show."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dataward.cli._app import cli
from dataward.cli._util import (
    acting,
    console,
    emit,
    emit_json,
    err_console,
    json_option,
    open_workspace,
    piped,
    print_table,
)
from dataward.core.checkpoint import verifier_key_string
from dataward.errors import InputError
from dataward.log import query
from dataward.log.proofcheck import verify_proof
from dataward.log.verify import LogVerification, verify_log
from dataward.log.witness import current_checkpoint
from dataward.workspace import Workspace


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


@log.command("key")
@json_option
@click.pass_context
def log_key(ctx: click.Context, as_json: bool) -> None:
    """Print the log's verifier key (name+id+key), for `dataward log verify-proof --key`."""
    ws = open_workspace(ctx)
    vkey = verifier_key_string(ws.origin, ws.log_public_key())
    emit(as_json, {"origin": ws.origin, "verifier_key": vkey}, lambda: click.echo(vkey))


def _verify_with_progress(ws: Workspace, incremental: bool, workers: int | None) -> LogVerification:
    progress = Progress(
        TextColumn("[bold]verifying log"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task("verify", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return verify_log(ws, incremental=incremental, workers=workers, remember=True, progress=advance)


@log.command("verify")
@click.option(
    "--incremental",
    is_flag=True,
    help="Trust entries this client fully verified before (tree check only for them); check the rest fully.",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Processes for signature checks (default: all cores)."
)
@json_option
@click.pass_context
def log_verify(ctx: click.Context, incremental: bool, workers: int | None, as_json: bool) -> None:
    """Recompute the tree from every entry; check every signature, the keys over time and the checkpoint."""
    ws = open_workspace(ctx)
    result = _verify_with_progress(ws, incremental, workers)
    if result.ok:
        acting_name = ctx.find_root().obj.get("principal")
        if acting_name:
            ws.record(acting(ctx, ws), "log.verify", f"log:{ws.id}", {"entries": result.entries, "root": result.root})
    if as_json:
        emit_json(result.to_json())
    elif result.ok:
        how = f" ({result.trusted_prefix:,} verified earlier: tree check)" if result.mode == "incremental" else ""
        console.print(
            f"[green]OK[/] {result.entries:,} entries{how}, {result.signatures_checked:,} signatures, "
            f"root {result.root}"
        )
        for m in result.marked[:10]:
            console.print(f"  [yellow]note[/] {m}", markup=False)
        if result.marked_count > 10:
            console.print(f"  ... {result.marked_count - 10:,} more entries signed before a later revocation")
    else:
        console.print(f"[red]FAILED[/] {len(result.problems)} problem(s) in the audit log")
        for p in result.problems:
            console.print(f"  {p.line()}", markup=False)
    ctx.exit(0 if result.ok else 3)


@log.command("replay")
@click.option("--check", is_flag=True, help="Dry run: print every divergence, exit 1 if there is any; change nothing.")
@json_option
@click.pass_context
def log_replay(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Rebuild the catalog projection from the signed log (admins; logged as log.replay)."""
    from dataward.evidence.rebuild import rebuild_projection

    ws = open_workspace(ctx)
    actor = None if check else acting(ctx, ws)
    result = rebuild_projection(ws, actor, check=check)
    plan = result.plan
    if as_json:
        emit_json(result.to_json())
    else:
        verb = "would repair" if check else "repaired"
        for d in plan.repairs:
            console.print(f"  {verb}: {d.line()}", markup=False)
        for d in plan.unrestorable:
            console.print(f"  [red]cannot repair[/] {d.line()}", markup=False)
        if not plan.repairs and not plan.unrestorable:
            console.print(f"[green]OK[/] the catalog agrees with the signed log ({result.entries:,} entries)")
        elif check:
            console.print(f"[yellow]{len(plan.repairs) + len(plan.unrestorable)} divergence(s)[/] from the signed log")
        else:
            rest = f", [red]{len(plan.unrestorable)} not repairable[/]: restore them from a backup"
            console.print(
                f"{len(plan.repairs)} divergence(s) repaired ({result.rows_changed} row(s) changed)"
                + (rest if plan.unrestorable else "")
            )
    if check:
        ctx.exit(0 if not plan.repairs and not plan.unrestorable else 1)
    ctx.exit(0 if not plan.unrestorable else 3)


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


@log.command("verify-proof")
@click.argument("proof_file", metavar="PROOF.json", type=click.Path(dir_okay=False))
@click.option("--key", "log_key", required=True, help="The log's verifier key (from `dataward log key`).")
@click.option(
    "--old-checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Consistency: the checkpoint you kept for the old size (default: the one in the proof).",
)
@click.option("--signer-key", default=None, help="Inclusion: the entry signer's public key (hex), to check it too.")
@json_option
def log_verify_proof(
    proof_file: str, log_key: str, old_checkpoint: str | None, signer_key: str | None, as_json: bool
) -> None:
    """Check an inclusion or consistency proof standalone: needs only PROOF.json and the log key."""
    try:
        data = json.loads(Path(proof_file).read_text(encoding="utf-8"))
        old = Path(old_checkpoint).read_bytes() if old_checkpoint else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{proof_file}: cannot read the proof ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{proof_file}: a proof is a JSON object")
    result = verify_proof(data, log_key, old_checkpoint=old, signer_key=signer_key)

    def human() -> None:
        if result["kind"] == "inclusion":
            e = result.get("entry") or {}
            what = f" ({e.get('action')} by {e.get('principal')})" if e else ""
            console.print(
                f"[green]OK[/] entry {result['index']}{what} is in the log {result['origin']} "
                f"of {result['tree_size']} entries (root {result['root']})"
            )
        else:
            console.print(
                f"[green]OK[/] the log {result['origin']} at {result['size2']} entries extends its state at "
                f"{result['size1']} entries"
            )

    emit(as_json, {"ok": True, **result}, human)


@log.command("show")
@click.option("--action", default=None, help="Filter by action (wildcard *).")
@click.option("--principal", default=None)
@click.option("--subject", default=None, help="Filter by subject (wildcard *).")
@click.option("--since", default=None, help="Only entries at or after this time (ISO-8601).")
@click.option("--until", default=None, help="Only entries before this time (ISO-8601).")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@json_option
@click.pass_context
def log_show(
    ctx: click.Context,
    action: str | None,
    principal: str | None,
    subject: str | None,
    since: str | None,
    until: str | None,
    oldest_first: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Browse log entries (filters combine), newest first."""
    ws = open_workspace(ctx)
    entries = query.show_entries(
        ws,
        action=action,
        principal=principal,
        subject=subject,
        since=since,
        until=until,
        limit=limit,
        newest_first=not oldest_first,
    )

    def human() -> None:
        t = Table("#", "time", "principal", "action", "subject", "details")
        for e in entries:
            items = list(e.details.items())
            d = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in (items if piped() else items[:4]))
            t.add_row(str(e.seq), e.time[:19], e.principal, e.action, e.subject, d if piped() else d[:80])
        print_table(t)

    emit(as_json, [e.to_json() for e in entries], human)
