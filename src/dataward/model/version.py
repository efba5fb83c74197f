"""Dataset versions as domain values: an immutable, signed selection of batches. Pure (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Version"]


@dataclass(frozen=True)
class Version:
    """Version ``number`` of ``dataset``: its parent, kind (release or rollback), manifest, root and batches."""

    dataset: str
    number: int
    parent: int | None
    kind: str
    manifest_digest: str
    merkle_root: str
    record_count: int
    batches: tuple[str, ...]
    created_at: str
    created_by: str

    @property
    def spec(self) -> str:
        """``DATASET@N``."""
        return f"{self.dataset}@{self.number}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form `dataset show --json` prints."""
        return {
            "version": self.spec,
            "dataset": self.dataset,
            "number": self.number,
            "parent": self.parent,
            "kind": self.kind,
            "manifest_sha256": self.manifest_digest,
            "merkle_root": self.merkle_root,
            "records": self.record_count,
            "batches": list(self.batches),
            "created_at": self.created_at,
            "created_by": self.created_by,
        }
