"""Training runs as domain values: the model files that went in and came out, and the run itself. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Artifact", "Run"]


@dataclass(frozen=True)
class Artifact:
    """A model file by name, SHA-256 and size (0 when only the digest was recorded)."""

    name: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The JSON form `run show --json` prints."""
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Run:
    """A recorded training run: the version it read, its principal and times, its provenance and outputs."""

    id: str
    version: str
    version_manifest: str
    status: str
    principal: str
    started_at: str
    finished_at: str
    provenance_digest: str
    base_model: Artifact | None
    outputs: tuple[Artifact, ...]

    @property
    def dataset(self) -> str:
        """The dataset of the version the run trained on."""
        return self.version.rsplit("@", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The JSON form `run show --json` prints."""
        return {
            "id": self.id,
            "version": self.version,
            "version_manifest": self.version_manifest,
            "status": self.status,
            "principal": self.principal,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "provenance_sha256": self.provenance_digest,
            "base_model": self.base_model.to_json() if self.base_model else None,
            "models": [a.to_json() for a in self.outputs],
        }
