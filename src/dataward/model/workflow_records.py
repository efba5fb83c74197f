"""What the gate between quarantine and approval keeps in the catalog, as frozen values. Pure (no I/O).

The catalog's rows for screening reports, label audits, reviewers' decisions, approvals and loaded
threat-intelligence feeds are projections of signed artefacts; :mod:`dataward.store` reads them into these
values so that :mod:`dataward.workflow` never sees a database row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Approval",
    "Audit",
    "AuditItem",
    "FeedRecord",
    "LoggedAction",
    "ReviewDecision",
    "ScreeningRecord",
]


@dataclass(frozen=True)
class Approval:
    """One recorded approval of a batch: the approver, the key that signed it, when, and its attestation."""

    principal: str
    keyid: str
    at: str
    attestation: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy check --json` prints under ``approvals.have``."""
        return {"principal": self.principal, "keyid": self.keyid, "at": self.at, "attestation": self.attestation}


@dataclass(frozen=True)
class ScreeningRecord:
    """A batch's screening report as indexed in the catalog: the signed report and its flagged-record list."""

    id: int
    batch_id: str
    envelope_digest: str
    flagged_digest: str
    flagged_count: int
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Audit:
    """A batch's label audit: the draw's seed and parameters, and its completion once signed."""

    id: int
    batch_id: str
    report_id: int
    seed: str
    population: int
    flagged_population: int
    confidence: float
    margin: float | None
    status: str  # open | complete
    created_at: str
    created_by: str
    completed_at: str | None = None
    completed_by: str | None = None
    envelope_digest: str | None = None


@dataclass(frozen=True)
class AuditItem:
    """One sampled record of an audit: its stratum, drawing order, place in the batch and leaf hash (hex)."""

    record: int
    stratum: str  # random | flagged
    draw: int
    file_position: int
    file_record: int
    record_digest: str


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's decision on one sampled record, as recorded (the latest one per record wins)."""

    record: int
    reviewer: str
    decision: str
    new_label: str | None
    note: str | None
    decided_at: str


@dataclass(frozen=True)
class FeedRecord:
    """A loaded version of a threat-intelligence feed: the signed feed's digest and the key that verified it."""

    feed_id: str
    version: int
    issuer: str
    feed_digest: str
    public_key: str  # raw Ed25519, hex
    indicators: int
    added_at: str
    added_by: str


@dataclass(frozen=True)
class LoggedAction:
    """One audit-log entry as history reads it: its action, subject and details."""

    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
