"""Commands: synthesize, coverage (synthetic data with verifiable provenance)."""

from __future__ import annotations

from pathlib import Path

import click

from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, json_option, open_workspace, version_reader
from dataward.model.subject import Subject


@cli.command("synthesize")
@click.argument("source_name", metavar="SOURCE")
@click.option("--generator", required=True, metavar="MODULE:FUNCTION", help="The generator to run.")
@click.option("--seed", type=int, required=True, help="The seed the generator is given.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A generator parameter (repeatable).")
@click.option("--conditioned-on", "conditioned", multiple=True, metavar="DS@V", help="A released input version.")
@click.option("--artifact", "artifacts", multiple=True, type=click.Path(dir_okay=False), help="A model file used.")
@click.option("--path", "search_path", default=None, help="Where the generator module lives (default: here).")
@json_option
@click.pass_context
def synthesize_cmd(
    ctx: click.Context,
    source_name: str,
    generator: str,
    seed: int,
    params: tuple[str, ...],
    conditioned: tuple[str, ...],
    artifacts: tuple[str, ...],
    search_path: str | None,
    as_json: bool,
) -> None:
    """Run a generator in the sandbox, acquire its output from SOURCE and sign how it was made."""
    from dataward.synthetic import synthesize

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    batch, stmt = synthesize(
        ws, actor, source_name, generator, seed=seed, params=params, conditioned_on=conditioned,
        artifacts=artifacts, search_path=search_path, read_version=version_reader(ws, actor),
    )

    def human() -> None:
        console.print(f"Batch [bold]{batch.id}[/] from {batch.source}: {batch.record_count:,} synthetic record(s)")
        console.print(f"  generator {stmt.generator.ref} (code {stmt.generator.code_sha256}), seed {seed}")
        console.print(f"  Merkle root {batch.merkle_root}; regenerate with `dataward verify --regenerate {batch.id}`")

    emit(as_json, {"batch": batch.to_json(), "generation": stmt.to_predicate()}, human)


@cli.command("coverage")
@click.argument("batch_id", metavar="BATCH")
@click.option("--reference", required=True, metavar="DS@V", help="The real version to compare against.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@json_option
@click.pass_context
def coverage_cmd(ctx: click.Context, batch_id: str, reference: str, html_out: str | None, as_json: bool) -> None:
    """Coverage of a synthetic BATCH against a real version, and a check for copied real records."""
    import io

    import pandas as pd

    from dataward.batches import get_batch
    from dataward.release.reader import open_dataset
    from dataward.synthetic import coverage
    from dataward.synthetic._coverage import coverage_html

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    real = open_dataset(reference, as_="pandas", workspace=ws, principal=actor)
    b = get_batch(ws, batch_id)
    ws.record(actor, "data.read", Subject.batch(batch_id), {"how": "coverage"})
    data = ws.objects.read_bytes("quarantine", b.files[0].sha256) if b.state != "released" else (
        ws.objects.read_bytes("released", b.files[0].sha256)
    )
    synth = pd.read_json(io.BytesIO(data), lines=True)
    report = coverage(real, synth)
    if html_out:
        Path(html_out).write_text(coverage_html(report, f"Coverage of {batch_id} against {reference}"), "utf-8")

    def human() -> None:
        for c in report.columns:
            cov = f", {c.category_coverage:.0%} of categories" if c.category_coverage is not None else ""
            console.print(f"  {c.column}: {c.kind} distance {c.distance:.3f}{cov}")
        colour = "red" if report.memorised else "green"
        console.print(
            f"[{colour}]{len(report.exact_copies)} exact and {len(report.near_copies)} near copies[/] of real records "
            f"(p = {report.near_copy_p_value:.3g} against {report.alpha:.0%} by chance)"
        )

    emit(as_json, report.to_json(), human)
    ctx.exit(1 if report.memorised else 0)
