"""``dataward detect``, ``dataward simulate`` and ``dataward bench``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dataward.cli._app import cli
from dataward.cli._progress import terminal_progress
from dataward.cli._util import err_console, executor_options, json_option, json_out_option
from dataward.detect.data_io import FORMATS
from dataward.errors import InputError


def _data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (default: from name)."
        ),
        click.option("--label", default=None, help="Class label column (default: label/class/target/y)."),
        click.option("--text", default=None, help="Text column (text classification)."),
        click.option("--prompt", default=None, help="Prompt column (instruction data; with --response)."),
        click.option("--response", default=None, help="Response column (instruction data; with --prompt)."),
        click.option("--messages", default=None, help="Chat `messages` list column (instruction data)."),
        click.option("--image", default=None, help="Image column: bytes, {bytes,path} or paths."),
        click.option("--features", default=None, help="Comma-separated feature columns (tabular)."),
        click.option(
            "--embeddings",
            type=click.Path(dir_okay=False),
            default=None,
            help="A .npy file with one embedding/activation row per record.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed (results are deterministic)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _roles(kw: dict[str, Any]) -> dict[str, Any]:
    feats = kw.get("features")
    return {
        "format": kw.get("fmt"),
        "label": kw.get("label"),
        "text": kw.get("text"),
        "prompt": kw.get("prompt"),
        "response": kw.get("response"),
        "messages": kw.get("messages"),
        "image": kw.get("image"),
        "features": [c.strip() for c in feats.split(",") if c.strip()] if feats else None,
        "embeddings": kw.get("embeddings"),
    }


def _parse_params(items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        det, dot, param = key.partition(".")
        if not sep or not dot or not det or not param:
            raise InputError(f"bad --param {item!r}", advice="Write --param DETECTOR.NAME=VALUE, e.g. labels.folds=5.")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(det, {})[param] = value
    return out


def _write_json(payload: Any, out: str) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    if out == "-":
        click.echo(text, nl=False)
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}", advice="Choose a writable --json-out path.") from None


@cli.command("detect")
@click.argument("path", type=click.Path())
@_data_options
@click.option("--detectors", default=None, help="Comma-separated detector names (default: all that apply).")
@click.option("--exclude", default=None, help="Comma-separated detector names to leave out.")
@click.option("--param", "params", multiple=True, help="Detector parameter DETECTOR.NAME=VALUE (repeatable).")
@json_option
@json_out_option
@click.option("--quiet", is_flag=True, help="No human summary.")
@executor_options
@click.pass_context
def detect_cmd(
    ctx: click.Context,
    /,
    path: str,
    detectors: str | None,
    exclude: str | None,
    params: tuple[str, ...],
    as_json: bool,
    json_out: str | None,
    quiet: bool,
    executor: str | None,
    executor_workers: int | None,
    scheduler: str | None,
    **kw: Any,
) -> None:
    """Find mislabelled, backdoored and manipulated records in PATH (a table or an image folder).

    With --executor (or the workspace's `executor` setting) the detectors are split across workers, each
    reading PATH itself in its own sandbox; the report is the same."""
    from dataward.cli._util import executor_setting
    from dataward.detect.api import detect
    from dataward.records.sandbox import run_sandboxed
    from dataward.scale.runs import detect_on, make_executor

    options: dict[str, Any] = {
        "seed": kw["seed"],
        "detectors": [d.strip() for d in detectors.split(",") if d.strip()] if detectors else None,
        "exclude": [d.strip() for d in exclude.split(",") if d.strip()] if exclude else (),
        "params": _parse_params(params),
        **_roles(kw),
    }
    obj = ctx.find_root().obj or {}
    runner = make_executor(
        executor_setting(executor, obj.get("workspace")), workers=executor_workers, scheduler=scheduler
    )
    if runner is None:
        report = run_sandboxed(detect, path, where=path, progress=terminal_progress(err_console), **options)
    else:
        with runner:
            report = detect_on(runner, path, **options)
    if json_out is not None:
        _write_json(report.to_json(), json_out)
    if as_json:
        _write_json(report.to_json(), "-")
    elif not quiet:
        click.echo(report.summary())


@cli.command("simulate")
@click.argument("path", type=click.Path())
@click.option("--attack", required=True, help="Attack name (see `dataward simulate --list`).")
@click.option("--rate", type=float, default=None, help="Fraction of records to poison (attack default if omitted).")
@click.option("--target", default=None, help="Target label of the attack.")
@click.option("--param", "params", multiple=True, help="Attack parameter NAME=VALUE (JSON values; repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@_data_options
def simulate_cmd(
    path: str, attack: str, rate: float | None, target: str | None, params: tuple[str, ...], out: str, **kw: Any
) -> None:
    """Write a poisoned copy of PATH and the ground truth (truth.json) into OUT."""
    from dataward.simulate.interface import Roles
    from dataward.simulate.io import simulate_file

    roles_kw = _roles(kw)
    attack_params = _parse_params(tuple(f"attack.{p}" for p in params)).get("attack", {})
    roles = Roles(
        label=roles_kw["label"],
        text=roles_kw["text"],
        prompt=roles_kw["prompt"],
        response=roles_kw["response"],
        messages=roles_kw["messages"],
        image=roles_kw["image"],
        features=tuple(roles_kw["features"]) if roles_kw["features"] else None,
    )
    data_path, truth = simulate_file(
        Path(path),
        attack,
        Path(out),
        fmt=roles_kw["format"],
        roles=roles,
        rate=rate,
        target=target,
        seed=kw["seed"],
        params=attack_params,
    )
    click.echo(
        f"{truth.attack}: changed {len(truth.changed)} of {truth.n_records} records -> {data_path} "
        f"(ground truth: {Path(out) / 'truth.json'})"
    )


@cli.command("attacks")
def attacks_cmd() -> None:
    """List the simulator's attacks."""
    from dataward.simulate.interface import attack_names, get_attack

    for name in attack_names():
        cls = get_attack(name)
        mods = ",".join(sorted(str(m) for m in cls.modalities))
        click.echo(f"{name:24s} [{mods}] {cls.description}")


@cli.command("bench")
@click.argument("path", type=click.Path())
@click.option("--truth", "truth_path", required=True, type=click.Path(dir_okay=False), help="truth.json from simulate.")
@_data_options
@click.option("--detectors", default=None, help="Comma-separated detector names (default: all that apply).")
@json_option
@json_out_option
def bench_cmd(
    path: str, truth_path: str, detectors: str | None, as_json: bool, json_out: str | None, **kw: Any
) -> None:
    """Score the detectors on PATH against the ground truth of `dataward simulate`."""
    from dataward.detect.api import detect
    from dataward.simulate.bench import bench_report
    from dataward.simulate.interface import GroundTruth

    try:
        raw = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {truth_path}: {exc}", advice="Pass the truth.json simulate wrote.") from None
    truth = GroundTruth.from_json(raw)
    report = detect(
        path,
        seed=kw["seed"],
        detectors=[d.strip() for d in detectors.split(",") if d.strip()] if detectors else None,
        progress=terminal_progress(err_console),
        **_roles(kw),
    )
    scores = bench_report(report, truth)
    payload = {"attack": truth.attack, "scores": [s.to_json() for s in scores]}
    if json_out is not None:
        _write_json(payload, json_out)
    if as_json:
        _write_json(payload, "-")
    else:
        click.echo(f"{truth.attack}: {truth.n_records} records, {len(truth.changed)} poisoned")
        click.echo(f"{'detector':24s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'AUROC':>6s} {'FPR':>6s} {'sec':>7s}")
        for s in scores:
            auc = f"{s.auroc:6.3f}" if s.auroc is not None else "   n/a"
            click.echo(
                f"{s.name:24s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {auc} {s.fpr:6.3f} {s.seconds:7.2f}"
            )
