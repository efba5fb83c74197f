"""Label-audit queries: the catalog's audits, their sampled records and the reviewers' decisions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, insert, select, update

from dataward.model.workflow_records import Audit, AuditItem, ReviewDecision
from dataward.store import schema
from dataward.store.repository import repository, value_of

__all__ = [
    "audit_items",
    "insert_audit",
    "insert_decisions",
    "insert_items",
    "latest_decisions",
    "load_audit",
    "mark_complete",
    "move_to_random",
    "set_margin",
]


@repository
def load_audit(conn: Connection, batch_id: str) -> Audit | None:
    """The batch's audit, or None when no sample was drawn."""
    row = conn.execute(select(schema.audits).where(schema.audits.c.batch_id == batch_id)).first()
    return None if row is None else value_of(Audit, row)


@repository
def audit_items(conn: Connection, audit_id: int) -> list[AuditItem]:
    """The audit's sampled records in drawing order."""
    t = schema.audit_items
    rows = conn.execute(select(t).where(t.c.audit_id == audit_id).order_by(t.c.draw))
    return [value_of(AuditItem, r) for r in rows]


@repository
def latest_decisions(conn: Connection, audit_id: int) -> dict[int, ReviewDecision]:
    """record -> the latest decision recorded on it (an undo is a decision too: the caller reads it)."""
    t = schema.audit_decisions
    out: dict[int, ReviewDecision] = {}
    for r in conn.execute(select(t).where(t.c.audit_id == audit_id).order_by(t.c.id)):
        out[int(r.record)] = value_of(ReviewDecision, r)
    return out


@repository
def insert_audit(
    conn: Connection,
    *,
    batch_id: str,
    report_id: int,
    seed: str,
    population: int,
    flagged_population: int,
    confidence: float,
    margin: float,
    created_at: str,
    created_by: str,
) -> int:
    """Open an audit of the batch; returns its id."""
    res = conn.execute(
        insert(schema.audits).values(
            batch_id=batch_id,
            report_id=report_id,
            seed=seed,
            population=population,
            flagged_population=flagged_population,
            confidence=confidence,
            margin=margin,
            status="open",
            created_at=created_at,
            created_by=created_by,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None  # an insert into a table with a primary key always reports it
    return int(pk[0])


@repository
def set_margin(conn: Connection, audit_id: int, margin: float) -> None:
    """Record the margin an enlarged sample was drawn for."""
    conn.execute(update(schema.audits).where(schema.audits.c.id == audit_id).values(margin=margin))


@repository
def insert_items(conn: Connection, audit_id: int, items: Sequence[AuditItem]) -> None:
    """Add sampled records to the audit."""
    if not items:
        return
    rows = [
        {
            "audit_id": audit_id,
            "record": i.record,
            "stratum": i.stratum,
            "draw": i.draw,
            "file_position": i.file_position,
            "file_record": i.file_record,
            "record_digest": i.record_digest,
        }
        for i in items
    ]
    conn.execute(insert(schema.audit_items), rows)


@repository
def move_to_random(conn: Connection, audit_id: int, records: Iterable[int]) -> None:
    """Move sampled records into the random stratum (a flagged record later drawn at random)."""
    t = schema.audit_items
    for r in records:
        conn.execute(update(t).where(t.c.audit_id == audit_id, t.c.record == r).values(stratum="random"))


@repository
def insert_decisions(conn: Connection, audit_id: int, decisions: Sequence[ReviewDecision]) -> None:
    """Record reviewers' decisions (all are kept; the latest per record wins)."""
    conn.execute(
        insert(schema.audit_decisions),
        [
            {
                "audit_id": audit_id,
                "record": d.record,
                "reviewer": d.reviewer,
                "decision": d.decision,
                "new_label": d.new_label,
                "note": d.note,
                "decided_at": d.decided_at,
            }
            for d in decisions
        ],
    )


@repository
def mark_complete(
    conn: Connection, audit_id: int, *, completed_at: str, completed_by: str, envelope_digest: str
) -> None:
    """Close an open audit with its signed attestation."""
    t = schema.audits
    conn.execute(
        update(t)
        .where(t.c.id == audit_id, t.c.status == "open")
        .values(
            status="complete", completed_at=completed_at, completed_by=completed_by, envelope_digest=envelope_digest
        )
    )
