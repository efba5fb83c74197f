"""Batch queries: the catalog's batches and batch_files tables, read into :mod:`dataward.model.batch` values."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from dataward.errors import NotFoundError
from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.store import _schema as schema
from dataward.store._repository import repository

__all__ = ["batch_ids", "insert_batch", "load_batch", "manifest_digest"]


@repository
def load_batch(conn: Connection, batch_id: str) -> Batch:
    """The batch ``batch_id`` with its files in position order; unknown: :class:`NotFoundError`."""
    b = conn.execute(select(schema.batches).where(schema.batches.c.id == batch_id)).first()
    if b is None:
        raise NotFoundError(f"no batch {batch_id!r}", advice="List batches with `dataward batch list`.")
    t = schema.batch_files
    files = tuple(
        BatchFile(r.position, r.name, r.sha256, r.size, r.format, r.record_count, r.records_digest, r.merkle_root)
        for r in conn.execute(select(t).where(t.c.batch_id == batch_id).order_by(t.c.position))
    )
    return Batch(
        b.id,
        b.source,
        BatchState(b.state),
        b.manifest_digest,
        b.merkle_root,
        b.record_count,
        b.file_count,
        b.byte_count,
        b.created_at,
        b.created_by,
        files,
    )


@repository
def batch_ids(conn: Connection, *, source: str | None = None, state: str | None = None) -> list[str]:
    """Batch ids in acquisition order, optionally of one source and/or in one state."""
    t = schema.batches
    q = select(t.c.id).order_by(t.c.created_at)
    if source:
        q = q.where(t.c.source == source)
    if state:
        q = q.where(t.c.state == state)
    return list(conn.execute(q).scalars())


@repository
def manifest_digest(conn: Connection, batch_id: str) -> str | None:
    """The digest of batch ``batch_id``'s signed manifest envelope (None: no such batch)."""
    t = schema.batches
    digest = conn.execute(select(t.c.manifest_digest).where(t.c.id == batch_id)).scalar()
    return None if digest is None else str(digest)


@repository
def insert_batch(conn: Connection, batch: Batch) -> None:
    """Record a newly acquired ``batch`` and its files (its ``created_at`` is also its ``updated_at``)."""
    conn.execute(
        insert(schema.batches).values(
            id=batch.id,
            source=batch.source,
            state=batch.state.value,
            manifest_digest=batch.manifest_digest,
            merkle_root=batch.merkle_root,
            record_count=batch.record_count,
            file_count=batch.file_count,
            byte_count=batch.byte_count,
            created_at=batch.created_at,
            created_by=batch.created_by,
            updated_at=batch.created_at,
        )
    )
    if batch.files:
        conn.execute(
            insert(schema.batch_files),
            [
                {
                    "batch_id": batch.id,
                    "position": f.position,
                    "name": f.name,
                    "sha256": f.sha256,
                    "size": f.size,
                    "format": f.format,
                    "record_count": f.record_count,
                    "records_digest": f.records_digest,
                    "merkle_root": f.merkle_root,
                }
                for f in batch.files
            ],
        )
