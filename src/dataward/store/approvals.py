"""Approval queries: the catalog's approvals of batches, and the attestation index row of each."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from dataward.model.workflow_records import Approval
from dataward.store import schema
from dataward.store.repository import repository

__all__ = ["approval_digest", "approvals_of", "approvers_of", "insert_approval"]


@repository
def approvals_of(conn: Connection, batch_id: str) -> list[Approval]:
    """The batch's approvals in the order they were recorded."""
    t = schema.approvals
    rows = conn.execute(select(t).where(t.c.batch_id == batch_id).order_by(t.c.id))
    return [Approval(str(r.principal), str(r.keyid), str(r.created_at), str(r.envelope_digest)) for r in rows]


@repository
def approvers_of(conn: Connection, batch_id: str) -> set[str]:
    """The principals who approved the batch."""
    t = schema.approvals
    rows = conn.execute(select(t.c.principal).where(t.c.batch_id == batch_id))
    return {str(r.principal) for r in rows}


@repository
def approval_digest(conn: Connection, batch_id: str, principal: str) -> str | None:
    """The digest of ``principal``'s signed approval of the batch (None: no such approval)."""
    t = schema.approvals
    d = conn.execute(select(t.c.envelope_digest).where(t.c.batch_id == batch_id, t.c.principal == principal)).scalar()
    return None if d is None else str(d)


@repository
def insert_approval(
    conn: Connection,
    batch_id: str,
    approval: Approval,
    *,
    policy_digest: str,
    subject: str,
    predicate_type: str,
) -> None:
    """Record an approval and index its signed statement among the batch's attestations."""
    conn.execute(
        insert(schema.approvals).values(
            batch_id=batch_id,
            principal=approval.principal,
            keyid=approval.keyid,
            envelope_digest=approval.attestation,
            policy_digest=policy_digest,
            created_at=approval.at,
        )
    )
    conn.execute(
        insert(schema.attestations).values(
            batch_id=batch_id,
            subject=subject,
            predicate_type=predicate_type,
            envelope_digest=approval.attestation,
            principal=approval.principal,
            keyid=approval.keyid,
            created_at=approval.at,
        )
    )
