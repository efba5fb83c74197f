"""Commands: screen, audit, policy, approve, reject, sign-statement (the gate from quarantine to approval)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from dataward.batches import get_batch
from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, emit_json, err_console, json_option, open_workspace, print_table
from dataward.errors import InputError
from dataward.workspace import Workspace

_SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _parse_options(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``CHECK.KEY=VALUE`` (repeatable) -> {check: {key: value}}; VALUE may be JSON (lists, numbers)."""
    out: dict[str, dict[str, Any]] = {}
    for v in values:
        key, sep, raw = v.partition("=")
        check, dot, name = key.partition(".")
        if not sep or not dot or not check or not name:
            raise InputError(f"option {v!r} is not CHECK.KEY=VALUE (e.g. detection.label=y)")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(check, {})[name] = value
    return out


# --- screen ----------------------------------------------------------------------------------------------------


@cli.command("screen")
@click.argument("batch_id", metavar="BATCH")
@click.option("--check", "checks", multiple=True, help="Run only these checks (integrity always runs).")
@click.option("--label", default=None, help="Label column (detection and screening).")
@click.option("--text", default=None, help="Text column (detection and screening).")
@click.option("--baseline", default=None, type=click.Path(dir_okay=False), help="Screening baseline file.")
@click.option("--option", "options", multiple=True, help="CHECK.KEY=VALUE passed to one engine (repeatable).")
@click.option("--show", is_flag=True, help="Show the stored report instead of screening.")
@json_option
@click.pass_context
def screen_cmd(
    ctx: click.Context,
    batch_id: str,
    checks: tuple[str, ...],
    label: str | None,
    text: str | None,
    baseline: str | None,
    options: tuple[str, ...],
    show: bool,
    as_json: bool,
) -> None:
    """Screen a quarantined BATCH with the registered checks; sign the report; the batch becomes screened."""
    from dataward.workflow.screening import latest_report, screen_batch

    ws = open_workspace(ctx)
    if show:
        report = latest_report(ws, batch_id)
    else:
        actor = acting(ctx, ws)
        opts = _parse_options(options)
        for check in ("detection", "screening"):
            for k, v in (("label", label), ("text", text)):
                if v is not None:
                    opts.setdefault(check, {}).setdefault(k, v)
        if baseline:
            opts.setdefault("screening", {})["baseline"] = baseline
        from dataward.cli._progress import terminal_progress

        report = screen_batch(
            ws,
            actor,
            batch_id,
            checks=list(checks) or None,
            options=opts,
            engine_progress=terminal_progress(err_console),
        )

    def human() -> None:
        console.print(
            f"Batch [bold]{report.batch}[/] screened by {report.screened_by}: {report.records:,} records, "
            f"{report.flagged_count:,} flagged ({report.flagged_fraction:.2%})"
        )
        t = Table("check", "status", "findings", "flagged", "note")
        for c in report.checks:
            style = {"passed": "green", "failed": "red", "error": "bold red"}.get(c["status"], "yellow")
            t.add_row(
                c["name"],
                f"[{style}]{c['status']}[/]",
                str(c["findings"]),
                str(c["flagged"]),
                escape(c.get("reason") or ""),
            )
        print_table(t)
        sev = ", ".join(f"{k} {v}" for k, v in report.findings_by_severity.items() if v) or "none"
        console.print(f"findings by severity: {sev}")
        for f in report.findings[:15]:
            console.print(
                f"  [{_SEV_STYLE.get(f.severity, '')}]{f.severity:>8}[/] {f.check}/{f.kind}: {escape(f.summary)}"
            )
        if report.pii_counts:
            console.print("PII: " + ", ".join(f"{k} in {v} record(s)" for k, v in report.pii_counts.items()))
        lic = report.licence
        console.print(
            f"licence: {lic.get('expression') or 'none'} ({lic.get('status')}); drift findings: {len(report.drift)}"
        )
        console.print(f"signed report {report.envelope_digest}")

    emit(as_json, report.to_json(), human)


# --- audit -----------------------------------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """Label audits: sample, review, import decisions, report, complete."""


@audit.command("sample")
@click.argument("batch_id", metavar="BATCH")
@click.option("--size", type=click.IntRange(1), default=None, help="Random records to sample (overrides the tier).")
@click.option("--margin", type=float, default=None, help="Margin of error to size the sample for (e.g. 0.03).")
@click.option("--confidence", type=float, default=None, help="Confidence level (e.g. 0.95).")
@json_option
@click.pass_context
def audit_sample(
    ctx: click.Context, batch_id: str, size: int | None, margin: float | None, confidence: float | None, as_json: bool
) -> None:
    """Draw the spot-check sample of a screened BATCH (or enlarge it): random part + flagged records."""
    from dataward.workflow.audit import draw_sample

    if size is not None and margin is not None:
        raise InputError("give --size or --margin, not both")
    ws = open_workspace(ctx)
    s = draw_sample(ws, acting(ctx, ws), batch_id, size=size, margin=margin, confidence=confidence)
    emit(
        as_json,
        s.to_json(),
        lambda: console.print(
            f"Audit sample of [bold]{batch_id}[/] ({s.tier} risk tier): {s.random_size} random record(s) of "
            f"{s.population:,}, {s.flagged_size} flagged of {s.flagged_population:,}; {s.added} added (seed {s.seed})"
        ),
    )


@audit.command("show")
@click.argument("batch_id", metavar="BATCH")
@click.option("--records", is_flag=True, help="Include each record's content.")
@json_option
@click.pass_context
def audit_show(ctx: click.Context, batch_id: str, records: bool, as_json: bool) -> None:
    """List the sampled records and their decisions (--records: their content, for the roles that handle
    the batch in its state per the signed log; logged as data.read)."""
    from dataward.workflow.audit import sample_items
    from dataward.workflow.reads import log_read, require_read
    from dataward.workflow.review import read_records

    ws = open_workspace(ctx)
    items = sample_items(ws, batch_id)
    views = {}
    if records:
        reader = acting(ctx, ws).name
        require_read(ws, reader, batch_id)
        views = read_records(ws, get_batch(ws, batch_id), items)
        log_read(ws, reader, batch_id, list(views), "cli")
    rows = []
    for i in items:
        row = i.to_json()
        if i.record in views:
            row["content"] = views[i.record].to_json()
        rows.append(row)

    def human() -> None:
        t = Table("record", "stratum", "decision", "reviewer", "digest")
        for r in rows:
            d = r["decision"] or "-"
            if r["new_label"]:
                d += f":{r['new_label']}"
            t.add_row(str(r["record"]), r["stratum"], d, r["reviewer"] or "-", r["digest"][:16])
        print_table(t)

    emit(as_json, rows, human)


@audit.command("decide")
@click.argument("batch_id", metavar="BATCH")
@click.argument("record", type=int)
@click.argument("decision")
@click.option("--note", default=None)
@json_option
@click.pass_context
def audit_decide(
    ctx: click.Context, batch_id: str, record: int, decision: str, note: str | None, as_json: bool
) -> None:
    """Record one DECISION (ok, wrong-label:NEW, malicious, unsure) on sampled RECORD."""
    from dataward.workflow.audit import Decision, parse_decision, record_decisions

    ws = open_workspace(ctx)
    d, label = parse_decision(decision)
    record_decisions(ws, acting(ctx, ws), batch_id, [Decision(record, d, label, note)])
    emit(
        as_json,
        {"batch": batch_id, "record": record, "decision": d, "new_label": label},
        lambda: console.print(f"Record {record}: {decision}"),
    )


@audit.command("import")
@click.argument("batch_id", metavar="BATCH")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option
@click.pass_context
def audit_import(ctx: click.Context, batch_id: str, file: str, as_json: bool) -> None:
    """Import reviewers' decisions from a CSV or JSONL FILE (columns record, decision[, new_label, note, digest])."""
    from dataward.workflow.audit import read_decisions_file, record_decisions, sample_items

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    decisions = read_decisions_file(Path(file), sample_items(ws, batch_id))
    n = record_decisions(ws, actor, batch_id, decisions, origin=os.path.basename(file))
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d.decision] = counts.get(d.decision, 0) + 1
    emit(
        as_json,
        {"batch": batch_id, "imported": n, "decisions": counts},
        lambda: console.print(
            f"Imported {n} decision(s) for {batch_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        ),
    )


def _print_estimate(e: Any) -> None:
    r, f = e.random, e.flagged
    console.print(f"Audit of [bold]{e.batch}[/] ({e.status}): population {e.population:,}, {e.undecided} undecided")
    console.print(
        f"  random sample: {r.decided}/{r.size} decided, {r.errors} error(s) "
        f"(wrong label {r.wrong_label}, malicious {r.malicious}, unsure {r.unsure})"
    )
    console.print(
        f"  label-error rate [bold]{e.rate:.2%}[/], {e.confidence:.0%} {e.method} interval "
        f"[{e.lower:.2%}, {e.upper:.2%}]"
    )
    if f.size:
        fr = "-" if e.flagged_rate is None else f"{e.flagged_rate:.2%}"
        console.print(f"  flagged records (kept out of the estimate): {f.decided}/{f.size} decided, error rate {fr}")
    if e.needed_for_margin:
        console.print(f"  a margin of ±{e.margin_target:.2%} needs about {e.needed_for_margin:,} random records")
    if e.pass_limit is not None:
        if e.needed_to_pass:
            console.print(
                f"  to bring the upper bound under {e.pass_limit:.2%}: about {e.needed_to_pass:,} random records"
            )
        elif e.upper > e.pass_limit:
            console.print(f"  at this rate the upper bound cannot fall under {e.pass_limit:.2%}")


@audit.command("report")
@click.argument("batch_id", metavar="BATCH")
@click.option("--method", type=click.Choice(["clopper-pearson", "wilson"]), default=None)
@click.option("--margin", type=float, default=None, help="Margin to size a larger sample for.")
@json_option
@click.pass_context
def audit_report(ctx: click.Context, batch_id: str, method: str | None, margin: float | None, as_json: bool) -> None:
    """The estimated label-error rate with its interval, and what a tighter margin needs."""
    from dataward.workflow.audit import estimate
    from dataward.workflow.gate import tier_for

    ws = open_workspace(ctx)
    tp = tier_for(ws, get_batch(ws, batch_id))[1]
    limit = tp.max_audit_error_upper if tp.audit_required else None
    e = estimate(ws, batch_id, method=method, margin=margin, pass_limit=limit)
    emit(as_json, e.to_json(), lambda: _print_estimate(e))


@audit.command("complete")
@click.argument("batch_id", metavar="BATCH")
@json_option
@click.pass_context
def audit_complete(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """Sign the audit attestation; the batch becomes audited."""
    from dataward.workflow.audit import complete_audit

    ws = open_workspace(ctx)
    e = complete_audit(ws, acting(ctx, ws), batch_id)

    def human() -> None:
        _print_estimate(e)
        console.print(f"Batch [bold]{batch_id}[/] is audited; attestation {e.attestation}")

    emit(as_json, e.to_json(), human)


_KEYS = (
    "[bold]o[/] ok  [bold]w[/] wrong label  [bold]m[/] malicious  [bold]u[/] unsure  [bold]n[/] next  [bold]q[/] quit"
)


def _show_record(view: Any, item: Any, k: int, total: int, console: Any = console) -> None:
    check = {True: "[green]digest verified[/]", False: "[bold red]DIGEST MISMATCH[/]", None: "[dim]not re-hashed[/]"}
    console.rule(f"{k}/{total}  record {item.record} ({item.stratum})  {escape(view.file)} #{view.file_record}")
    console.print(check[view.verified])
    if view.kind == "file":
        console.print(f"file: {escape(str(view.path or view.file))}")
    elif isinstance(view.value, dict):
        t = Table("field", "value", show_header=False)
        for key, val in view.value.items():
            t.add_row(escape(str(key)), escape(val if isinstance(val, str) else json.dumps(val, ensure_ascii=False)))
        console.print(t)  # the interactive review: its own console (stderr under --json)
    else:
        console.print(escape(str(view.value)))
    if item.decision:
        console.print(f"[dim]current decision: {item.decision}{':' + item.new_label if item.new_label else ''}[/]")


def _getchar() -> str:
    try:
        return click.getchar() or "q"  # end of input: quit
    except (KeyboardInterrupt, EOFError):
        return "q"
    except Exception as exc:  # no terminal to read keys from (termios.error, OSError)
        raise InputError(
            f"the interactive review needs a terminal ({type(exc).__name__})",
            advice="Import decisions instead: `dataward audit import BATCH FILE`.",
        ) from None


@audit.command("review")
@click.argument("batch_id", metavar="BATCH")
@click.option("--all", "all_", is_flag=True, help="Also show records that already have a decision.")
@click.option("--json", "as_json", is_flag=True, help="At the end, print the decisions made as JSON on stdout.")
@click.pass_context
def audit_review(ctx: click.Context, batch_id: str, all_: bool, as_json: bool) -> None:
    """Review sampled records one by one in the terminal (keys o/w/m/u/n/q)."""
    from dataward.workflow.audit import sample_items
    from dataward.workflow.reads import log_read, require_read

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    require_read(ws, actor.name, batch_id)  # the batch's state in the signed log decides who reads it
    batch = get_batch(ws, batch_id)
    items = [i for i in sample_items(ws, batch_id) if all_ or i.decision is None]
    if not items:
        emit(
            as_json,
            {"batch": batch_id, "decisions": []},
            lambda: console.print(f"Nothing to review in {batch_id}: every sampled record has a decision."),
        )
        return
    made: list[dict[str, Any]] = []
    shown: list[int] = []
    out = err_console if as_json else console  # keep stdout for the JSON
    try:
        _review_loop(ws, actor, batch, items, out, made, shown, as_json)
    finally:
        log_read(ws, actor.name, batch_id, shown, "cli")
    emit(as_json, {"batch": batch_id, "decisions": made}, lambda: console.print(f"{len(made)} decision(s) recorded."))


def _review_loop(
    ws: Any,
    actor: Any,
    batch: Any,
    items: list[Any],
    out: Any,
    made: list[dict[str, Any]],
    shown: list[int],
    as_json: bool,
) -> None:
    from dataward.workflow.audit import Decision, record_decisions
    from dataward.workflow.review import read_record, require_verified

    batch_id = batch.id
    for k, item in enumerate(items, 1):
        view = read_record(ws, batch, item)
        shown.append(item.record)
        _show_record(view, item, k, len(items), out)
        require_verified(view)
        out.print(_KEYS)
        while True:
            key = _getchar().lower()
            if key in ("o", "w", "m", "u", "n", "q"):
                break
        if key == "q":
            break
        if key == "n":
            continue
        decision = {"o": "ok", "w": "wrong-label", "m": "malicious", "u": "unsure"}[key]
        label = None
        if decision == "wrong-label":
            label = str(click.prompt("correct label", err=as_json)).strip()
            if not label:
                raise InputError("wrong-label needs the correct label")
        record_decisions(ws, actor, batch_id, [Decision(item.record, decision, label)])
        out.print(f"[green]recorded[/] {decision}{':' + label if label else ''}")
        made.append({"record": item.record, "decision": decision, "new_label": label})


# --- policy ----------------------------------------------------------------------------------------------------


@cli.group()
def policy() -> None:
    """The workspace policy: init, set, show, validate, check."""


@policy.command("init")
@click.option("--force", is_flag=True, help="Replace an existing policy.toml.")
@json_option
@click.pass_context
def policy_init(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Write the default policy to the workspace's policy.toml (admins; logged)."""
    from dataward.errors import ConflictError
    from dataward.workflow.approval_policy import default_policy_text, policy_path, set_policy

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    if policy_path(ws).exists() and not force:
        raise ConflictError(f"{policy_path(ws)} exists", advice="Pass --force to replace it with the default.")
    p = set_policy(ws, actor, default_policy_text(), where="default policy")
    emit(
        as_json,
        {"path": str(policy_path(ws)), "sha256": p.digest},
        lambda: console.print(f"Wrote the default policy to {policy_path(ws)} (sha256 {p.digest[:16]})."),
    )


@policy.command("set")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option
@click.pass_context
def policy_set(ctx: click.Context, file: str, as_json: bool) -> None:
    """Validate FILE and make it the workspace policy (admins; logged)."""
    from dataward.workflow.approval_policy import policy_path, set_policy

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    text = _read_text(file)
    p = set_policy(ws, actor, text, where=file)
    emit(
        as_json,
        {"path": str(policy_path(ws)), "sha256": p.digest},
        lambda: console.print(f"Policy set from {file} (sha256 {p.digest[:16]})."),
    )


def _read_text(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot read ({exc})") from None


@policy.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option
def policy_validate(file: str, as_json: bool) -> None:
    """Check a policy FILE without adopting it."""
    from dataward.workflow.approval_policy import parse_policy

    p = parse_policy(_read_text(file), file)
    emit(as_json, p.to_json(), lambda: console.print(f"[green]OK[/] {file} (sha256 {p.digest[:16]})"))


@policy.command("show")
@json_option
@click.pass_context
def policy_show(ctx: click.Context, as_json: bool) -> None:
    """Show the policy in force, tier by tier."""
    from dataward.workflow.approval_policy import load_policy

    p = load_policy(open_workspace(ctx))

    def human() -> None:
        console.print(f"Policy {p.where} (sha256 {p.digest[:16]}); key rotation {p.rotation_max_age_days} days")
        console.print("risk tiers from score: " + ", ".join(f"{k} {v:g}" for k, v in p.risk_thresholds.items()))
        for name, tp in p.tiers.items():
            console.rule(name)
            for k, v in tp.to_json().items():
                console.print(f"  {k:>22} {v}")

    emit(as_json, p.to_json(), human)


@policy.command("check")
@click.argument("batch_id", metavar="BATCH")
@click.option("--reverify", is_flag=True, help="Also re-hash the quarantined data (as approval does).")
@json_option
@click.pass_context
def policy_check(ctx: click.Context, batch_id: str, reverify: bool, as_json: bool) -> None:
    """Explain, rule by rule, whether BATCH passes the policy of its source's risk tier."""
    from dataward.workflow.gate import evaluate

    ws = open_workspace(ctx)
    d = evaluate(ws, batch_id, reverify=reverify)

    def human() -> None:
        console.print(
            f"Batch [bold]{d.batch}[/] ({d.state}) from {d.source}: risk {d.risk.score:g} -> [bold]{d.tier}[/] tier"
        )
        for line in d.result.lines():
            style = "green" if " PASS " in f" {line.strip()[:4]} " else "red"
            console.print(f"[{style}]{escape(line)}[/]")
        have = ", ".join(a.principal for a in d.approvals) or "none"
        console.print(
            f"approvals: {len(d.approvals)} of {d.approvals_required} ({have}); roles {', '.join(d.approver_roles)}; "
            f"not by: {', '.join(d.separation_of_duties)}"
        )

    emit(as_json, d.to_json(), human)
    ctx.exit(0 if d.passed else 5)


# --- approve, reject, sign-statement ---------------------------------------------------------------------------


@cli.command("approve")
@click.argument("batch_id", metavar="BATCH")
@click.option("--statement", type=click.Path(dir_okay=False, exists=True), help="A signed approval (DSSE) to record.")
@click.option("--prepare", type=click.Path(dir_okay=False), help="Write the unsigned approval statement to this file.")
@json_option
@click.pass_context
def approve_cmd(ctx: click.Context, batch_id: str, statement: str | None, prepare: str | None, as_json: bool) -> None:
    """Approve an audited BATCH (refused while any policy rule fails); the k-th approval completes it."""
    from dataward.workflow.approval import approve, approve_with_statement, prepare_statement

    if statement and prepare:
        raise InputError("give --statement or --prepare, not both")
    ws = open_workspace(ctx)
    principal = ctx.find_root().obj.get("principal")
    if prepare:
        if not principal:
            raise InputError("--prepare needs the approver: pass --as NAME")
        data = prepare_statement(ws, batch_id, principal)
        _write_new(Path(prepare), data)
        emit(
            as_json,
            {"batch": batch_id, "approver": principal, "statement": prepare},
            lambda: console.print(
                f"Wrote the approval statement for {principal} to {prepare}; sign it with "
                f"`dataward sign-statement {prepare}`."
            ),
        )
        return
    actor = acting(ctx, ws)
    if statement:
        try:
            data = Path(statement).read_bytes()
        except OSError as exc:
            raise InputError(f"{statement}: cannot read ({exc.strerror})") from None
        result = approve_with_statement(ws, actor, batch_id, data)
    else:
        result = approve(ws, actor, batch_id)

    def human() -> None:
        console.print(
            f"Approval {result.approvals} of {result.required} by [bold]{result.approver}[/] recorded for {batch_id} "
            f"(attestation {result.attestation[:16]})."
        )
        console.print(f"Batch is [bold]{result.state}[/].")

    emit(as_json, result.to_json(), human)


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@cli.command("reject")
@click.argument("batch_id", metavar="BATCH")
@click.option("--reason", required=True, help="Why the batch is rejected (signed and logged).")
@json_option
@click.pass_context
def reject_cmd(ctx: click.Context, batch_id: str, reason: str, as_json: bool) -> None:
    """Reject BATCH: it never reaches a dataset."""
    from dataward.workflow.approval import reject

    ws = open_workspace(ctx)
    r = reject(ws, acting(ctx, ws), batch_id, reason)
    emit(as_json, r.to_json(), lambda: console.print(f"Batch [bold]{batch_id}[/] rejected (was {r.from_state})."))


@cli.command("sign-statement")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True), help="Private key PEM (offline).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None, help="Envelope file (default FILE.dsse).")
@json_option
@click.pass_context
def sign_statement_cmd(ctx: click.Context, file: str, key_file: str | None, out: str | None, as_json: bool) -> None:
    """Sign an approval statement with a private key (--key PEM, or the acting principal's key)."""
    from dataward.workflow.approval import sign_statement

    if key_file:
        key = _load_pem(Path(key_file))
    else:
        ws = open_workspace(ctx)
        key = acting(ctx, ws).key
    try:
        statement = Path(file).read_bytes()
    except OSError as exc:
        raise InputError(f"{file}: cannot read ({exc.strerror})") from None
    envelope = sign_statement(statement, key)
    dest = Path(out or f"{file}.dsse")
    _write_new(dest, envelope)
    from dataward.core.dsse import key_id

    kid = key_id(key.public_key())
    emit(
        as_json,
        {"envelope": str(dest), "keyid": kid},
        lambda: console.print(f"Signed {file} with key {kid[:16]} -> {dest}"),
    )


def _load_pem(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from dataward.errors import SignatureError
    from dataward.store.keys import PASSPHRASE_ENV

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    pw = os.environ.get(PASSPHRASE_ENV)
    try:
        key = load_pem_private_key(pem, password=pw.encode() if pw and b"ENCRYPTED" in pem else None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a usable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} does not hold an Ed25519 key")
    return key


# --- source risk (used by `dataward source list --by-risk`) ----------------------------------------------------


def print_risk(ws: Workspace, as_json: bool) -> None:
    from dataward.workflow.approval_policy import load_policy
    from dataward.workflow.risk import assess_all

    items = assess_all(ws, thresholds=load_policy(ws).risk_thresholds)

    def human() -> None:
        t = Table("source", "kind", "score", "tier", "why")
        for r in items:
            style = {"critical": "bold red", "high": "red", "medium": "yellow"}.get(r.tier, "green")
            t.add_row(r.source, r.kind, f"{r.score:g}", f"[{style}]{r.tier}[/]", escape(r.explain()))
        print_table(t)

    emit(as_json, [r.to_json() for r in items], human)


__all__ = ["emit_json", "print_risk"]
