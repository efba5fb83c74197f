"""Batches as domain values: a delivery, its files and its lifecycle state. Pure (no I/O)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["Batch", "BatchFile", "BatchState"]


class BatchState(enum.StrEnum):
    """Where a batch is in its lifecycle (docs/workflow.md)."""

    QUARANTINED = "quarantined"
    SCREENED = "screened"
    AUDITED = "audited"
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"
    REVOKED = "revoked"


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch as acquired: its digest, size, format, record count and roots."""

    position: int
    name: str
    sha256: str
    size: int
    format: str
    record_count: int
    records_digest: str | None
    merkle_root: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `batch show --json` prints."""
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
    """One delivery from one source: its state, manifest digest, Merkle root, counts and files."""

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
        """The JSON form `batch show --json` prints."""
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
