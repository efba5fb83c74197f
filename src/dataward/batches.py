"""Batches: one delivery from one source, and its lifecycle state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from dataward.errors import NotFoundError
from dataward.store import schema
from dataward.workspace import Workspace


class BatchState(enum.StrEnum):
    QUARANTINED = "quarantined"
    SCREENED = "screened"
    AUDITED = "audited"
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"
    REVOKED = "revoked"


@dataclass(frozen=True)
class BatchFile:
    position: int
    name: str
    sha256: str
    size: int
    format: str
    record_count: int
    records_digest: str | None
    merkle_root: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "records": self.record_count,
            "records_digest": self.records_digest,
            "merkle_root": self.merkle_root,
        }


@dataclass(frozen=True)
class Batch:
    id: str
    source: str
    state: BatchState
    manifest_digest: str
    merkle_root: str
    record_count: int
    file_count: int
    byte_count: int
    created_at: str
    created_by: str
    files: tuple[BatchFile, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "state": str(self.state),
            "manifest_digest": self.manifest_digest,
            "merkle_root": self.merkle_root,
            "records": self.record_count,
            "files": [f.to_json() for f in self.files],
            "bytes": self.byte_count,
            "acquired_at": self.created_at,
            "acquired_by": self.created_by,
        }


def load_batch(conn: Connection, batch_id: str) -> Batch:
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


def get_batch(ws: Workspace, batch_id: str) -> Batch:
    with ws.engine.connect() as conn:
        return load_batch(conn, batch_id)


def list_batches(ws: Workspace, *, source: str | None = None, state: str | None = None) -> list[Batch]:
    t = schema.batches
    q = select(t.c.id).order_by(t.c.created_at)
    if source:
        q = q.where(t.c.source == source)
    if state:
        q = q.where(t.c.state == state)
    with ws.engine.connect() as conn:
        ids: list[str] = list(conn.execute(q).scalars())
        return [load_batch(conn, i) for i in ids]
