"""The one finding type: what a detector, screening check, model scan or batch check found. Pure.

A :class:`Finding` names the check (or detector) that found it, its kind, a
:class:`~dataward.core.severity.Severity`,
a one-line summary, the implicated records (0-based, capped) and evidence. Batch checks
(:mod:`dataward.workflow.checks`) also say which engine ran the check and in which file of the batch the
records are; their record numbers are relative to the whole batch. ``n_records`` is the exact count of
implicated records (``records`` may be capped).

Two JSON forms, both pinned by signed artefacts: :meth:`Finding.to_dict` is the screening report's
(docs/findings.schema.json: evidence kept, records as found) and :meth:`Finding.to_json` the signed batch
screening report's (engine and file kept, evidence dropped, records capped at
:data:`MAX_FINDING_RECORDS`).

Detectors build theirs with :meth:`Finding.scored`: the 0..1 ``score`` (1 = most suspicious) is kept
beside the severity it maps to (:meth:`Severity.of_score <dataward.core.severity.Severity.of_score>`), and
``p_value`` is the finding's p-value against the detector's null, which fusion
(:mod:`dataward.detect.api`) tests. Neither is part of the JSON forms above, which stay as signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataward.core.severity import Severity

__all__ = ["MAX_FINDING_RECORDS", "Finding", "jsonable"]

#: at most this many record numbers are kept per finding in batch reports (counts stay exact)
MAX_FINDING_RECORDS = 100


@dataclass(frozen=True)
class Finding:
    """One problem: which check, what kind, how bad, why (evidence), which records (possibly capped)."""

    check: str
    kind: str
    severity: Severity
    summary: str
    records: tuple[int, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: the engine that ran the check (batch checks: ``dataward.detect``, ``dataward.screen``, ...)
    engine: str = ""
    #: the batch file the records are in (batch checks)
    file: str | None = None
    #: exact number of implicated records; defaults to ``evidence["n_records"]`` or ``len(records)``
    n_records: int | None = None
    #: a detector's 0..1 score behind ``severity`` (1 = most suspicious); None for rule-based checks
    score: float | None = None
    #: the p-value against the detector's stated null (clean baseline, permutation or conformal);
    #: None when not calibrated. Fusion and severity read this, not ``score`` alone.
    p_value: float | None = None

    @classmethod
    def scored(
        cls,
        *,
        check: str,
        kind: str,
        summary: str,
        records: tuple[int, ...],
        evidence: Mapping[str, Any],
        score: float,
        p_value: float | None = None,
    ) -> Finding:
        """A detector's finding: ``severity`` is :meth:`Severity.of_score` of ``score``, which is kept."""
        return cls(
            check=check,
            kind=kind,
            severity=Severity.of_score(score),
            summary=summary,
            records=records,
            evidence=evidence,
            score=float(score),
            p_value=p_value,
        )

    @property
    def rank_score(self) -> float:
        """The 0..1 score: the detector's, else the severity's representative (within a severity a report
        orders its findings by evidence first, then by this score: ``dataward.detect.api``)."""
        return self.severity.score if self.score is None else self.score

    def __post_init__(self) -> None:
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity.coerce(self.severity))
        if not isinstance(self.records, tuple):
            object.__setattr__(self, "records", tuple(int(r) for r in self.records))
        if self.n_records is None:
            object.__setattr__(self, "n_records", int(self.evidence.get("n_records", len(self.records))))

    @property
    def count(self) -> int:
        """The exact number of implicated records."""
        return int(self.n_records or 0)

    def to_dict(self) -> dict[str, Any]:
        """The screening report's form (docs/findings.schema.json)."""
        return {
            "check": self.check,
            "kind": self.kind,
            "severity": self.severity.value,
            "summary": self.summary,
            "records": list(self.records),
            "n_records": int(self.evidence.get("n_records", len(self.records))),
            "evidence": jsonable(self.evidence),
        }

    def to_json(self) -> dict[str, Any]:
        """The signed batch screening report's form (engine and file, records capped, no evidence)."""
        return {
            "engine": self.engine,
            "check": self.check,
            "kind": self.kind,
            "severity": self.severity.value,
            "summary": self.summary,
            "file": self.file,
            "records": list(self.records[:MAX_FINDING_RECORDS]),
            "n_records": self.count,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        """Read :meth:`to_json`'s form back."""
        return cls(
            check=str(d["check"]),
            kind=str(d["kind"]),
            severity=Severity.coerce(str(d["severity"])),
            summary=str(d["summary"]),
            records=tuple(int(r) for r in d.get("records", ())),
            engine=str(d["engine"]),
            file=d.get("file"),
            n_records=int(d.get("n_records", 0)),
        )


def jsonable(value: Any) -> Any:
    """Make ``value`` JSON-safe: no NaN/inf (as strings), tuples as lists, non-str keys as str."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return str(value)
