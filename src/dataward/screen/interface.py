"""The screening-check plug-in interface.

A check looks at one batch (a table read in record batches, streamed) and returns a :class:`CheckResult`:
findings with a severity, evidence and the implicated records (0-based positions in the input). Results
are values, never exceptions: a check that cannot run on some input returns a result with ``skipped`` set.

Checks stream: the runner calls :meth:`Check.begin` once, :meth:`Check.update` for every record batch,
then (only if :meth:`Check.wants_second_pass` says so) :meth:`Check.update_second` for every batch again
(to collect the records of findings known only at the end), then :meth:`Check.finish`. One pass serves all
checks, so reading the data is paid once. :meth:`Check.run` drives that protocol for a check run alone.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from dataward.core.canonical import canonical_json
from dataward.core.severity import Severity
from dataward.errors import Error
from dataward.model.finding import Finding
from dataward.model.finding import jsonable as _jsonable

if TYPE_CHECKING:
    from dataward.screen.baseline import Baseline, Profile
    from dataward.screen.intel import Indicator
    from dataward.screen.policy import ScreenPolicy

__all__ = [
    "MAX_RECORDS",
    "Check",
    "CheckContext",
    "CheckResult",
    "Finding",
    "Options",
    "ScreenError",
    "ScreenReport",
    "Severity",
]

#: most implicated records a finding lists (the full count is in ``evidence["n_records"]``)
MAX_RECORDS = 1000


class ScreenError(Error):
    """Screening could not run on this input (unreadable file, unknown check, bad baseline...)."""

    exit_code = 2
    default_advice = "Check the input file, its format (--format) and the column options (--label, --text)."


@dataclass(frozen=True)
class CheckResult:
    """What one check found: its findings, statistics, seconds, and why it was skipped (if it was)."""
    check: str
    findings: tuple[Finding, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None

    @property
    def max_severity(self) -> Severity | None:
        """The most severe finding's severity, or ``None`` without findings."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form in the screening report (docs/findings.schema.json)."""
        return {
            "check": self.check,
            "findings": [f.to_dict() for f in self.findings],
            "stats": _jsonable(self.stats),
            "seconds": round(self.seconds, 4),
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class ScreenReport:
    """Everything one screening run found, in check order."""

    subject: str
    n_records: int
    columns: tuple[str, ...]
    results: tuple[CheckResult, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        """Every finding of every check, most severe first."""
        out = [f for r in self.results for f in r.findings]
        out.sort(key=lambda f: -f.severity.rank)
        return out

    @property
    def max_severity(self) -> Severity | None:
        """The most severe finding's severity, or ``None`` without findings."""
        sevs = [f.severity for f in self.findings]
        return max(sevs, key=lambda s: s.rank) if sevs else None

    def failed(self, threshold: Severity) -> bool:
        """True when any finding is at or above ``threshold``."""
        return any(f.severity.rank >= threshold.rank for f in self.findings)

    def result(self, check: str) -> CheckResult | None:
        """The result of ``check``, or ``None`` if it did not run."""
        for r in self.results:
            if r.check == check:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``dataward.screen/v1``): counts by severity and every check's result."""
        counts = {s.value: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.value] += 1
        return {
            "report": "dataward.screen/v1",
            "subject": self.subject,
            "n_records": self.n_records,
            "columns": list(self.columns),
            "params": _jsonable(self.params),
            "seconds": round(self.seconds, 4),
            "max_severity": self.max_severity.value if self.max_severity else None,
            "finding_counts": counts,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as text: indented, or canonical JSON with ``indent=None``."""
        if indent is None:
            return canonical_json(self.to_dict()).decode("utf-8")
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)

    def summary(self, *, max_findings: int = 40) -> str:
        """A plain-text summary for terminals and logs."""
        lines = [
            f"dataward screen: {self.subject}",
            f"  {self.n_records} records, {len(self.columns)} columns, {len(self.results)} checks, "
            f"{self.seconds:.2f} s",
        ]
        for r in self.results:
            state = f"skipped ({r.skipped})" if r.skipped else f"{len(r.findings)} finding(s)"
            lines.append(f"  - {r.check}: {state}")
        findings = self.findings
        if findings:
            lines.append("findings (most severe first):")
            for f in findings[:max_findings]:
                n = f.evidence.get("n_records", len(f.records))
                lines.append(f"  [{f.severity.value.upper():8}] {f.check}/{f.kind}: {f.summary} ({n} records)")
            if len(findings) > max_findings:
                lines.append(f"  ... and {len(findings) - max_findings} more (see the JSON report)")
        else:
            lines.append("no findings")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML report (inline SVG plots, no scripts, no network)."""
        from dataward.screen._report_html import render_html

        return render_html(self)


@dataclass
class Options:
    """Column roles and switches for one screening run."""

    label: str | None = None
    text: tuple[str, ...] = ()
    group: tuple[str, ...] = ()
    image: tuple[str, ...] = ()
    licence_column: str | None = None
    source_licence: str | None = None  # the licence the workspace records for the batch's source
    seed: int = 0


@dataclass
class CheckContext:
    """What a check may use. ``batches`` re-reads the input (conformed to one schema) from the start."""

    subject: str
    schema: pa.Schema
    batches: Callable[[], Iterator[pa.RecordBatch]]
    options: Options
    policy: ScreenPolicy
    baseline: Baseline | None = None
    indicators: Sequence[Indicator] = ()
    files: Sequence[str] = ()  # the input files (for file-level checks: digests, licences)
    n_records: int = 0  # known after the first pass
    batch_profile: Profile | None = None  # known after the first pass (checks that need it read it in finish)
    conform_issues: list[Finding] = field(default_factory=list)  # schema/type problems found while reading

    def string_columns(self) -> list[str]:
        """Names of the input's string columns."""
        return [f.name for f in self.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]

    def text_columns(self) -> list[str]:
        """The free-text columns: those given as options, else those the baseline profiled as text."""
        if self.options.text:
            return [c for c in self.options.text if c in self.schema.names]
        if self.baseline is not None:
            return [c.name for c in self.baseline.profile.columns.values() if c.role == "text"]
        return []


class Check(ABC):
    """A registered screening check. Subclasses set ``name`` and implement the streaming protocol."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: checks that compare against a trusted baseline are skipped without one
    needs_baseline: ClassVar[bool] = False
    #: whether the check reads ``ctx.batch_profile`` (a run of checks that do not skips building it)
    needs_batch_profile: ClassVar[bool] = True
    #: whether the runner may call this check's hooks on a worker thread while other checks run theirs; a
    #: check's own calls always come in order, one at a time. A check that shares mutable state with others
    #: (a module-level cache without a lock, ...) leaves it False and runs on the calling thread.
    thread_safe: ClassVar[bool] = False

    def __init__(self) -> None:
        self.ctx: CheckContext | None = None

    def applies(self, ctx: CheckContext) -> str | None:
        """Why the check cannot run on ``ctx`` (then it is reported as skipped), or None."""
        if self.needs_baseline and ctx.baseline is None:
            return "no baseline given"
        return None

    def begin(self, ctx: CheckContext) -> None:
        """Start a run over ``ctx`` (subclasses reset their state here and call ``super().begin``)."""
        self.ctx = ctx

    def update(self, batch: pa.RecordBatch, offset: int) -> None:  # noqa: B027 - optional hook
        """Look at one record batch; ``offset`` is the position of its first record in the input."""

    def wants_second_pass(self) -> bool:
        """Whether the runner must call :meth:`update_second` for every batch (after the first pass)."""
        return False

    def update_second(self, batch: pa.RecordBatch, offset: int) -> None:  # noqa: B027 - optional hook
        """Second look, after every batch was seen once (to collect implicated records)."""

    @abstractmethod
    def finish(self) -> CheckResult:
        """The result, after all batches were seen."""

    def run(self, ctx: CheckContext) -> CheckResult:
        """Run this check alone over ``ctx`` (the runner in :mod:`dataward.screen.api` batches all checks)."""
        reason = self.applies(ctx)
        if reason:
            return CheckResult(self.name, skipped=reason)
        self.begin(ctx)
        offset = 0
        for batch in ctx.batches():
            self.update(batch, offset)
            offset += batch.num_rows
        ctx.n_records = offset
        if self.wants_second_pass():
            offset = 0
            for batch in ctx.batches():
                self.update_second(batch, offset)
                offset += batch.num_rows
        return self.finish()

    @property
    def context(self) -> CheckContext:
        """The run's context; raises :class:`ScreenError` before :meth:`begin`."""
        if self.ctx is None:
            raise ScreenError(f"check {self.name!r} used before begin()")
        return self.ctx
