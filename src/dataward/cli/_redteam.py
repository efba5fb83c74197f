"""Commands: ``redteam`` (the model gate for CI) and ``incident`` (open, show, list, resolve)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from dataward.cli._app import cli
from dataward.cli._progress import terminal_progress
from dataward.cli._util import acting, console, emit, emit_json, err_console, json_option, open_workspace
from dataward.errors import EXIT_GATE_FAILED, WorkspaceError

if TYPE_CHECKING:
    from dataward.identity import Actor
    from dataward.workspace import Workspace

#: exit status of a red-team run whose checks failed (errors keep their own codes; 4 is "unauthorized")
FAILED = EXIT_GATE_FAILED


def _model_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--timeout", type=float, default=10.0, show_default=True, help="HTTP models: seconds per call.")(f)
    f = click.option("--retries", type=int, default=2, show_default=True, help="HTTP models: retries per batch.")(f)
    f = click.option("--label", default=None, help="Label column (default: label/Label/y/target/class).")(f)
    f = click.option("--text", default=None, help="Text input column (default: the longest string column).")(f)
    f = click.option("--feature", "features", multiple=True, help="Numeric input column (repeatable).")(f)
    return f


@cli.command("redteam")
@click.argument("model")
@click.option("--data", "data", required=True, metavar="DATASET@VERSION|PATH", help="Data to draw records from.")
@click.option("--clean", default=None, metavar="DATASET@VERSION|PATH", help="Clean independent set (held out).")
@click.option(
    "--clean-from-training",
    is_flag=True,
    help="No clean set: measure on the --data itself (the report says so). Without it, --clean is required.",
)
@_model_options
@click.option("--intel", "intel_paths", multiple=True, type=click.Path(), help="Threat-intel feed (repeatable).")
@click.option("--intel-key", "intel_keys", multiple=True, type=click.Path(), help="Feed public key (repeatable).")
@click.option("--allow-unsigned-intel", is_flag=True, help="Accept unsigned feeds and STIX bundles.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="redteam-out", show_default=True)
@click.option("--max-asr", type=float, default=None, help="Override the policy's max_attack_success_rate.")
@click.option("--sample", type=int, default=None, help="Override the policy's held-out sample size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-record", is_flag=True, help="Do not sign and log the result (dry run).")
@json_option
@click.pass_context
def redteam_cmd(
    ctx: click.Context,
    model: str,
    data: str,
    clean: str | None,
    clean_from_training: bool,
    timeout: float,
    retries: int,
    label: str | None,
    text: str | None,
    features: tuple[str, ...],
    intel_paths: tuple[str, ...],
    intel_keys: tuple[str, ...],
    allow_unsigned_intel: bool,
    out_dir: str,
    max_asr: float | None,
    sample: int | None,
    seed: int,
    no_record: bool,
    as_json: bool,
) -> None:
    """Red-team MODEL (module:function, http(s)://..., or FILE.onnx): trigger injection, distribution shift and
    label consistency. Writes JSON, JUnit XML, SARIF 2.1.0 and Markdown to --out; exits 1 when a check fails."""
    from dataward.redteam.api import redteam
    from dataward.redteam.formats import write_outputs
    from dataward.redteam.models import load_model

    ws, actor = _workspace_unless_dry_run(ctx, no_record)
    feeds = []
    if intel_paths:
        from dataward.screen.intel import load_feed, load_public_key

        keys = [load_public_key(k) for k in intel_keys]
        feeds = [load_feed(p, keys=keys, allow_unsigned=allow_unsigned_intel) for p in intel_paths]
    overrides: dict[str, float] = {}
    if max_asr is not None:
        overrides["max_attack_success_rate"] = max_asr
    if sample is not None:
        overrides["sample"] = float(sample)
    m = load_model(model, timeout=timeout, retries=retries)
    report, info = redteam(
        ws,
        actor,
        m,
        data,
        clean=clean,
        clean_from_training=clean_from_training,
        label=label,
        text=text,
        features=features,
        feeds=feeds,
        thresholds=overrides,
        seed=seed,
        progress=terminal_progress(err_console),
        record=not no_record,
    )
    paths = write_outputs(report, Path(out_dir))
    body = {**report.to_json(), **info.to_json(), "outputs": paths}

    def human() -> None:
        console.print(report.summary(), markup=False)
        console.print(f"reports: {', '.join(paths.values())}", markup=False)

    emit(as_json, body, human)
    ctx.exit(0 if report.passed else FAILED)


def _workspace_unless_dry_run(ctx: click.Context, no_record: bool) -> tuple[Workspace | None, Actor | None]:
    """The workspace and principal; with --no-record and no workspace at -w, neither (a plain CI job)."""
    from dataward.workspace import CONFIG_NAME

    root = Path(ctx.find_root().obj["workspace"])
    if no_record and not (root / CONFIG_NAME).exists():
        click.echo(f"no workspace at {root}: a dry run on files with the default policy's thresholds", err=True)
        return None, None
    try:
        ws = open_workspace(ctx)
    except WorkspaceError as exc:
        raise WorkspaceError(str(exc), advice="Gate a model without a workspace with --no-record.") from None
    return ws, acting(ctx, ws)


@cli.group("incident")
def incident() -> None:
    """Incident response: trace a misbehaving model back to records, batches and sources."""


@incident.command("open")
@click.option("--model", "model", required=True, help="Model digest, model file, or loadable model spec.")
@click.option("--examples", required=True, type=click.Path(exists=True, dir_okay=False), help="Misbehaving inputs.")
@_model_options
@click.option("--title", default=None, help="A one-line summary (default: generated).")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@click.pass_context
def incident_open(
    ctx: click.Context,
    model: str,
    examples: str,
    timeout: float,
    retries: int,
    label: str | None,
    text: str | None,
    features: tuple[str, ...],
    title: str | None,
    seed: int,
    as_json: bool,
) -> None:
    """Open an incident: EXAMPLES (csv/tsv/jsonl/parquet) hold the inputs, and `output`/`expected` columns when
    known; MODEL is a digest or file (outputs then come from the examples) or a runnable model."""
    from dataward.incident.api import open_incident, story
    from dataward.redteam.models import Model, load_model

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    target: Model | str = model
    runnable = model.startswith(("http://", "https://")) or model.lower().endswith(".onnx") or ":" in model
    if runnable and not model.lower().startswith("sha256:"):
        target = load_model(model, timeout=timeout, retries=retries)
    inc = open_incident(
        ws,
        actor,
        target,
        Path(examples),
        label=label,
        text=text,
        features=features,
        title=title,
        seed=seed,
        progress=terminal_progress(err_console),
    )
    emit(as_json, inc.to_json(), lambda: console.print(story(inc), markup=False))


@incident.command("show")
@click.argument("incident_id")
@json_option
@click.pass_context
def incident_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """The incident's story: misbehaviour, trigger, records, batches, sources, blast radius, remediation."""
    from dataward.incident.api import get_incident, story

    inc = get_incident(open_workspace(ctx), incident_id)
    emit(as_json, inc.to_json(), lambda: console.print(story(inc), markup=False))


@incident.command("list")
@click.option("--status", type=click.Choice(["open", "resolved"]), default=None)
@json_option
@click.pass_context
def incident_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """Incidents, oldest first."""
    from dataward.incident.api import list_incidents

    rows = list_incidents(open_workspace(ctx), status)

    def human() -> None:
        if not rows:
            console.print("no incidents")
        for r in rows:
            console.print(f"{r.id} [{r.status}] {r.opened_at[:19]} {r.summary}", markup=False)

    emit(as_json, [r.listing() for r in rows], human)


@incident.command("resolve")
@click.argument("incident_id")
@click.option("--apply", "apply", is_flag=True, help="Perform the remediation (approver role).")
@json_option
@click.pass_context
def incident_resolve(ctx: click.Context, incident_id: str, apply: bool, as_json: bool) -> None:
    """Show the remediation of INCIDENT_ID; with --apply roll back the affected datasets and close it."""
    from dataward.incident.api import resolve_incident

    ws = open_workspace(ctx)
    out = resolve_incident(ws, acting(ctx, ws), incident_id, apply=apply)
    if as_json:
        emit_json(out.to_json())
        return
    plan = out.plan
    for rb in plan.get("rollbacks", []):
        console.print(f"roll back {rb['dataset']} without {', '.join(rb['without'])}", markup=False)
    for m in plan.get("retrain", []):
        console.print(f"retrain {m.get('name')} ({str(m.get('sha256'))[:16]})", markup=False)
    if out.applied:
        console.print(f"applied: new versions {', '.join(out.versions) or '-'}; revoked {', '.join(out.revoked)}")
    else:
        console.print("dry run: add --apply to perform it")
