"""The response models of /api/v1: what each endpoint returns, in the OpenAPI document and checked on the way out.

Each model names the fields the CLI's ``--json`` output carries for the same object. The JSON stays the
library's own (``to_json()`` of its frozen values); a model only declares and validates it. Models of
objects whose nested parts belong to another layer (a screening report, a manifest, a rule tree) type those
parts as JSON objects and allow extra keys, so a field added below does not turn into a server error here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiModel",
    "ApprovalOut",
    "AuditCountsOut",
    "AuditEstimateOut",
    "AuditItemOut",
    "AuditOut",
    "BatchDetailOut",
    "BatchFileOut",
    "BatchOut",
    "CheckpointOut",
    "DecisionOut",
    "DiffOut",
    "InclusionOut",
    "LineageEdgeOut",
    "LineageOut",
    "LogEntryOut",
    "LogKeyOut",
    "OverviewOut",
    "PolicyOut",
    "RecordOut",
    "RecordRefOut",
    "RejectionOut",
    "RiskFactorOut",
    "SampleOut",
    "SourceRiskOut",
    "StatementOut",
    "VersionCheckOut",
    "VersionOut",
    "WhoAmIOut",
]

JSON = dict[str, Any]


class ApiModel(BaseModel):
    """Base of every response model: frozen, and keys the model does not name pass through unchanged."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class WhoAmIOut(ApiModel):
    """The principal a token stands for, its roles (``ROLE`` or ``ROLE@SOURCE``) and the signing mode."""

    principal: str
    roles: list[str]
    token: str
    server_side_signing: bool


class RiskFactorOut(ApiModel):
    """One factor of a source's risk score."""

    factor: str
    points: float
    explanation: str


class SourceRiskOut(ApiModel):
    """A source's risk assessment (as `dataward source list --by-risk --json`)."""

    source: str
    kind: str
    score: float
    tier: str
    factors: list[RiskFactorOut]


class BatchFileOut(ApiModel):
    """One file of a batch as acquired."""

    name: str
    sha256: str
    size: int
    format: str
    records: int
    records_digest: str | None
    merkle_root: str


class BatchOut(ApiModel):
    """A batch (as `dataward batch show --json`)."""

    id: str
    source: str
    state: str
    manifest_digest: str
    merkle_root: str
    records: int
    files: list[BatchFileOut]
    bytes: int
    acquired_at: str
    acquired_by: str


class LogEntryOut(ApiModel):
    """One audit-log entry (as `dataward log show --json`)."""

    seq: int
    time: str
    principal: str
    action: str
    subject: str
    details: JSON
    keyid: str
    leaf_hash: str


class OverviewOut(ApiModel):
    """The console's first page: sources by risk, batches and their states, recent log, open incidents."""

    sources: list[SourceRiskOut]
    batches: list[BatchOut]
    batch_states: dict[str, int]
    recent_log: list[LogEntryOut]
    incidents: list[JSON]


class BatchDetailOut(ApiModel):
    """A batch, its signed manifest and its latest screening report (None before screening)."""

    batch: BatchOut
    manifest: JSON
    screening: JSON | None


class RecordOut(ApiModel):
    """One record's content, PII masked and re-hashed (``path`` is never revealed)."""

    record: int
    file: str
    file_record: int
    format: str
    kind: str
    value: Any
    path: None = None
    verified: bool | None


class AuditItemOut(ApiModel):
    """A sampled record with its decision and, when flagged, the finding that flagged it."""

    record: int
    stratum: str
    digest: str
    decision: str | None
    new_label: str | None
    reviewer: str | None
    finding: JSON | None
    trigger: str | None


class AuditCountsOut(ApiModel):
    """Decisions in one stratum of the audit sample."""

    size: int
    decided: int
    ok: int
    wrong_label: int
    malicious: int
    unsure: int
    errors: int


class AuditEstimateOut(ApiModel):
    """The label audit's error estimate (as `dataward audit report --json`)."""

    batch: str
    status: str
    population: int
    flagged_population: int
    random: AuditCountsOut
    flagged: AuditCountsOut
    undecided: int
    malicious: int
    confidence: float
    method: str
    error_rate: float | None
    interval: list[float | None]


class AuditOut(ApiModel):
    """The label audit of a batch: whether it was sampled, the items in review order, the estimate."""

    batch: str
    state: str
    sampled: bool
    items: list[AuditItemOut]
    estimate: AuditEstimateOut | None


class SampleOut(ApiModel):
    """The audit sample just drawn (or enlarged)."""

    batch: str
    tier: str
    population: int
    flagged_population: int
    random: int
    flagged: int
    added: int
    seed: str | int
    params: JSON


class DecisionOut(ApiModel):
    """A recorded review decision."""

    batch: str
    record: int
    decision: str
    new_label: str | None


class PolicyOut(ApiModel):
    """The policy's rule-by-rule evaluation of a batch (as `dataward policy check BATCH --json`)."""

    batch: str
    source: str
    state: str
    tier: str
    risk: SourceRiskOut
    policy: JSON
    passed: bool
    rules: JSON
    failing: list[str]
    approvals: JSON


class StatementOut(ApiModel):
    """An unsigned in-toto Statement v1 (its ``_type`` key passes through)."""

    subject: list[JSON]
    predicateType: str
    predicate: JSON


class ApprovalOut(ApiModel):
    """A recorded approval, and how many of the required approvals the batch now has."""

    batch: str
    approver: str
    attestation: str
    approvals: int
    required: int
    state: str
    complete: bool


class RejectionOut(ApiModel):
    """A rejected batch, its former state, the reason and the signed rejection."""

    batch: str
    state: str
    from_state: str
    reason: str
    attestation: str


class VersionOut(ApiModel):
    """A dataset version (as `dataward dataset show --json`)."""

    version: str
    dataset: str
    number: int
    parent: int | None
    kind: str
    manifest_sha256: str
    merkle_root: str
    records: int
    batches: list[str]
    created_at: str
    created_by: str


class VersionCheckOut(VersionOut):
    """A dataset version with the result of a quick verification."""

    verified: bool
    problems: list[str]


class RecordRefOut(ApiModel):
    """A record by leaf digest, batch, file and index."""

    digest: str
    batch: str
    file: str
    record: int


class DiffOut(ApiModel):
    """Records added and removed between two versions (as `dataward diff A B --json`)."""

    from_: str = Field(alias="from")
    to: str
    added: list[RecordRefOut]
    removed: list[RecordRefOut]
    added_count: int
    removed_count: int
    unchanged_count: int
    batches_added: list[str]
    batches_removed: list[str]


class LineageEdgeOut(ApiModel):
    """An edge of the lineage graph: ``from`` -> ``to`` with its relation."""

    from_: str = Field(alias="from")
    to: str
    relation: str


class LineageOut(ApiModel):
    """The lineage graph (or the part around ``target``): nodes by id and type, edges."""

    target: str | None
    nodes: list[JSON]
    edges: list[LineageEdgeOut]


class CheckpointOut(ApiModel):
    """The log's latest signed checkpoint: origin, size, root hash (hex) and the signed note."""

    origin: str
    size: int
    root: str
    note: str


class LogKeyOut(ApiModel):
    """The log's origin and its verifier key (what a witness or an auditor pins)."""

    origin: str
    verifier_key: str


class InclusionOut(ApiModel):
    """An inclusion proof of a log entry, the log key, and the server's own check of the proof."""

    proof: JSON
    log_key: str
    server_check: JSON
