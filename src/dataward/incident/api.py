"""Incidents: a model misbehaved on some inputs; find the training records and batches responsible, map them
to sources and acquisitions, show the blast radius, propose (and, with an approver, apply) a remediation.

Everything is logged: ``incident.open`` names the implicated batches and sources in its details (which is
what the source risk score reads, see workflow/risk.py), ``incident.resolve`` names the rollback versions.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dataward.core import dsse
from dataward.errors import ConflictError, InputError, NotFoundError
from dataward.identity import Actor
from dataward.incident._trace import TraceResult, trace
from dataward.lifecycle import attest
from dataward.progress import Progress, Task, phase
from dataward.redteam.api import ModelLineage, model_lineage
from dataward.redteam.data import infer_columns, inputs_of, labels_of, load_frame, read_path
from dataward.redteam.models import Model
from dataward.release.versions import check_may
from dataward.store import incidents as incidents_store
from dataward.timeutil import now_iso
from dataward.workspace import Workspace

PREDICATE_INCIDENT = dsse.PREDICATE_PREFIX + "incident/v1"
OUTPUT_COLUMNS = ("output", "observed", "prediction")
EXPECTED_COLUMNS = ("expected", "expected_output")
MAX_IMPLICATED = 3


@dataclass(frozen=True)
class Incident:
    """An incident: its status, the model that misbehaved, who opened and resolved it, and its signed report."""

    id: str
    status: str
    model_sha256: str
    summary: str
    opened_by: str
    opened_at: str
    resolved_by: str | None
    resolved_at: str | None
    report: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON form `incident show --json` prints (the report included)."""
        return {
            "id": self.id,
            "status": self.status,
            "model_sha256": self.model_sha256,
            "summary": self.summary,
            "opened_by": self.opened_by,
            "opened_at": self.opened_at,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "report": self.report,
        }


def _resolve_model(ws: Workspace, model: Model | str) -> tuple[str, Model | None]:
    if isinstance(model, Model):
        if not model.sha256:
            raise InputError(f"model {model.name}: its artifact digest is unknown, so it cannot be traced")
        return model.sha256, model
    text = model.lower().removeprefix("sha256:")
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text, None
    from dataward.lineage.runs import hash_file

    p = Path(model)
    if p.is_file():
        return hash_file(p).sha256, None
    raise InputError(f"model {model!r}: give a model digest, a model file, or a loadable model")


def _acquisition(ws: Workspace, batch_id: str) -> dict[str, Any]:
    with ws.engine.connect() as conn:
        a = incidents_store.acquisition_facts(conn, batch_id)
    if a is None:
        return {"batch": batch_id, "missing": True}
    return {
        "batch": batch_id,
        "state": a.state,
        "records": a.records,
        "source": a.source,
        "source_kind": a.source_kind,
        "supplier": a.supplier,
        "supplier_key": a.supplier_key,
        "supplier_verification": a.log_details.get("supplier_verification"),
        "acquired_by": a.log_principal if a.log_seq is not None else a.created_by,
        "acquired_at": a.log_time if a.log_seq is not None else a.created_at,
        "log_seq": a.log_seq,
        "signing_key": a.log_keyid,
        "manifest_sha256": a.manifest_digest,
    }


def _implicated(result: TraceResult) -> list[str]:
    rows = [r for r in result.batches if float(r["score"]) > 0]
    if not rows:
        return []
    top = float(rows[0]["score"])
    return [str(r["batch"]) for r in rows[:MAX_IMPLICATED] if float(r["score"]) >= 0.5 * top]


def _remediation(ws: Workspace, batches: Sequence[str]) -> dict[str, Any]:
    from dataward.lineage.queries import blast_radius
    from dataward.release.versions import latest_number, load_version

    radius = [blast_radius(ws, b) for b in batches]
    datasets = sorted({v["version"].rsplit("@", 1)[0] for r in radius for v in r["versions"]})
    rollbacks = []
    with ws.engine.connect() as conn:
        for ds in datasets:
            n = latest_number(conn, ds)
            if n is None:
                continue
            latest = load_version(conn, ds, n)
            drop = [b for b in batches if b in latest.batches]
            if drop:
                rollbacks.append({"dataset": ds, "from": latest.spec, "without": drop})
    models = {m["sha256"]: m for r in radius for m in r["models"]}
    return {
        "rollbacks": rollbacks,
        "retrain": list(models.values()),
        "blast_radius": [
            {"batch": b, "versions": r["versions"], "runs": [x["id"] for x in r["runs"]], "models": r["models"]}
            for b, r in zip(batches, radius, strict=True)
        ],
    }


def read_examples(path: Path) -> pd.DataFrame:
    """The misbehaviour examples of ``path`` (CSV, TSV, JSON Lines or Parquet); an empty file is an InputError."""
    frame = read_path(path)
    if not len(frame):
        raise InputError(f"{path}: no examples")
    return frame


def open_incident(
    ws: Workspace,
    actor: Actor,
    model: Model | str,
    examples: pd.DataFrame | Path,
    *,
    label: str | None = None,
    text: str | None = None,
    features: Sequence[str] = (),
    title: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Incident:
    """Trace the misbehaviour on ``examples`` back through the model's lineage and record an incident
    (``progress`` gets one phase over its steps: read the training version, run the model, trace, record)."""
    sha, loaded = _resolve_model(ws, model)
    check_may(ws, actor, "incident.open", f"model:{sha}")
    task = phase(progress, f"incident: model {sha[:12]}", 4, unit="steps")
    try:
        return _open_incident(ws, actor, sha, loaded, examples, label, text, features, title, seed, task)
    finally:
        task.done()


def _open_incident(
    ws: Workspace,
    actor: Actor,
    sha: str,
    loaded: Any,
    examples: pd.DataFrame | Path,
    label: str | None,
    text: str | None,
    features: Sequence[str],
    title: str | None,
    seed: int,
    task: Task,
) -> Incident:
    lineage: ModelLineage | None = model_lineage(ws, sha)
    if lineage is None:
        raise NotFoundError(
            f"model {sha[:16]}...: no recorded training run produced it",
            advice="Record runs with dataward.training_run or `dataward run record`.",
        )
    ex = read_examples(examples) if isinstance(examples, Path) else examples
    task.update(note=f"reading {lineage.version} (verified)")
    train = load_frame(lineage.version, workspace=ws, principal=actor)
    task.advance(1)
    cols = infer_columns(train, label=label, text=text, features=tuple(features))
    for c in (cols.text, *cols.features):
        if c and c not in ex.columns:
            raise InputError(f"the examples lack the input column {c!r} (columns: {', '.join(map(str, ex.columns))})")
    out_col = next((c for c in OUTPUT_COLUMNS if c in ex.columns), None)
    exp_col = next((c for c in EXPECTED_COLUMNS if c in ex.columns), None)
    task.update(note="running the model on the examples")
    if loaded is not None:
        observed = loaded.predict(inputs_of(ex, cols))
    elif out_col is not None:
        observed = [str(v) for v in ex[out_col].tolist()]
    else:
        raise InputError(
            "the examples carry no model outputs and the model cannot be run",
            advice=f"Add an '{OUTPUT_COLUMNS[0]}' column, or pass a loadable model (module:function, URL, .onnx).",
        )
    expected = [str(v) for v in ex[exp_col].tolist()] if exp_col else None
    task.advance(1)
    task.update(note=f"tracing {len(ex)} example(s) through {len(train):,} records")
    result = trace(
        train.reset_index(drop=True), cols, ex.reset_index(drop=True), observed, expected=expected, seed=seed
    )
    task.advance(1)
    task.update(note="recording the incident")
    implicated = _implicated(result)
    acquisitions = [_acquisition(ws, b) for b in implicated]
    sources = sorted({str(a["source"]) for a in acquisitions if a.get("source")})
    remediation = _remediation(ws, implicated) if implicated else {"rollbacks": [], "retrain": [], "blast_radius": []}
    iid = f"INC-{secrets.token_hex(4)}"
    feat = result.features[0]["feature"] if result.features else None
    summary = title or (
        f"model {sha[:12]} outputs {result.output!r} on {len(ex)} examples"
        + (f" sharing {feat!r}" if feat else "")
        + (f"; traced to batch {implicated[0]} of source {acquisitions[0]['source']}" if implicated else "")
    )
    report: dict[str, Any] = {
        "id": iid,
        "model": {"sha256": sha, "name": loaded.name if loaded else None},
        "lineage": {"run": lineage.run, "version": lineage.version},
        "examples": len(ex),
        "columns": cols.to_json(),
        "trace": result.to_json(),
        "implicated_batches": implicated,
        "sources": sources,
        "acquisitions": acquisitions,
        "remediation": remediation,
        "labels_seen": sorted(set(labels_of(train, cols) or []))[:50],
    }
    now = now_iso()
    with ws.change(actor, "incident.open", f"incident:{iid}") as ch:
        digest = attest(ws, ch, [(f"model:{sha}", sha)], PREDICATE_INCIDENT, report)
        incidents_store.insert_incident(
            ch.conn,
            incidents_store.IncidentRow(
                id=iid,
                status="open",
                model_sha256=sha,
                summary=summary[:500],
                top_batch=implicated[0] if implicated else None,
                top_source=acquisitions[0]["source"] if acquisitions else None,
                opened_by=actor.name,
                opened_at=now,
                resolved_by=None,
                resolved_at=None,
                report_digest=digest,
            ),
        )
        ch.details.update(
            {
                "model": sha,
                "batches": implicated,
                "sources": sources,
                "records": [r.get("record_digest") for r in result.records[:20] if r.get("record_digest")],
                "output": result.output,
                "summary": summary[:300],
            }
        )
    task.advance(1)
    return get_incident(ws, iid)


def _load(ws: Workspace, row: incidents_store.IncidentRow) -> Incident:
    from dataward.release.versions import read_envelope

    env = read_envelope(ws, row.report_digest, f"incident {row.id}")
    stmt = json.loads(env.payload)
    return Incident(
        row.id,
        row.status,
        row.model_sha256,
        row.summary,
        row.opened_by,
        row.opened_at,
        row.resolved_by,
        row.resolved_at,
        dict(stmt.get("predicate", {})),
    )


def get_incident(ws: Workspace, iid: str) -> Incident:
    """The incident ``iid`` with its signed report re-read and re-hashed; unknown: NotFoundError."""
    with ws.engine.connect() as conn:
        row = incidents_store.get_incident_row(conn, iid)
    if row is None:
        raise NotFoundError(f"no incident {iid!r}", advice="List incidents with `dataward incident list`.")
    return _load(ws, row)


def open_incidents(ws: Workspace, limit: int = 100) -> list[incidents_store.IncidentRow]:
    """The incidents still open, oldest first (at most ``limit``): what the console's overview lists."""
    with ws.engine.connect() as conn:
        return incidents_store.list_incident_rows(conn, "open")[:limit]


def list_incidents(ws: Workspace, status: str | None = None) -> list[incidents_store.IncidentRow]:
    """Incidents in the order they were opened (optionally only those in ``status``)."""
    with ws.engine.connect() as conn:
        return incidents_store.list_incident_rows(conn, status)


@dataclass(frozen=True)
class Resolution:
    """An incident's remediation: the plan from its signed report and, once applied, what it did."""

    incident: str
    applied: bool
    plan: Mapping[str, Any]  # the report's remediation: rollbacks (dataset, without) and models to retrain
    versions: tuple[str, ...] = ()  # the versions the rollbacks made
    revoked: tuple[str, ...] = ()  # the batches they revoked

    def to_json(self) -> dict[str, Any]:
        """The JSON form `incident resolve --json` prints."""
        return {
            "incident": self.incident,
            "applied": self.applied,
            "plan": dict(self.plan),
            "versions": list(self.versions),
            "revoked": list(self.revoked),
        }


def resolve_incident(ws: Workspace, actor: Actor, iid: str, *, apply: bool = False) -> Resolution:
    """The remediation plan; with ``apply`` (approver role) roll back every affected dataset without the
    implicated batches (revoking them) and close the incident."""
    inc = get_incident(ws, iid)
    if inc.status != "open":
        raise ConflictError(f"incident {iid} is {inc.status} already")
    plan = dict(inc.report.get("remediation", {}))
    check_may(ws, actor, "incident.resolve", f"incident:{iid}")
    if not apply:
        return Resolution(iid, False, plan)
    from dataward.release.rollback import rollback

    versions: list[str] = []
    revoked: list[str] = []
    for rb in plan.get("rollbacks", []):
        v, gone = rollback(ws, actor, rb["dataset"], without=rb["without"], reason=f"incident {iid}")
        versions.append(v.spec)
        revoked += gone
    with ws.change(actor, "incident.resolve", f"incident:{iid}") as ch:
        if not incidents_store.mark_resolved(ch.conn, iid, by=actor.name, at=now_iso()):
            raise ConflictError(f"incident {iid} was resolved concurrently")
        ch.details.update(
            {
                "versions": versions,
                "revoked": revoked,
                "retrain": [m.get("sha256") for m in plan.get("retrain", [])],
                "batches": inc.report.get("implicated_batches", []),
                "sources": inc.report.get("sources", []),
            }
        )
    return Resolution(iid, True, plan, tuple(versions), tuple(revoked))


def story(inc: Incident) -> str:
    """``dataward incident show``: the incident as a story, for people."""
    r = inc.report
    tr = r.get("trace", {})
    lines = [
        f"{inc.id} [{inc.status}] opened {inc.opened_at} by {inc.opened_by}",
        f"  {inc.summary}",
        f"1. Misbehaviour: model {inc.model_sha256[:16]} (run {r['lineage']['run']}, trained on "
        f"{r['lineage']['version']}) outputs {tr.get('output')!r} on {r.get('examples')} examples.",
    ]
    feats = tr.get("features", [])
    if feats:
        f = feats[0]
        lines.append(
            f"2. Shared trigger feature: {f['feature']!r} in {f['examples_share']:.0%} of the examples; "
            f"{f['support']} training records carry it, {f['purity']:.0%} labelled {tr.get('output')!r} "
            f"(base rate {f['base_rate']:.0%})."
        )
    else:
        lines.append("2. No shared trigger feature; ranking by neighbours and influence only.")
    lines.append("3. Most responsible batches:")
    for b in tr.get("batches", [])[:5]:
        lines.append(
            f"   - {b['batch']}: score {b['score']:.3f}, {b['suspicious_records']} suspicious of {b['records']} "
            f"records, leave-out drop {b['loo_drop']}"
        )
    lines.append("4. Provenance:")
    for a in r.get("acquisitions", []):
        lines.append(
            f"   - batch {a['batch']} from source {a.get('source')} ({a.get('source_kind')}), acquired by "
            f"{a.get('acquired_by')} at {a.get('acquired_at')}, supplier verification "
            f"{a.get('supplier_verification')}, supplier key {str(a.get('supplier_key') or 'none')[:16]}"
        )
    rem = r.get("remediation", {})
    lines.append("5. Blast radius and remediation:")
    for br in rem.get("blast_radius", []):
        vs = ", ".join(v["version"] for v in br["versions"]) or "no versions"
        lines.append(f"   - {br['batch']}: in {vs}; {len(br['models'])} models")
    for rb in rem.get("rollbacks", []):
        lines.append(f"   - roll back {rb['dataset']} (from {rb['from']}) without {', '.join(rb['without'])}")
    for m in rem.get("retrain", []):
        lines.append(f"   - retrain model {m.get('name')} ({str(m.get('sha256'))[:16]})")
    if inc.status == "resolved":
        lines.append(f"Resolved by {inc.resolved_by} at {inc.resolved_at}.")
    else:
        lines.append(f"Apply with: dataward incident resolve {inc.id} --apply (approver role)")
    return "\n".join(lines)
