"""Screening commands: ``baseline``, ``check``, ``intel``, ``scan-model`` (standalone, on files).

The workspace integration (baselines stored per dataset, ``intel add`` in the audit log, checkpoints as
batches) builds on the library functions these call.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dataward.cli._app import cli
from dataward.cli._util import executor_options
from dataward.errors import InputError


def _tty_progress() -> Any:
    """Progress bars on stderr when it is a terminal (None otherwise: piped output stays clean)."""
    from dataward.cli._progress import terminal_progress
    from dataward.cli._util import err_console

    return terminal_progress(err_console)


def _write(path: str, text: str, what: str) -> None:
    if path == "-":
        click.echo(text)
        return
    try:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror}", advice="Choose a writable path.") from None


def _cols(value: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else ()


def _column_options(f: Any) -> Any:
    for opt in reversed(
        (
            click.option("--format", "fmt", default=None, help="csv, tsv, jsonl, json, parquet, arrow, txt, images."),
            click.option("--label", default=None, help="Label column."),
            click.option("--text", default=None, help="Text column(s), comma-separated."),
            click.option("--group", default=None, help="Group column(s) for label balance, comma-separated."),
        )
    ):
        f = opt(f)
    return f


@cli.group()
def baseline() -> None:
    """Baselines: profiles of trusted data that batches are checked against."""


@baseline.command("create")
@click.argument("path", type=click.Path())
@_column_options
@click.option("--out", required=True, help="Write the baseline (canonical JSON) here.")
@click.option("--sample-size", type=click.IntRange(100, 1_000_000), default=10_000, show_default=True)
@click.option("--partition", default="", help="Partition key (profiles of partitions merge with `baseline merge`).")
@click.pass_context
def baseline_create(
    ctx: click.Context,
    path: str,
    fmt: str | None,
    label: str | None,
    text: str | None,
    group: str | None,
    out: str,
    sample_size: int,
    partition: str,
) -> None:
    """Profile trusted data at PATH (a file or directory, or DATASET@VERSION of the workspace) into a baseline.

    A released version is read verified, file by file; the files' profiles are merged."""
    import re

    from dataward.screen.api import create_baseline

    kwargs: dict[str, Any] = {
        "label": label,
        "text": _cols(text),
        "group": _cols(group),
        "sample_size": sample_size,
        "progress": _tty_progress(),
    }
    if not Path(path).exists() and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9._-]+", path):
        from dataward.release.reader import open_dataset
        from dataward.screen.conform import detect_format

        obj = ctx.find_root().obj or {}
        files = open_dataset(path, as_="paths", workspace=obj.get("workspace"), principal=obj.get("principal"))
        if not files:
            raise InputError(f"{path}: the version holds no files")
        bl = None
        for name, fpath in files:
            fmt_i = fmt or detect_format(Path(name))  # objects are stored without extensions
            part = create_baseline(fpath, format=fmt_i, partition=f"{path}/{name}", **kwargs)
            bl = part if bl is None else bl.merge(part)
        assert bl is not None
    else:
        bl = create_baseline(path, format=fmt, partition=partition, **kwargs)
    _write(out, bl.to_json().decode("utf-8"), "baseline")
    cols = ", ".join(f"{c.name}:{c.role}" for c in bl.profile.columns.values())
    click.echo(f"baseline of {bl.profile.n_records} records ({cols}) -> {out} (sha256 {bl.digest()[:16]}…)")


@baseline.command("merge")
@click.argument("baselines", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, help="Write the merged baseline here.")
def baseline_merge(baselines: tuple[str, ...], out: str) -> None:
    """Merge baselines of partitions of one data set into one."""
    from dataward.screen.api import load_baseline

    merged = load_baseline(baselines[0])
    for other in baselines[1:]:
        merged = merged.merge(load_baseline(other))
    _write(out, merged.to_json().decode("utf-8"), "baseline")
    click.echo(f"merged {len(baselines)} baselines: {merged.profile.n_records} records -> {out}")


@cli.command("check")
@click.argument("path", type=click.Path())
@_column_options
@click.option("--baseline", "baseline_path", default=None, type=click.Path(), help="Baseline file to check against.")
@click.option("--intel", "intel_paths", multiple=True, type=click.Path(), help="Intel feed (repeatable).")
@click.option("--intel-key", "intel_keys", multiple=True, type=click.Path(), help="Feed public key (repeatable).")
@click.option("--allow-unsigned-intel", is_flag=True, help="Accept unsigned feeds and STIX bundles.")
@click.option("--image", default=None, help="Image column(s), comma-separated.")
@click.option("--licence-column", default=None, help="Per-record licence column.")
@click.option("--source-licence", default=None, help="Licence declared for the batch's source (SPDX).")
@click.option("--policy", "policy_path", default=None, type=click.Path(), help="Screening policy (YAML/JSON).")
@click.option("--pii", type=click.Choice(["block", "warn"]), default=None, help="Override the policy's PII switch.")
@click.option("--checks", default=None, help="Comma-separated check names (default: all).")
@click.option("--fail-on", default="high", show_default=True, help="Exit 1 when a finding is at least this severe.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout (no summary there).")
@click.option("--json-out", "json_out", default=None, metavar="FILE", help="Write the JSON report to FILE.")
@click.option("--html", "html_out", default=None, help="Write the HTML report here.")
@click.option("--quiet", is_flag=True, help="No human summary.")
@executor_options
@click.pass_context
def check_cmd(
    ctx: click.Context,
    path: str,
    fmt: str | None,
    label: str | None,
    text: str | None,
    group: str | None,
    baseline_path: str | None,
    intel_paths: tuple[str, ...],
    intel_keys: tuple[str, ...],
    allow_unsigned_intel: bool,
    image: str | None,
    licence_column: str | None,
    source_licence: str | None,
    policy_path: str | None,
    pii: str | None,
    checks: str | None,
    fail_on: str,
    as_json: bool,
    json_out: str | None,
    html_out: str | None,
    quiet: bool,
    executor: str | None,
    executor_workers: int | None,
    scheduler: str | None,
) -> None:
    """Screen the batch at PATH; exit 1 when a finding reaches --fail-on.

    With --executor (or the workspace's `executor` setting) the checks are split across workers, each
    reading PATH itself in its own sandbox; the report is the same."""
    from dataclasses import replace

    from dataward.screen.api import check_path
    from dataward.screen.intel import load_feed, load_public_key
    from dataward.screen.interface import Severity
    from dataward.screen.policy import ScreenPolicy

    threshold = Severity.parse(fail_on)
    policy = ScreenPolicy.load(policy_path) if policy_path else ScreenPolicy()
    if pii:
        policy = replace(policy, pii=pii)
    keys = [load_public_key(k) for k in intel_keys]
    feeds = [load_feed(p, keys=keys, allow_unsigned=allow_unsigned_intel) for p in intel_paths]
    from dataward.cli._util import executor_setting
    from dataward.records.sandbox import run_sandboxed
    from dataward.scale.runs import check_on, make_executor

    options: dict[str, Any] = {
        "format": fmt,
        "baseline": baseline_path,
        "intel": feeds,
        "label": label,
        "text": _cols(text),
        "group": _cols(group),
        "image": _cols(image),
        "licence_column": licence_column,
        "source_licence": source_licence,
        "policy": policy,
        "checks": list(_cols(checks)) or None,
    }
    obj = ctx.find_root().obj or {}
    runner = make_executor(
        executor_setting(executor, obj.get("workspace")), workers=executor_workers, scheduler=scheduler
    )
    if runner is None:
        report = run_sandboxed(check_path, path, where=path, progress=_tty_progress(), **options)
    else:
        with runner:
            report = check_on(runner, path, **options)
    if json_out is not None:
        _write(json_out, report.to_json(), "JSON report")
    if as_json:
        _write("-", report.to_json(), "JSON report")
    if html_out is not None:
        _write(html_out, report.to_html(), "HTML report")
    if not quiet and not as_json:
        click.echo(report.summary())
    if report.failed(threshold):
        if not quiet and not as_json:
            click.echo(f"FAIL: findings at or above {threshold.value}", err=True)
        sys.exit(1)


@cli.group()
def intel() -> None:
    """Threat-intelligence feeds: keys, signing, verification, STIX import, trigger export."""


@intel.command("keygen")
@click.argument("private_key", type=click.Path())
@click.argument("public_key", type=click.Path())
def intel_keygen(private_key: str, public_key: str) -> None:
    """Create an Ed25519 feed key pair (PEM; the private key is written 0600)."""
    from dataward.screen.intel import write_keypair

    kid = write_keypair(private_key, public_key)
    click.echo(f"feed key {kid}")


@intel.command("verify")
@click.argument("feed", type=click.Path())
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(), help="Feed public key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def intel_verify(feed: str, keys: tuple[str, ...], as_json: bool) -> None:
    """Verify a signed feed and list what it holds."""
    from dataward.screen.intel import feeds_summary, load_feed, load_public_key

    f = load_feed(feed, keys=[load_public_key(k) for k in keys])
    info = feeds_summary([f])[0]
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        kinds: dict[str, int] = {}
        for ind in f.indicators:
            kinds[ind.type] = kinds.get(ind.type, 0) + 1
        click.echo(
            f"feed {f.id} v{f.version}: signature OK ({', '.join(k[:16] for k in f.signed_by)}); "
            f"{len(f.indicators)} indicators: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
        )


def _sign_and_write(feed: Any, key: str, out: str) -> None:
    from dataward.screen.intel import load_private_key, sign_feed

    _write(out, sign_feed(feed, load_private_key(key)).decode("utf-8"), "feed")
    click.echo(f"feed {feed.id} v{feed.version}: {len(feed.indicators)} indicators signed -> {out}")


@intel.command("sign")
@click.argument("feed", type=click.Path())
@click.option("--key", required=True, type=click.Path(), help="Feed private key.")
@click.option("--out", required=True, help="Write the signed feed (DSSE envelope) here.")
def intel_sign(feed: str, key: str, out: str) -> None:
    """Validate a plain feed (YAML/JSON) and sign it."""
    from dataward.screen.intel import load_feed

    _sign_and_write(load_feed(feed, allow_unsigned=True), key, out)


@intel.command("import-stix")
@click.argument("bundle", type=click.Path())
@click.option("--key", required=True, type=click.Path(), help="Feed private key.")
@click.option("--out", required=True, help="Write the signed feed here.")
def intel_import_stix(bundle: str, key: str, out: str) -> None:
    """Turn a STIX 2.1 bundle's SHA-256, URL and domain indicators into a signed feed."""
    from dataward.screen.intel import IntelError, stix_to_feed

    try:
        data = json.loads(Path(bundle).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntelError(f"cannot read STIX bundle {bundle}: {exc}") from None
    feed, skipped = stix_to_feed(data, where=bundle)
    for s in skipped[:20]:
        click.echo(f"skipped {s}", err=True)
    _sign_and_write(feed, key, out)


@intel.command("export-triggers")
@click.argument("detect_json", type=click.Path())
@click.option("--out", required=True, help="Write the signed feed here.")
@click.option("--key", required=True, type=click.Path(), help="Feed private key.")
@click.option("--feed-id", default="dataward-triggers", show_default=True)
@click.option("--version", "feed_version", type=click.IntRange(0), default=1, show_default=True)
def intel_export_triggers(detect_json: str, out: str, key: str, feed_id: str, feed_version: int) -> None:
    """Export the triggers a detection report names as a signed feed."""
    from dataward.screen.intel import IntelError, triggers_from_detect

    try:
        data = json.loads(Path(detect_json).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntelError(f"cannot read detection report {detect_json}: {exc}") from None
    feed = triggers_from_detect(data, feed_id=feed_id, version=feed_version)
    if not feed.indicators:
        raise IntelError(
            f"{detect_json}: no trigger findings to export",
            advice="Run `dataward detect` with a label column on text data first.",
        )
    _sign_and_write(feed, key, out)


@cli.command("scan-model")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result.")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="MODULE.NAME",
    help="Also trust this exact global for this scan (repeatable; named in the report).",
)
@click.option(
    "--register",
    "register_source",
    default=None,
    metavar="SOURCE",
    help="If it passes, acquire it as a quarantined batch of this checkpoint source (for lineage).",
)
@click.pass_context
def scan_model_cmd(
    ctx: click.Context, path: str, as_json: bool, allow: tuple[str, ...], register_source: str | None
) -> None:
    """Scan a checkpoint (pickle, joblib, PyTorch, NumPy, safetensors, ONNX, Keras) without loading it.

    Exit 0 on PASS, 1 on FAIL, 2 on bad input. Runs without a workspace; inside one, the policy's
    ``[modelscan] allow`` list is trusted too.
    """
    from dataward.modelscan import AllowList, iter_results, parse_allow, scan_model

    if not Path(path).exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        extra = set(parse_allow(allow, "--allow"))
    except ValueError as exc:
        raise InputError(str(exc), advice="Name one exact global, e.g. --allow mypkg.layers.Custom.") from None
    sources = ["--allow"] if allow else []
    policy_allow = _policy_modelscan_allow(ctx)
    if policy_allow:
        extra |= parse_allow(policy_allow, "policy")
        sources.append("policy [modelscan] allow")
    allow_list = AllowList(frozenset(extra), " and ".join(sources))
    if register_source is not None:
        from dataward.cli._util import acting, open_workspace
        from dataward.workflow.model_checkpoints import register_checkpoint

        ws = open_workspace(ctx)
        _, batch = register_checkpoint(ws, acting(ctx, ws), register_source, path, allow=allow_list)
        click.echo(f"PASS: {path}; acquired as batch {batch.id} of {register_source} (quarantined)")
        return
    from dataward.cli._util import byte_progress

    target = Path(path)
    total = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) if target.is_dir() else 0
    with byte_progress(total, "scanning") as advance:  # stderr, TTY only
        result = scan_model(path, allow=allow_list, progress=advance if target.is_dir() else None)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        for r in iter_results(result):
            if r.files:
                continue
            click.echo(f"{r.verdict.upper():4} {r.path} [{r.format}]")
            for f in r.findings:
                click.echo(f"     [{f.severity.value}] {f.summary}")
            if r.allowed_extra:
                click.echo(f"     trusted only by {r.allow_source}: {', '.join(r.allowed_extra)}")
        click.echo(f"{'PASS' if result.passed else 'FAIL'}: {path}")
    if not result.passed:
        sys.exit(1)


def _policy_modelscan_allow(ctx: click.Context) -> tuple[str, ...]:
    """The workspace policy's ``[modelscan] allow``, when the command runs inside a workspace (else none)."""
    from dataward.workspace import CONFIG_NAME

    root = Path(ctx.find_root().obj.get("workspace") or ".")
    if not (root / CONFIG_NAME).is_file():
        return ()
    from dataward.cli._util import open_workspace
    from dataward.workflow.approval_policy import load_policy

    return load_policy(open_workspace(ctx)).modelscan_allow


@intel.command("add")
@click.argument("feed", type=click.Path())
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(), help="Feed public key (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def intel_add(ctx: click.Context, feed: str, keys: tuple[str, ...], as_json: bool) -> None:
    """Verify a signed FEED and load it into the workspace (logged); every screen then matches it."""
    from dataward.cli._util import acting, open_workspace
    from dataward.screen.intel import load_public_key
    from dataward.workflow.threat_feeds import add_feed

    ws = open_workspace(ctx)
    loaded = add_feed(ws, acting(ctx, ws), feed, [load_public_key(k) for k in keys])
    if as_json:
        click.echo(json.dumps(loaded.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(
            f"Loaded feed {loaded.feed_id} v{loaded.version} from {loaded.issuer}: {loaded.indicators} indicator(s), "
            f"verified by key {loaded.keyid[:16]}"
        )


@intel.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def intel_list(ctx: click.Context, as_json: bool) -> None:
    """The threat-intelligence feeds loaded into the workspace (latest version of each)."""
    from dataward.cli._util import open_workspace
    from dataward.workflow.threat_feeds import list_feeds

    feeds = list_feeds(open_workspace(ctx))
    if as_json:
        click.echo(json.dumps([f.to_json() for f in feeds], indent=2, sort_keys=True))
        return
    for f in feeds:
        click.echo(
            f"{f.feed_id} v{f.version}  {f.indicators} indicator(s)  {f.issuer}  "
            f"added {f.added_at[:19]} by {f.added_by}"
        )
    if not feeds:
        click.echo("no feeds loaded")
