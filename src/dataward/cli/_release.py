"""Commands: release, diff, rollback, export, import-dvc, dataset, run, lineage, blast-radius."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from dataward.cli._app import cli
from dataward.cli._util import (
    acting,
    byte_progress,
    console,
    emit,
    emit_json,
    err_console,
    json_option,
    open_workspace,
    print_table,
    shown,
)
from dataward.errors import InputError

#: how many records a human diff prints per side
SHOWN = 50


def _print_version(v: dict[str, Any]) -> None:
    console.print(
        f"Version [bold]{v['version']}[/] ({v['kind']}, parent {v['parent'] or '-'}): {len(v['batches'])} batch(es), "
        f"{v['records']:,} record(s), by {v['created_by']} at {v['created_at'][:19]}"
    )
    console.print(f"  Merkle root {v['merkle_root']}")
    console.print(f"  signed manifest {v['manifest_sha256']}")


@cli.command("release")
@click.argument("dataset")
@click.option("--add", "add", multiple=True, metavar="BATCH", help="Approved batch to add (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="BATCH", help="Batch of the latest version to leave out.")
@json_option
@click.pass_context
def release_cmd(ctx: click.Context, dataset: str, add: tuple[str, ...], remove: tuple[str, ...], as_json: bool) -> None:
    """Create the next immutable, signed version of DATASET (approved batches become released)."""
    from dataward.release.versions import release

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    with ws.engine.connect() as conn:
        from dataward.batches import load_batch

        total = sum(load_batch(conn, b).byte_count for b in add)
    with byte_progress(total, "releasing") as progress:
        v = release(ws, actor, dataset, list(add), list(remove), progress=progress)
    emit(as_json, v.to_json(), lambda: _print_version(v.to_json()))


@cli.command("diff")
@click.argument("a", metavar="DATASET@A")
@click.argument("b", metavar="DATASET@B")
@json_option
@click.pass_context
def diff_cmd(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """Records added and removed between two versions (by record digest)."""
    from dataward.release.diff import diff_versions

    ws = open_workspace(ctx)
    d = diff_versions(ws, a, b)

    def human() -> None:
        console.print(
            f"{d.a} -> {d.b}: [green]+{len(d.added):,}[/] [red]-{len(d.removed):,}[/] record(s), "
            f"{d.unchanged:,} unchanged"
        )
        for bid in d.batches_added:
            console.print(f"  + batch {bid}")
        for bid in d.batches_removed:
            console.print(f"  - batch {bid}")
        for sign, refs in (("+", d.added), ("-", d.removed)):
            for r in refs[:SHOWN]:
                console.print(f"  {sign} {shown(r.digest)}  {r.batch}/{r.file} record {r.record}", markup=False)
            if len(refs) > SHOWN:
                console.print(f"  {sign} ... {len(refs) - SHOWN:,} more (use --json)")

    emit(as_json, d.to_json(), human)


@cli.command("rollback")
@click.argument("dataset")
@click.option("--to", "to", default=None, metavar="VERSION", help="Go back to the batches of this version.")
@click.option("--without", multiple=True, metavar="BATCH|SOURCE", help="Drop this batch or every batch of a source.")
@click.option(
    "--without-records",
    "without_records",
    default=None,
    metavar="FILE|FINDING",
    help="Drop only these records: a file of record digests (or BATCH:N, BATCH/FILE:N), one per line, "
    "a findings JSON (screen --show --json), or a finding id BATCH#N.",
)
@click.option("--reason", default=None, help="Why (kept in the signed manifest and the log).")
@json_option
@click.pass_context
def rollback_cmd(
    ctx: click.Context,
    dataset: str,
    to: str | None,
    without: tuple[str, ...],
    without_records: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Create a new version without tainted records; revoke the batches (or single records) it drops."""
    from dataward.release.rollback import read_selectors, rollback, version_dropped_records

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    selectors = read_selectors(without_records) if without_records is not None else None
    v, revoked = rollback(ws, actor, dataset, to=to, without=list(without), without_records=selectors, reason=reason)
    dropped = version_dropped_records(ws, v) if selectors is not None else []
    out = {**v.to_json(), "revoked": revoked, "dropped_records": dropped}

    def human() -> None:
        _print_version(out)
        for b in revoked:
            console.print(f"  [red]revoked[/] batch {b}")
        for d in dropped[:SHOWN]:
            console.print(f"  [red]dropped[/] {d['batch']}/{d['file']} record {d['record']}  {d['sha256']}  {d['by']}")
        if len(dropped) > SHOWN:
            console.print(f"  ... showing {SHOWN} of {len(dropped):,} dropped records (use --json)")

    emit(as_json, out, human)


@cli.command("export")
@click.argument("spec", metavar="DATASET@VERSION")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--quick", is_flag=True, help="Do not re-derive record digests first (signatures, lists and bytes still checked)."
)
@json_option
@click.pass_context
def export_cmd(ctx: click.Context, spec: str, dest: str, quick: bool, as_json: bool) -> None:
    """Verify a released version end to end and write it to DIR: the records as Parquet under data/ (loads
    with Hugging Face `datasets.load_dataset(DIR)`), the released files, a dataset card (README.md),
    Croissant metadata (croissant.json), SHA256SUMS and the signed manifest (under dataward/)."""
    from dataward.cli._progress import terminal_progress
    from dataward.release.reader import export_version

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    out = export_version(
        spec,
        dest,
        workspace=ws,
        principal=actor,
        verify="quick" if quick else "full",
        progress=terminal_progress(err_console),
    )

    def human() -> None:
        console.print(
            f"[green]verified[/] {out['version']}: {out['files']} file(s), {out['records']:,} record(s), "
            f"{out['bytes']:,} bytes -> {out['dir']}"
        )
        for name in out["withheld"]:
            console.print(f"  {name}: not exported raw (a rollback dropped some of its records; they are in data/)")

    emit(as_json, out, human)


@cli.command("import-dvc")
@click.argument("repo", type=click.Path(file_okay=False, exists=True))
@click.option("--source", "source_name", required=True, help="An internal source to import into.")
@click.option("--rev", "revs", multiple=True, metavar="REV", help="Import what this git revision tracked (repeat).")
@json_option
@click.pass_context
def import_dvc_cmd(ctx: click.Context, repo: str, source_name: str, revs: tuple[str, ...], as_json: bool) -> None:
    """Import the outputs tracked by a DVC repository (.dvc files, dvc.lock) as batches, re-hashed with SHA-256."""
    from dataward.release.dvc import import_dvc

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    results = import_dvc(ws, actor, Path(repo), source_name, revs=revs)

    def human() -> None:
        t = Table("output", "from", "batch", "files", "records")
        for r in results:
            t.add_row(Text(r["path"]), Text(r["tracked_in"]), r["batch"], str(r["files"]), f"{r['records']:,}")
        print_table(t)

    emit(as_json, results, human)


# datasets ---------------------------------------------------------------------------------------------------
@cli.group()
def dataset() -> None:
    """Dataset versions: list, show, verify."""


@dataset.command("list")
@click.argument("name", required=False)
@json_option
@click.pass_context
def dataset_list(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List versions (of dataset NAME, or all)."""
    from dataward.release.versions import list_versions

    ws = open_workspace(ctx)
    items = [v.to_json() for v in list_versions(ws, name)]

    def human() -> None:
        t = Table("version", "kind", "parent", "batches", "records", "created", "by")
        for v in items:
            t.add_row(
                v["version"],
                v["kind"],
                str(v["parent"] or "-"),
                str(len(v["batches"])),
                f"{v['records']:,}",
                v["created_at"][:19],
                v["created_by"],
            )
        print_table(t)

    emit(as_json, items, human)


@dataset.command("show")
@click.argument("spec", metavar="DATASET@VERSION")
@json_option
@click.pass_context
def dataset_show(ctx: click.Context, spec: str, as_json: bool) -> None:
    """Show a version and its batches."""
    from dataward.release.versions import get_version

    ws = open_workspace(ctx)
    v = get_version(ws, spec).to_json()

    def human() -> None:
        _print_version(v)
        for b in v["batches"]:
            console.print(f"  batch {b}")

    emit(as_json, v, human)


@dataset.command("verify")
@click.argument("spec", metavar="DATASET@VERSION")
@click.option("--quick", is_flag=True, help="Check signatures, log and states only; do not re-hash the data.")
@json_option
@click.pass_context
def dataset_verify(ctx: click.Context, spec: str, quick: bool, as_json: bool) -> None:
    """Verify a version end to end: log entry, signatures, approvals, states, every file and record."""
    from dataward.release.versions import verify_version

    ws = open_workspace(ctx)
    rep = verify_version(ws, spec, full=not quick)
    if as_json:
        emit_json(rep.to_json())
    elif rep.ok:
        console.print(
            f"[green]OK[/] {rep.version}: {rep.batches_checked} batch(es), {rep.records:,} record(s), "
            f"manifest signed by {rep.signer}" + (" (quick)" if quick else "")
        )
    else:
        console.print(f"[red]FAILED[/] {rep.version}: {len(rep.problems)} problem(s)")
        for p in rep.problems:
            console.print(f"  {p}", markup=False)
    ctx.exit(0 if rep.ok else 3)


# runs and lineage -------------------------------------------------------------------------------------------
@cli.group("run")
def run_group() -> None:
    """Training runs: record, list, show, provenance."""


@run_group.command("record")
@click.option("--dataset", "spec", required=True, metavar="DATASET@VERSION", help="The version trained on.")
@click.option("--base-model", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--model", "models", multiple=True, required=True, type=click.Path(exists=True), help="Output (repeat).")
@click.option("--started-at", default=None, help="When training started (ISO-8601 UTC; default: now).")
@json_option
@click.pass_context
def run_record(
    ctx: click.Context,
    spec: str,
    base_model: str | None,
    models: tuple[str, ...],
    started_at: str | None,
    as_json: bool,
) -> None:
    """Record a training run: the verified version (and base model) in, the model files out, signed."""
    from dataward.lineage.runs import record_run
    from dataward.timeutil import parse_iso, to_iso

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    if started_at is not None:
        try:
            started_at = to_iso(parse_iso(started_at))
        except ValueError:
            raise InputError(f"--started-at {started_at!r} is not an ISO-8601 time") from None
    run = record_run(ws, actor, spec, list(models), base_model=base_model, started_at=started_at)

    def human() -> None:
        console.print(f"Run [bold]{run.id}[/] on {run.version} by {run.principal}: {len(run.outputs)} model file(s)")
        for a in run.outputs:
            console.print(f"  {shown(a.sha256)}  {a.name}", markup=False)
        console.print(f"  signed SLSA provenance {run.provenance_digest}")

    emit(as_json, run.to_json(), human)


@run_group.command("list")
@json_option
@click.pass_context
def run_list(ctx: click.Context, as_json: bool) -> None:
    """List recorded training runs."""
    from dataward.lineage.runs import list_runs

    ws = open_workspace(ctx)
    runs = [r.to_json() for r in list_runs(ws)]

    def human() -> None:
        t = Table("run", "version", "status", "models", "by", "finished")
        for r in runs:
            t.add_row(r["id"], r["version"], r["status"], str(len(r["models"])), r["principal"], r["finished_at"][:19])
        print_table(t)

    emit(as_json, runs, human)


@run_group.command("show")
@click.argument("run_id", metavar="RUN")
@json_option
@click.pass_context
def run_show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run."""
    from dataward.lineage.runs import get_run

    ws = open_workspace(ctx)
    r = get_run(ws, run_id).to_json()
    emit(as_json, r, lambda: console.print_json(json.dumps(r)))


@run_group.command("provenance")
@click.argument("run_id", metavar="RUN")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the envelope here.")
@click.option("--openlineage", "ol", is_flag=True, help="Print the run's OpenLineage events instead.")
@json_option
@click.pass_context
def run_provenance(ctx: click.Context, run_id: str, output: str | None, ol: bool, as_json: bool) -> None:
    """Print the run's signed SLSA provenance (DSSE envelope), or its OpenLineage events (JSON either way)."""
    from dataward.lineage.openlineage import events
    from dataward.lineage.runs import get_run, provenance_envelope

    ws = open_workspace(ctx)
    get_run(ws, run_id)
    data = json.dumps(events(ws, [run_id]), indent=2) if ol else json.dumps(provenance_envelope(ws, run_id).to_dict())
    if output:
        Path(output).write_text(data + "\n", encoding="utf-8")
    else:
        click.echo(data)


@cli.command("lineage")
@click.argument("target", required=False, metavar="MODEL|VERSION|BATCH|SOURCE")
@click.option(
    "--openlineage", "ol_out", type=click.Path(dir_okay=False), default=None, help="Write OpenLineage events here."
)
@json_option
@click.pass_context
def lineage_cmd(ctx: click.Context, target: str | None, ol_out: str | None, as_json: bool) -> None:
    """What TARGET came from and what came from it (MODEL by path or SHA-256). --openlineage OUT.json writes
    the OpenLineage run events of the runs in that lineage (of every run without TARGET)."""
    from dataward.lineage.openlineage import events
    from dataward.lineage.queries import lineage

    ws = open_workspace(ctx)
    if target is None and ol_out is None:
        raise InputError("name a TARGET, or give --openlineage OUT.json to export every run")
    result = lineage(ws, target) if target else None
    if ol_out:
        runs = None
        if result is not None:
            nodes = [result["target"], *result["upstream"], *result["downstream"]]
            runs = [n["id"].split(":", 1)[1] for n in nodes if n["type"] == "run"]
        evs = events(ws, runs)
        Path(ol_out).write_text(json.dumps(evs, indent=2) + "\n", encoding="utf-8")
        if result is None:
            emit(as_json, {"openlineage": ol_out, "events": len(evs)}, lambda: console.print(f"{len(evs)} event(s)"))
            return
        result["openlineage"] = {"file": ol_out, "events": len(evs)}
    assert result is not None

    def human() -> None:
        t = result["target"]
        console.print(
            f"[bold]{t['id']}[/]" + (f" (parent {result['parent_version']})" if "parent_version" in result else "")
        )
        for title, key in (("upstream", "upstream"), ("downstream", "downstream")):
            console.print(f"{title}:")
            for n in result[key]:
                extra = f" {n['name']}" if n.get("name") else ""
                console.print(f"  {n['id']}{extra}", markup=False)
            if not result[key]:
                console.print("  (nothing)")
        for title, key in (("dropped records", "dropped_records"), ("revoked records", "revoked_records")):
            rows = result.get(key) or []
            if rows:
                console.print(f"{title}: {len(rows):,}" + (f" (showing {SHOWN})" if len(rows) > SHOWN else ""))
            for d in rows[:SHOWN]:
                where = f"{d['batch']}/{d['file']}" if "batch" in d else d["file"]
                why = d.get("reason") or d.get("by") or ""
                console.print(f"  {where} record {d['record']} {d['sha256']} by {d['version']} {why}", markup=False)

    emit(as_json, result, human)


@cli.command("blast-radius")
@click.argument("target", metavar="BATCH|SOURCE")
@json_option
@click.pass_context
def blast_radius_cmd(ctx: click.Context, target: str, as_json: bool) -> None:
    """Every version and model that contains records from BATCH or SOURCE."""
    from dataward.lineage.queries import blast_radius

    ws = open_workspace(ctx)
    r = blast_radius(ws, target)

    def human() -> None:
        console.print(f"[bold]{r['target']['id']}[/]: {len(r['batches'])} batch(es)")
        for v in r["versions"]:
            console.print(f"  version {v['version']}: {v['records_from_target']:,} of {v['records']:,} record(s)")
        for m in r["models"]:
            console.print(f"  model {shown(m['sha256'])} {m['name']} (runs {', '.join(m['runs'])})", markup=False)
        if not r["versions"] and not r["models"]:
            console.print("  nothing downstream")

    emit(as_json, r, human)
