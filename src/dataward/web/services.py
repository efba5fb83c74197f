"""What the console shows and does, as plain data: every call goes to the library the CLI uses.

Each function takes the workspace and the signed-in :class:`Viewer`, checks the read permission it needs
(``console.read`` for workflow state, ``data.read`` for record contents; denied attempts are logged), and
returns JSON-ready values. State changes call the workflow functions with the principal's own
:class:`Actor`, which authorize through :meth:`Workspace.change` exactly as the CLI does.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from dataward.batches import Batch, BatchState, get_batch, list_batches
from dataward.errors import ConflictError, Error, InputError, NotFoundError
from dataward.identity import Actor
from dataward.web.auth import Viewer, require
from dataward.workspace import Workspace

MAX_FINDING_RECORDS = 20


class SigningDisabledError(ConflictError):
    """The operator did not allow the server to sign with principals' keys."""


def actor_for(ws: Workspace, viewer: Viewer, server_side_signing: bool) -> Actor:
    if not server_side_signing:
        raise SigningDisabledError(
            "this console does not sign with principals' keys (server-side signing is off)",
            advice="Download the statement, sign it with `dataward sign-statement`, and upload it; or use the CLI.",
        )
    return ws.actor(viewer.name)


def signer(ws: Workspace, viewer: Viewer, action: str, batch_id: str, server_side_signing: bool) -> Actor:
    """Authorize ``action`` on the batch as the CLI would (a denial is logged), then the principal's actor.

    The workflow function called next checks the role again inside its own transaction.
    """
    b = get_batch(ws, batch_id)
    require(ws, viewer, action, f"batch:{batch_id}", b.source)
    return actor_for(ws, viewer, server_side_signing)


def read(ws: Workspace, viewer: Viewer, subject: str, source: str | None = None) -> None:
    require(ws, viewer, "console.read", subject, source)


# --- overview --------------------------------------------------------------------------------------------------


def sources_by_risk(ws: Workspace, viewer: Viewer) -> list[dict[str, Any]]:
    from dataward.workflow.approval_policy import load_policy
    from dataward.workflow.risk import assess_all

    read(ws, viewer, "sources")
    return [r.to_json() for r in assess_all(ws, thresholds=load_policy(ws).risk_thresholds)]


def batches(ws: Workspace, viewer: Viewer, state: str | None = None) -> list[dict[str, Any]]:
    read(ws, viewer, "batches")
    if state is not None and state not in {str(s) for s in BatchState}:
        raise InputError(f"unknown batch state {state!r}", advice=f"One of {', '.join(s.value for s in BatchState)}.")
    return [b.to_json() for b in list_batches(ws, state=state)]


def incidents(ws: Workspace) -> list[dict[str, Any]] | None:
    """Open incidents when the catalog has an incidents table (a later migration); None otherwise."""
    from sqlalchemy import inspect, select

    from dataward.store import schema

    table = schema.metadata.tables.get("incidents")
    if table is None:
        return None
    with ws.engine.connect() as conn:
        if not inspect(conn).has_table("incidents"):
            return None
        q = select(table)
        if "status" in table.c:
            q = q.where(table.c.status == "open")
        return [dict(r._mapping) for r in conn.execute(q.limit(100))]


def incident_list(ws: Workspace, viewer: Viewer) -> list[dict[str, Any]]:
    """Every incident, open and resolved, newest first: its trace (top batches, sources, trigger) and, once
    resolved, the rollbacks applied (from the signed ``incident.resolve`` log entry)."""
    from dataward.incident.api import get_incident, list_incidents
    from dataward.log.query import show_entries

    read(ws, viewer, "incidents")
    out = []
    for row in reversed(list_incidents(ws)):
        inc = get_incident(ws, row["id"])
        rep = inc.report
        trace = rep.get("trace", {})
        resolved = [e.to_json() for e in show_entries(ws, action="incident.resolve", subject=f"incident:{inc.id}")]
        out.append(
            {
                **{k: v for k, v in inc.to_json().items() if k != "report"},
                "implicated_batches": list(rep.get("implicated_batches", [])),
                "sources": list(rep.get("sources", [])),
                "lineage": dict(rep.get("lineage", {})),
                "trace": {
                    k: trace.get(k) for k in ("output", "method", "summary", "top_batches", "trigger") if k in trace
                },
                "plan": dict(rep.get("remediation", {})),
                "resolution": resolved[-1]["details"] if resolved else None,
                "resolution_seq": resolved[-1]["seq"] if resolved else None,
            }
        )
    return out


def overview(ws: Workspace, viewer: Viewer) -> dict[str, Any]:
    from dataward.log.query import show_entries

    all_batches = batches(ws, viewer)
    return {
        "sources": sources_by_risk(ws, viewer),
        "batches": all_batches,
        "batch_states": dict(Counter(b["state"] for b in all_batches)),
        "recent_log": [e.to_json() for e in show_entries(ws, limit=12)],
        "incidents": incidents(ws),
    }


# --- batch -----------------------------------------------------------------------------------------------------


def _batch(ws: Workspace, viewer: Viewer, batch_id: str) -> Batch:
    b = get_batch(ws, batch_id)
    read(ws, viewer, f"batch:{batch_id}", b.source)
    return b


def screening(ws: Workspace, batch_id: str) -> dict[str, Any] | None:
    from dataward.workflow.screening import latest_report

    try:
        return latest_report(ws, batch_id).to_json()
    except NotFoundError:
        return None


def batch_detail(ws: Workspace, viewer: Viewer, batch_id: str) -> dict[str, Any]:
    from dataward.acquire.verify import batch_manifest

    b = _batch(ws, viewer, batch_id)
    return {"batch": b.to_json(), "manifest": batch_manifest(ws, batch_id), "screening": screening(ws, batch_id)}


def _mask(value: Any, kinds: tuple[str, ...] = ()) -> Any:
    """PII masked for display: validated values, plus every match of the kinds found in the batch."""
    from dataward.screen.pii import redact_kinds

    if isinstance(value, str):
        return redact_kinds(value, kinds)
    if isinstance(value, dict):
        return {k: _mask(v, kinds) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, kinds) for v in value]
    return value


def _pii_kinds(ws: Workspace, batch_id: str) -> tuple[str, ...]:
    """The PII kinds screening matched anywhere in the batch (none screened: every kind, to be safe)."""
    from dataward.screen.pii import KINDS
    from dataward.workflow.screening import latest_report

    try:
        report = latest_report(ws, batch_id)
    except Error:
        return KINDS
    return tuple(k for k, n in report.pii_counts.items() if n)


def records(
    ws: Workspace, viewer: Viewer, batch_id: str, numbers: list[int], *, log_as: str | None = "api"
) -> list[dict[str, Any]]:
    """The content of records of a batch, PII masked, digests re-checked: only for the roles that handle the
    batch in its state according to the signed log (:mod:`dataward.workflow.reads`). The read is logged as
    one ``data.read`` entry (``log_as``: how; None when the caller logs the request's reads itself)."""
    from dataward.workflow.audit import SampleItem, locate
    from dataward.workflow.reads import log_read, require_read
    from dataward.workflow.review import read_record

    b = _batch(ws, viewer, batch_id)
    require_read(ws, viewer.name, batch_id)
    bad = [n for n in numbers if not 0 <= n < b.record_count]
    if bad:
        raise NotFoundError(f"batch {batch_id} has no record {bad[0]} (it has {b.record_count})")
    where = locate(ws, b, numbers[:MAX_FINDING_RECORDS])
    out = []
    kinds = _pii_kinds(ws, batch_id)
    for n, (pos, i, digest) in sorted(where.items()):
        view = read_record(ws, b, SampleItem(n, "finding", 0, pos, i, digest)).to_json()
        view["value"] = _mask(view["value"], kinds)
        view["path"] = None  # never reveal server paths; images go through /batch/{id}/records/{n}/raw
        out.append(view)
    if log_as is not None:
        log_read(ws, viewer.name, batch_id, [v["record"] for v in out], log_as)
    return out


def may_read_records(ws: Workspace, viewer: Viewer, batch_id: str) -> bool:
    """Whether the viewer may see the batch's records now (by its state in the signed log; nothing logged)."""
    from dataward.workflow.reads import can_read

    return can_read(ws, viewer.name, batch_id)


def log_records_read(ws: Workspace, viewer: Viewer, batch_id: str, numbers: list[int], how: str) -> None:
    """One ``data.read`` entry for the records a page showed (nothing when it showed none)."""
    from dataward.workflow.reads import log_read

    log_read(ws, viewer.name, batch_id, numbers, how)


def record_file(ws: Workspace, viewer: Viewer, batch_id: str, number: int) -> tuple[bytes, str]:
    """The bytes of a whole-file record (an image), read from quarantine, with the reader's role checked
    against the batch's state in the signed log; the read is logged."""
    from dataward.workflow.audit import locate
    from dataward.workflow.reads import log_read, require_read

    b = _batch(ws, viewer, batch_id)
    require_read(ws, viewer.name, batch_id)
    if not 0 <= number < b.record_count:
        raise NotFoundError(f"batch {batch_id} has no record {number}")
    pos, _, _ = locate(ws, b, [number])[number]
    f = next(x for x in b.files if x.position == pos)
    if f.format != "file":
        raise InputError(f"record {number} of batch {batch_id} is a {f.format} record, not a file")
    data = ws.objects.read_bytes("quarantine", f.sha256)
    log_read(ws, viewer.name, batch_id, [number], "console")
    return data, _image_type(data)


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


# --- label audit -----------------------------------------------------------------------------------------------


def audit_state(ws: Workspace, viewer: Viewer, batch_id: str, *, with_content: bool = False) -> dict[str, Any]:
    """The label audit; ``with_content``: the sampled records' contents too, for the roles that may read
    the batch in its state per the signed log (one ``data.read`` entry for the request)."""
    from dataward.workflow.audit import audit_exists, estimate, sample_items
    from dataward.workflow.gate import tier_for
    from dataward.workflow.reads import can_read, log_read
    from dataward.workflow.review import read_record

    b = _batch(ws, viewer, batch_id)
    if not audit_exists(ws, batch_id):
        return {"batch": batch_id, "state": str(b.state), "sampled": False, "items": [], "estimate": None}
    tp = tier_for(ws, b)[1]
    est = estimate(ws, batch_id, pass_limit=tp.max_audit_error_upper if tp.audit_required else None)
    show = with_content and can_read(ws, viewer.name, batch_id)
    reasons = _flag_reasons(ws, batch_id)
    kinds = _pii_kinds(ws, batch_id) if show else ()
    items = []
    for i in review_order(sample_items(ws, batch_id), reasons):
        why = reasons.get(i.record)
        row: dict[str, Any] = {
            "record": i.record,
            "stratum": i.stratum,
            "digest": i.record_digest,
            "decision": i.decision,
            "new_label": i.new_label,
            "reviewer": i.reviewer,
            "finding": None if why is None else {k: why[k] for k in ("check", "kind", "severity", "summary")},
            "trigger": None if why is None else trigger_of(why["summary"]),
        }
        if show:
            view = read_record(ws, b, i).to_json()
            view["value"] = _mask(view["value"], kinds)
            view["path"] = None
            row["content"] = view
        items.append(row)
    if show:
        log_read(ws, viewer.name, batch_id, [i["record"] for i in items], "console")
    return {"batch": batch_id, "state": str(b.state), "sampled": True, "items": items, "estimate": est.to_json()}


def _flag_reasons(ws: Workspace, batch_id: str) -> dict[int, dict[str, Any]]:
    """record -> the most severe finding of the batch's screening report naming it."""
    from dataward.workflow.audit import risk_of_records
    from dataward.workflow.screening import latest_report

    return {r: f.to_json() for r, f in risk_of_records(latest_report(ws, batch_id).findings).items()}


def review_order(items: list[Any], reasons: dict[int, dict[str, Any]]) -> list[Any]:
    """Flagged records first, most severe finding first (then in drawing order), then the random ones."""
    from dataward.workflow.checks import severity_rank

    def key(i: Any) -> tuple[int, int, int]:
        why = reasons.get(i.record)
        rank = severity_rank(why["severity"]) if why is not None else -1
        return (0 if i.stratum != "random" else 1, -rank, i.draw)

    return sorted(items, key=key)


_TRIGGER = re.compile(r"""\btrigger (?P<q>['"])(?P<t>.+?)(?P=q)""")


def trigger_of(summary: str) -> str | None:
    """The trigger phrase a detector's finding names (``trigger 'cf' -> ...``), to highlight it in the record."""
    m = _TRIGGER.search(summary)
    return m.group("t") if m else None


def decide(
    ws: Workspace, viewer: Viewer, actor: Actor, batch_id: str, record: int, decision: str, note: str | None
) -> dict[str, Any]:
    from dataward.workflow.audit import Decision, parse_decision, record_decisions

    d, label = parse_decision(decision)
    record_decisions(ws, actor, batch_id, [Decision(record, d, label, note or None)])
    return {"batch": batch_id, "record": record, "decision": d, "new_label": label}


def draw_sample(ws: Workspace, actor: Actor, batch_id: str) -> dict[str, Any]:
    from dataward.workflow.audit import draw_sample as draw

    return draw(ws, actor, batch_id).to_json()


def complete_audit(ws: Workspace, actor: Actor, batch_id: str) -> dict[str, Any]:
    from dataward.workflow.audit import complete_audit as complete

    return complete(ws, actor, batch_id).to_json()


# --- approval --------------------------------------------------------------------------------------------------


def policy_check(ws: Workspace, viewer: Viewer, batch_id: str) -> dict[str, Any]:
    from dataward.workflow.gate import evaluate

    _batch(ws, viewer, batch_id)
    return evaluate(ws, batch_id).to_json()


def prepare_statement(ws: Workspace, viewer: Viewer, batch_id: str) -> bytes:
    from dataward.workflow.approval import prepare_statement as prepare

    b = _batch(ws, viewer, batch_id)
    require(ws, viewer, "batch.approve", f"batch:{batch_id}", b.source)
    return prepare(ws, batch_id, viewer.name)


def approve(ws: Workspace, actor: Actor, batch_id: str) -> dict[str, Any]:
    from dataward.workflow.approval import approve as do_approve

    return do_approve(ws, actor, batch_id).to_json()


def approve_with_statement(
    ws: Workspace, viewer: Viewer, submitter: Actor, batch_id: str, envelope: bytes
) -> dict[str, Any]:
    """Record an approval signed offline. The uploader must hold the approval role too."""
    from dataward.workflow.approval import approve_with_statement as record

    b = _batch(ws, viewer, batch_id)
    require(ws, viewer, "batch.approve", f"batch:{batch_id}", b.source)
    if not envelope.strip():
        raise InputError("the uploaded statement is empty", advice="Upload the .dsse file `sign-statement` wrote.")
    try:
        return record(ws, submitter, batch_id, envelope).to_json()
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the uploaded file is not a signed approval statement ({exc})") from None


def reject(ws: Workspace, actor: Actor, batch_id: str, reason: str) -> dict[str, Any]:
    from dataward.workflow.approval import reject as do_reject

    return do_reject(ws, actor, batch_id, reason).to_json()


# --- versions and lineage --------------------------------------------------------------------------------------


def versions(ws: Workspace, viewer: Viewer, dataset: str | None = None) -> list[dict[str, Any]]:
    from dataward.release.versions import list_versions

    read(ws, viewer, "versions")
    return [v.to_json() for v in list_versions(ws, dataset)]


def version(ws: Workspace, viewer: Viewer, spec: str) -> dict[str, Any]:
    from dataward.release.versions import get_version, verify_version

    read(ws, viewer, f"version:{spec}")
    v = get_version(ws, spec)
    rep = verify_version(ws, v.spec, full=False)
    return {**v.to_json(), "verified": rep.ok, "problems": list(rep.problems)}


def diff(ws: Workspace, viewer: Viewer, a: str, b: str) -> dict[str, Any]:
    from dataward.release.diff import diff_versions

    read(ws, viewer, f"diff:{a}..{b}")
    return diff_versions(ws, a, b).to_json()


def lineage_graph(ws: Workspace, viewer: Viewer, target: str | None = None) -> dict[str, Any]:
    """The whole lineage graph, or the part up- and downstream of ``target``."""
    from dataward.lineage.queries import build_graph, lineage

    read(ws, viewer, "lineage")
    if target:
        out = lineage(ws, target)
        nodes = [out["target"], *out["upstream"], *out["downstream"]]
        return {"target": out["target"]["id"], "nodes": _mark_revoked(nodes, out["edges"]), "edges": out["edges"]}
    g = build_graph(ws)
    edges = [{"from": a, "to": b, "relation": r} for a, b, r in g.edges]
    return {"target": None, "nodes": _mark_revoked(list(g.nodes.values()), edges), "edges": edges}


def _mark_revoked(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark versions that contain a revoked batch ``revoked`` and every run and model downstream ``tainted``."""
    down: dict[str, list[str]] = {}
    for e in edges:
        down.setdefault(str(e["from"]), []).append(str(e["to"]))
    flag: dict[str, str] = {}
    todo = [str(n["id"]) for n in nodes if n.get("type") == "batch" and n.get("state") == "revoked"]
    while todo:
        key = todo.pop()
        for nxt in down.get(key, []):
            kind = nxt.split(":", 1)[0]
            mark = "revoked" if kind == "version" else "tainted" if kind in ("run", "model") else None
            if mark and nxt not in flag:
                flag[nxt] = mark
                todo.append(nxt)
    return [{**n, "flag": flag[str(n["id"])]} if str(n["id"]) in flag else n for n in nodes]


# --- audit log -------------------------------------------------------------------------------------------------


def log_entries(
    ws: Workspace,
    viewer: Viewer,
    *,
    action: str | None = None,
    principal: str | None = None,
    subject: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    from dataward.log.query import show_entries

    read(ws, viewer, "log")
    rows = show_entries(ws, action=action, principal=principal, subject=subject, limit=limit, offset=offset)
    return [e.to_json() for e in rows]


def log_entry(ws: Workspace, viewer: Viewer, seq: int) -> dict[str, Any]:
    from dataward.log.query import get_entry

    read(ws, viewer, f"log:{seq}")
    return get_entry(ws, seq).to_json()


def log_key(ws: Workspace) -> str:
    from dataward.core.checkpoint import verifier_key_string

    return verifier_key_string(ws.origin, ws.log_public_key())


def inclusion_proof(ws: Workspace, viewer: Viewer, seq: int) -> dict[str, Any]:
    """The proof (as `dataward log prove --json`), plus the server's own check of it with the log key."""
    from dataward.log.proofcheck import verify_proof
    from dataward.log.query import prove_inclusion

    read(ws, viewer, f"log:{seq}")
    proof = prove_inclusion(ws, seq).to_json()
    key = log_key(ws)
    try:
        check: dict[str, Any] = {"ok": True, **verify_proof(proof, key)}
    except Error as exc:
        check = {"ok": False, "problem": str(exc)}
    return {"proof": proof, "log_key": key, "server_check": check}


def checkpoint(ws: Workspace, viewer: Viewer) -> dict[str, Any]:
    from dataward.log.witness import current_checkpoint

    read(ws, viewer, "log")
    got = current_checkpoint(ws)
    if got is None:
        raise NotFoundError("the log is empty")
    cp, note = got
    return {"origin": cp.origin, "size": cp.size, "root": cp.root_hash.hex(), "note": note.decode()}
