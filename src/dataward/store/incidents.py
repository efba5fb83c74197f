"""Incident queries: the catalog's ``incidents`` table and the acquisition facts an incident report cites.

Typed repository functions over a connection (the caller owns the transaction: a read connection, or the
``Change`` of :meth:`dataward.workspace.Workspace.change` for writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dataward.store import _schema as schema

__all__ = [
    "AcquisitionFacts",
    "IncidentRow",
    "acquisition_facts",
    "get_incident_row",
    "insert_incident",
    "list_incident_rows",
    "mark_resolved",
]


@dataclass(frozen=True)
class IncidentRow:
    """One row of the ``incidents`` table (the signed report itself is the meta object ``report_digest``)."""

    id: str
    status: str
    model_sha256: str
    summary: str
    top_batch: str | None
    top_source: str | None
    opened_by: str
    opened_at: str
    resolved_by: str | None
    resolved_at: str | None
    report_digest: str

    def listing(self) -> dict[str, Any]:
        """The row as ``incident list`` shows it (every column but the report digest)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "report_digest"}


@dataclass(frozen=True)
class AcquisitionFacts:
    """What the catalog and the log say about how a batch arrived."""

    batch_id: str
    state: str
    records: int
    source: str
    created_by: str
    created_at: str
    manifest_digest: str
    source_kind: str | None
    supplier: str | None
    supplier_key: str | None
    #: the ``batch.acquire`` log entry: sequence number, time, principal, signing key, its details
    log_seq: int | None
    log_time: str | None
    log_principal: str | None
    log_keyid: str | None
    log_details: dict[str, Any]


def _row(r: Any) -> IncidentRow:
    return IncidentRow(**{f.name: getattr(r, f.name) for f in fields(IncidentRow)})


def get_incident_row(conn: Connection, iid: str) -> IncidentRow | None:
    """The incident ``iid``, or None."""
    r = conn.execute(select(schema.incidents).where(schema.incidents.c.id == iid)).first()
    return None if r is None else _row(r)


def list_incident_rows(conn: Connection, status: str | None = None) -> list[IncidentRow]:
    """Incidents in the order they were opened, optionally only those in ``status``."""
    t = schema.incidents
    q = select(t).order_by(t.c.opened_at)
    if status:
        q = q.where(t.c.status == status)
    return [_row(r) for r in conn.execute(q)]


def insert_incident(conn: Connection, row: IncidentRow) -> None:
    """Record a newly opened incident (inside the change that logs ``incident.open``)."""
    conn.execute(insert(schema.incidents).values(**{f.name: getattr(row, f.name) for f in fields(row)}))


def mark_resolved(conn: Connection, iid: str, *, by: str, at: str) -> bool:
    """Close the open incident ``iid``; False when it was not open (resolved concurrently)."""
    t = schema.incidents
    res = conn.execute(
        update(t).where(t.c.id == iid, t.c.status == "open").values(status="resolved", resolved_by=by, resolved_at=at)
    )
    return int(res.rowcount) == 1


def acquisition_facts(conn: Connection, batch_id: str) -> AcquisitionFacts | None:
    """The batch's row, its source's supplier and the ``batch.acquire`` log entry; None for an unknown batch."""
    b = conn.execute(select(schema.batches).where(schema.batches.c.id == batch_id)).first()
    if b is None:
        return None
    src = conn.execute(select(schema.sources).where(schema.sources.c.name == b.source)).first()
    le = schema.log_entries
    row = conn.execute(
        select(le.c.seq, le.c.time, le.c.principal, le.c.keyid, le.c.entry).where(
            le.c.action == "batch.acquire", le.c.subject == f"batch:{batch_id}"
        )
    ).first()
    details = json.loads(bytes(row.entry)).get("details", {}) if row is not None else {}
    return AcquisitionFacts(
        batch_id=batch_id,
        state=b.state,
        records=int(b.record_count),
        source=b.source,
        created_by=b.created_by,
        created_at=b.created_at,
        manifest_digest=b.manifest_digest,
        source_kind=src.kind if src is not None else None,
        supplier=src.supplier if src is not None else None,
        supplier_key=src.supplier_key if src is not None else None,
        log_seq=int(row.seq) if row is not None else None,
        log_time=row.time if row is not None else None,
        log_principal=row.principal if row is not None else None,
        log_keyid=row.keyid if row is not None else None,
        log_details=dict(details) if isinstance(details, dict) else {},
    )
