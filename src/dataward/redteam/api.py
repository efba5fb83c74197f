"""``dataward redteam``: run the gate on a model of the workspace, sign and log the result, key it by model digest.

Triggers come from the built-in library, loaded threat-intel feeds, and the trigger findings of a detector
run over (a sample of) the training data of the model's lineage, when the model's digest is recorded.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from dataward.core import dsse
from dataward.errors import Error
from dataward.identity import Actor
from dataward.lifecycle import attest
from dataward.progress import Progress
from dataward.redteam import triggers as trig
from dataward.redteam.data import Columns, infer_columns, load_frame, matrix
from dataward.redteam.gate import RedteamReport, run_gate
from dataward.redteam.models import Model
from dataward.release.versions import check_may
from dataward.store import schema
from dataward.timeutil import now_iso
from dataward.workspace import Workspace

PREDICATE_REDTEAM = dsse.PREDICATE_PREFIX + "redteam-report/v1"
DETECT_SAMPLE = 20_000


@dataclass(frozen=True)
class ModelLineage:
    sha256: str
    run: str
    version: str  # DATASET@N the model was trained on
    previous: tuple[str, ...]  # digests of earlier models trained on the same dataset, newest first


def model_lineage(ws: Workspace, sha256: str | None) -> ModelLineage | None:
    if not sha256:
        return None
    ro, runs = schema.run_outputs, schema.runs
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(runs).join(ro, ro.c.run_id == runs.c.id).where(ro.c.sha256 == sha256).order_by(runs.c.finished_at)
        ).first()
        if row is None:
            return None
        q = (
            select(ro.c.sha256)
            .join(runs, ro.c.run_id == runs.c.id)
            .where(runs.c.dataset == row.dataset, runs.c.finished_at < row.finished_at, runs.c.status == "completed")
            .order_by(runs.c.finished_at.desc())
        )
        scalars: list[Any] = list(conn.execute(q).scalars())
        digests = [str(s) for s in scalars if s != sha256]
        prev = tuple(dict.fromkeys(digests))
    return ModelLineage(sha256, str(row.id), f"{row.dataset}@{row.number}", prev)


def previous_result(ws: Workspace, lineage: ModelLineage | None) -> dict[str, Any] | None:
    """The latest red-team result of the newest earlier model in the lineage that has one."""
    if lineage is None:
        return None
    t = schema.redteam_results
    with ws.engine.connect() as conn:
        for sha in lineage.previous:
            r = conn.execute(select(t).where(t.c.model_sha256 == sha).order_by(t.c.created_at.desc())).first()
            if r is not None:
                return {"sha256": sha, "accuracy": r.accuracy, "passed": bool(r.passed), "result": r.id}
    return None


def detector_triggers(ws: Workspace, actor: Actor, version: str, cols: Columns) -> tuple[list[trig.Trigger], str]:
    """Trigger findings of the text-trigger detector on the model's training data (text models only)."""
    if not cols.text:
        return [], "detector triggers: text models only"
    try:
        frame = load_frame(version, workspace=ws, principal=actor)
        if cols.text not in frame.columns or (cols.label and cols.label not in frame.columns):
            return [], f"detector triggers: {version} lacks the columns {cols.text!r}/{cols.label!r}"
        if len(frame) > DETECT_SAMPLE:
            frame = frame.sample(n=DETECT_SAMPLE, random_state=0)
        from dataward.detect.api import detect

        rep = detect(
            frame[[c for c in (cols.text, cols.label) if c]].reset_index(drop=True),
            text=cols.text,
            label=cols.label,
            detectors=["text_triggers"],
        )
    except Error as exc:
        return [], f"detector triggers skipped: {exc}"
    found = trig.from_findings(rep.findings)
    return found, f"detector triggers: {len(found)} from text_triggers on {version}"


#: what the report names as the clean set when the caller chose the training data itself
TRAINING_AS_CLEAN = "{data} (the training data itself: no independent clean set was given)"


def redteam(
    ws: Workspace | None,
    actor: Actor | None,
    model: Model,
    data: str,
    *,
    clean: str | None = None,
    clean_from_training: bool = False,
    label: str | None = None,
    text: str | None = None,
    features: Sequence[str] = (),
    feeds: Sequence[Any] = (),
    thresholds: dict[str, float] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    record: bool = True,
) -> tuple[RedteamReport, dict[str, Any]]:
    """Run the gate; returns the report and its record (result id, attestation digest, trigger sources).

    A clean independent set is required: without ``clean`` the gate refuses, unless ``clean_from_training``
    says to measure on the training data itself, which the report then states. Without a workspace
    (``ws=None``: a plain CI job) the data and clean set are files, the thresholds the default policy's,
    and nothing is recorded."""
    from dataward.errors import InputError

    if clean is None and not clean_from_training:
        raise InputError(
            f"no clean set to red-team {model.name} against",
            advice="Give a held-out set with --clean DATASET@VERSION|PATH, or --clean-from-training to measure "
            "on the training data (the report says so; a poisoned training set then hides its own triggers).",
        )
    if ws is None and record:
        raise InputError("a red-team result is recorded in a workspace", advice="Open one, or pass --no-record.")
    subject = f"model:{model.sha256 or model.name}"
    if ws is not None:
        if actor is None:
            raise InputError("a red-team run in a workspace needs a principal", advice="Pass --as NAME.")
        check_may(ws, actor, "redteam.run", subject)
    frame = load_frame(data, workspace=ws, principal=actor)
    clean_frame = load_frame(clean, workspace=ws, principal=actor) if clean else None
    cols = infer_columns(frame, label=label, text=text, features=tuple(features))
    if not len(frame):
        raise InputError(f"{data}: no records to red-team with")
    from dataward.workflow.approval_policy import default_policy_text, load_policy, parse_policy

    policy = load_policy(ws) if ws is not None else parse_policy(default_policy_text(), "the default policy")
    th = {**policy.redteam, **(thresholds or {})}
    candidates = trig.builtin(cols, None if cols.text else matrix(frame, cols))
    notes = [f"builtin: {len(candidates)}"]
    for f in feeds:
        got = trig.from_indicators(f.indicators, f.id)
        candidates += got
        notes.append(f"intel {f.id}: {len(got)}")
    # the model call happens first so an HTTP model's digest header is known before the lineage lookup
    model.predict(inputs_probe(frame, cols))
    lineage = model_lineage(ws, model.sha256) if ws is not None else None
    if lineage is not None and ws is not None and actor is not None:
        found, note = detector_triggers(ws, actor, lineage.version, cols)
        candidates += found
        notes.append(note)
    report = run_gate(
        model,
        frame,
        cols,
        trig.unique(candidates),
        clean=clean_frame,
        thresholds=th,
        previous=previous_result(ws, lineage) if ws is not None else None,
        data_ref=data,
        clean_ref=clean or TRAINING_AS_CLEAN.format(data=data),
        seed=seed,
        progress=progress,
    )
    info: dict[str, Any] = {
        "trigger_sources": notes,
        "lineage": None if lineage is None else {"run": lineage.run, "version": lineage.version},
        "clean_set": "given" if clean else "training data (--clean-from-training)",
        "recorded": bool(record),
    }
    if record:
        assert ws is not None and actor is not None
        info.update(record_result(ws, actor, report))
    return report, info


def inputs_probe(frame: Any, cols: Columns) -> list[Any]:
    from dataward.redteam.data import inputs_of

    return inputs_of(frame.head(2), cols)


def record_result(ws: Workspace, actor: Actor, report: RedteamReport) -> dict[str, Any]:
    """Sign the report as an attestation on the model, index it by model digest, log it."""
    body = report.to_json()
    sha = str(report.model.get("sha256") or "")
    subject_digest = sha or hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    rid = str(uuid.uuid4())
    with ws.change(actor, "redteam.run", f"model:{sha or report.model.get('name')}") as ch:
        digest = attest(ws, ch, [(str(report.model.get("name")), subject_digest)], PREDICATE_REDTEAM, body)
        ch.conn.execute(
            insert(schema.redteam_results).values(
                id=rid,
                model_sha256=sha,
                model=str(report.model.get("name")),
                data=report.data,
                passed=report.passed,
                accuracy=report.accuracy,
                failures=len(report.failures),
                principal=actor.name,
                created_at=now_iso(),
                report_digest=digest,
            )
        )
        ch.details.update(
            {
                "result": rid,
                "model_sha256": sha or None,
                "data": report.data,
                "passed": report.passed,
                "failures": [c.name for c in report.failures][:50],
                "accuracy": report.accuracy,
            }
        )
    return {"result": rid, "attestation": digest}


def results_for(ws: Workspace, sha256: str) -> list[dict[str, Any]]:
    t = schema.redteam_results
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.model_sha256 == sha256).order_by(t.c.created_at))
        return [dict(r._mapping) for r in rows]
