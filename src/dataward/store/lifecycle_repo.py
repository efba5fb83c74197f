"""Batch-state and attestation queries: the catalog side of :mod:`dataward.lifecycle`."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from dataward.model.attestation import Attestation
from dataward.model.batch import BatchState
from dataward.store import _schema as schema
from dataward.store._repository import repository, value_of

__all__ = ["attestations_of", "batch_state", "insert_attestation", "move_batch_state"]


@repository
def batch_state(conn: Connection, batch_id: str) -> BatchState | None:
    """The catalog's state of batch ``batch_id`` (None: no such batch)."""
    t = schema.batches
    state = conn.execute(select(t.c.state).where(t.c.id == batch_id)).scalar()
    return None if state is None else BatchState(state)


@repository
def move_batch_state(conn: Connection, batch_id: str, have: BatchState, to: BatchState, at: str) -> bool:
    """Compare-and-set: move ``batch_id`` from ``have`` to ``to``; False when its state was no longer ``have``."""
    t = schema.batches
    res = conn.execute(
        update(t).where(t.c.id == batch_id, t.c.state == have.value).values(state=to.value, updated_at=at)
    )
    return bool(res.rowcount == 1)


@repository
def insert_attestation(conn: Connection, a: Attestation) -> None:
    """Index a stored signed envelope (``a.id`` is ignored: the catalog assigns it)."""
    conn.execute(
        insert(schema.attestations).values(
            batch_id=a.batch_id,
            subject=a.subject,
            predicate_type=a.predicate_type,
            envelope_digest=a.envelope_digest,
            principal=a.principal,
            keyid=a.keyid,
            created_at=a.created_at,
        )
    )


@repository
def attestations_of(conn: Connection, batch_id: str, predicate_type: str | None = None) -> list[Attestation]:
    """The attestations indexed for ``batch_id`` (optionally of one predicate type), oldest first."""
    t = schema.attestations
    q = select(t).where(t.c.batch_id == batch_id).order_by(t.c.id)
    if predicate_type:
        q = q.where(t.c.predicate_type == predicate_type)
    return [value_of(Attestation, r) for r in conn.execute(q)]
