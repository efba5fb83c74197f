"""Screening-report queries: the catalog's index of each batch's signed screening reports."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from dataward.model.workflow_records import ScreeningRecord
from dataward.store import schema
from dataward.store.repository import repository, value_of

__all__ = ["insert_screening", "latest_screening"]


@repository
def latest_screening(conn: Connection, batch_id: str) -> ScreeningRecord | None:
    """The batch's newest screening report, or None when it was never screened."""
    t = schema.screening_reports
    row = conn.execute(select(t).where(t.c.batch_id == batch_id).order_by(t.c.id.desc()).limit(1)).first()
    return None if row is None else value_of(ScreeningRecord, row)


@repository
def insert_screening(
    conn: Connection,
    *,
    batch_id: str,
    envelope_digest: str,
    flagged_digest: str,
    flagged_count: int,
    created_at: str,
    created_by: str,
) -> None:
    """Index a batch's signed screening report and its flagged-record list (both meta objects)."""
    conn.execute(
        insert(schema.screening_reports).values(
            batch_id=batch_id,
            envelope_digest=envelope_digest,
            flagged_digest=flagged_digest,
            flagged_count=flagged_count,
            created_at=created_at,
            created_by=created_by,
        )
    )
