"""The registry of batch checks that ``dataward screen BATCH`` runs.

Each check adapts ONE engine to the batch: ``integrity`` re-verifies the signed manifest, files, records and
Merkle roots (:func:`dataward.acquire.verify.verify_batch`); ``detection`` runs the poison-detector ensemble
(:func:`dataward.detect.api.detect`) on every record file; ``screening`` runs the screening suite
(:func:`dataward.screen.api.check_path`) on every record file. Whatever an engine gives is normalised into a
:class:`CheckOutcome`: findings with one severity scale, record numbers relative to the whole batch, flagged
records, PII counts and drift. An engine that cannot run on a file (no columns to infer, a format it does
not read, a module not installed) gives a *skipped* outcome with the reason; a crash gives an *error*
outcome. Results are values, never exceptions.
"""

from __future__ import annotations

import importlib
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from dataward.batches import Batch
from dataward.core.severity import SEVERITIES as _SEVERITIES
from dataward.core.severity import Severity
from dataward.errors import Error, InputError
from dataward.model.finding import MAX_FINDING_RECORDS as _MAX_FINDING_RECORDS
from dataward.model.finding import Finding
from dataward.plugins import Registry
from dataward.progress import Progress
from dataward.records.sandbox import SandboxError, run_sandboxed
from dataward.workflow.threat_feeds import active_feeds
from dataward.workspace import Workspace

#: the one severity scale's level names, lowest first (:class:`dataward.core.severity.Severity`)
SEVERITIES = _SEVERITIES
#: a screening finding at or above this severity flags the records it names
FLAG_SEVERITY = Severity.MEDIUM
#: at most this many record numbers are kept per finding in reports (counts stay exact)
MAX_FINDING_RECORDS = _MAX_FINDING_RECORDS


def severity_rank(severity: str) -> int:
    """The rank of a severity level (:meth:`Severity.rank_of`: unknown levels rank as info)."""
    return Severity.rank_of(severity)


def severity_of_score(score: float) -> Severity:
    """Map a 0..1 detector severity onto the screening scale (:meth:`Severity.of_score`).

    The inverse of :attr:`Severity.score`, through which calibrated detectors express
    :func:`dataward.core.evidence.severity_of_evidence` (one scale: docs/adr/0021-calibrated-alarms.md).
    """
    return Severity.of_score(score)


@dataclass(frozen=True)
class RecordFile:
    """One file of the batch as the engines read it: a local path, its format, its first record's number."""

    position: int
    name: str
    format: str
    path: Path
    offset: int  # number of the file's first record within the batch
    records: int
    sha256: str


@dataclass(frozen=True)
class CheckContext:
    """What a batch check may use: the workspace, the batch, its record files (local paths) and options."""

    ws: Workspace
    batch: Batch
    files: tuple[RecordFile, ...]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: Progress | None = None  # engines report their phases here (the CLI draws them on a terminal)

    def opts(self, check: str) -> dict[str, Any]:
        """This check's options (``--option CHECK.KEY=VALUE``), as a fresh dict."""
        return dict(self.options.get(check, {}))


def NormalFinding(
    engine: str,
    check: str,
    kind: str,
    severity: str,
    summary: str,
    file: str | None = None,
    records: tuple[int, ...] = (),
    n_records: int = 0,
) -> Finding:
    """Deprecated: build a :class:`dataward.model.finding.Finding` with the former positional order."""
    level = Severity.coerce(severity)
    return Finding(check, kind, level, summary, records, engine=engine, file=file, n_records=n_records)


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found. ``status``: passed | failed | skipped | error."""

    name: str
    engine: str
    status: str
    reason: str | None = None
    findings: tuple[Finding, ...] = ()
    flagged: frozenset[int] = frozenset()
    pii_counts: Mapping[str, int] = field(default_factory=dict)
    drift: tuple[Mapping[str, Any], ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: flagged records the engine counted but did not list (capped record lists, unmapped files)
    flagged_unlisted: int = 0

    @property
    def ran(self) -> bool:
        """Whether the check ran (passed or failed), rather than being skipped or crashing."""
        return self.status in ("passed", "failed")

    def to_json(self) -> dict[str, Any]:
        """The summary form in the signed screening report (counts, not the findings themselves)."""
        return {
            "name": self.name,
            "engine": self.engine,
            "status": self.status,
            "reason": self.reason,
            "findings": len(self.findings),
            "flagged": len(self.flagged) + self.flagged_unlisted,
            "stats": dict(self.stats),
            "seconds": round(self.seconds, 3),
        }


class BatchCheck(ABC):
    """A registered batch check: adapts one engine; ``run`` never raises for bad input."""

    name: ClassVar[str]
    engine: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def run(self, ctx: CheckContext) -> CheckOutcome:
        """Run the check on the batch; bad input gives a failed or skipped outcome, never an exception."""

    def _engine(
        self, ctx: CheckContext, module: str, known: Iterable[str]
    ) -> tuple[Any, dict[str, Any], dict[str, Any], CheckOutcome | None]:
        """Import an engine module lazily: (module, this check's options, engine kwargs, skip outcome)."""
        opts = ctx.opts(self.name)
        kwargs = {k: opts[k] for k in known if opts.get(k) is not None}
        try:
            return importlib.import_module(module), opts, kwargs, None
        except ModuleNotFoundError as exc:
            return (
                None,
                opts,
                kwargs,
                CheckOutcome(self.name, self.engine, "skipped", f"{module} not available ({exc.name})"),
            )


#: the batch checks shipped with dataward, in the order ``dataward screen BATCH`` runs them
BUILTIN = {
    "integrity": "dataward.workflow.checks:IntegrityCheck",
    "detection": "dataward.workflow.checks:DetectionCheck",
    "screening": "dataward.workflow.checks:ScreeningCheck",
}


#: the one registry of batch checks (:class:`dataward.plugins.Registry`)
REGISTRY: Registry[BatchCheck] = Registry("batch check", BatchCheck, BUILTIN, error=InputError)
#: its lookups (:class:`dataward.plugins.Registry`'s own methods)
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names


def run_check(check: BatchCheck, ctx: CheckContext) -> CheckOutcome:
    """Run ``check``; an unexpected exception becomes an ``error`` outcome naming where it happened."""
    t0 = time.perf_counter()
    try:
        out = check.run(ctx)
    except Exception as exc:  # an engine bug must not take screening down, nor hide that it did not run
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        out = CheckOutcome(check.name, check.engine, "error", f"{type(exc).__name__}: {str(exc)[:200]}{loc}")
    return replace(out, seconds=time.perf_counter() - t0)


def _status(findings: Iterable[Finding], flagged: frozenset[int]) -> str:
    bad = any(severity_rank(f.severity) >= severity_rank(FLAG_SEVERITY) for f in findings)
    return "failed" if bad or flagged else "passed"


def _per_file(
    ctx: CheckContext,
    supported: Mapping[str, str],
    run_file: Callable[[RecordFile, str], tuple[list[Finding], set[int], str | None]],
) -> tuple[list[Finding], set[int], list[str], int]:
    """Run ``run_file(file, engine_format)`` on every file; collect findings, flags and skip reasons."""
    findings: list[Finding] = []
    flagged: set[int] = set()
    skipped: list[str] = []
    ran = 0
    for rf in ctx.files:
        fmt = supported.get(rf.format)
        if fmt is None:
            skipped.append(f"{rf.name}: format {rf.format} is not read by this engine")
            continue
        if rf.records == 0:
            skipped.append(f"{rf.name}: no records")
            continue
        try:
            fs, fl, why = run_file(rf, fmt)
        except SandboxError as exc:
            # the worker parsing this file crashed or hit a limit: a refusal of the file, not a skip
            findings.append(
                Finding(
                    "sandbox",
                    "refused",
                    Severity.CRITICAL,
                    exc.message,
                    engine="dataward.records.sandbox",
                    file=rf.name,
                )
            )
            continue
        except Error as exc:
            skipped.append(f"{rf.name}: {exc.message}")
            continue
        if why is not None:
            skipped.append(f"{rf.name}: {why}")
            continue
        ran += 1
        findings.extend(fs)
        flagged |= fl
    return findings, flagged, skipped, ran


def _globalise(rf: RecordFile, records: Iterable[int], n_engine: int) -> tuple[int, ...]:
    """Record numbers within the file -> within the batch (only when the engine saw the same records)."""
    if n_engine != rf.records:
        return ()
    return tuple(rf.offset + int(r) for r in records if 0 <= int(r) < rf.records)


def _count_mismatch(engine: str, check: str, rf: RecordFile, n_engine: int) -> Finding:
    return Finding(
        check,
        "record_count_mismatch",
        Severity.MEDIUM,
        f"{engine} read {n_engine} records in {rf.name}, the manifest has {rf.records}; its findings are "
        "not mapped to records",
        engine=engine,
        file=rf.name,
    )


# --- integrity -----------------------------------------------------------------------------------------------


@register
class IntegrityCheck(BatchCheck):
    """Re-verify the quarantined batch: every object, record, Merkle root and the manifest signature."""

    name = "integrity"
    engine = "dataward.acquire.verify"
    description = "re-hash every quarantined object; check records, Merkle roots and the manifest signature"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        """Run :func:`dataward.acquire.verify.verify_batch` on the quarantine area; every problem is critical."""
        from dataward.acquire.verify import verify_batch

        report = verify_batch(ctx.ws, ctx.batch.id, area="quarantine")
        findings = tuple(
            Finding(
                self.name,
                p.kind,
                Severity.CRITICAL,
                p.line(),
                () if p.record is None else (p.record,),
                engine=self.engine,
                file=p.file,
                n_records=0 if p.record is None else 1,
            )
            for p in report.problems
        )
        stats: dict[str, Any] = {"files_checked": report.files_checked, "records_checked": report.records_checked}
        stats["signer"] = report.signer
        return CheckOutcome(self.name, self.engine, "passed" if report.ok else "failed", None, findings, stats=stats)


# --- detection -----------------------------------------------------------------------------------------------

_DETECT_FORMATS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "parquet": "parquet"}
_DETECT_OPTIONS = ("label", "text", "prompt", "response", "messages", "image", "features", "detectors", "exclude")


@register
class DetectionCheck(BatchCheck):
    """The poison-detector ensemble on each record file, sandboxed."""

    name = "detection"
    engine = "dataward.detect"
    description = "the poison-detector ensemble on each record file (columns inferred or given as options)"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        """Run :func:`dataward.detect.api.detect` on every readable file; findings mapped to batch record numbers."""
        api, opts, kwargs, missing = self._engine(ctx, "dataward.detect.api", _DETECT_OPTIONS)
        if missing is not None:
            return missing
        seed = int(opts.get("seed", 0))
        detectors_run: dict[str, int] = {}

        def run_file(rf: RecordFile, fmt: str) -> tuple[list[Finding], set[int], str | None]:
            report = run_sandboxed(
                api.detect, rf.path, where=rf.name, format=fmt, seed=seed, progress=ctx.progress, **kwargs
            )
            ran = [d for d in report.detectors if not d.get("skipped")]
            if not ran:
                why = "; ".join(f"{d['name']}: {d['skipped']}" for d in report.detectors) or "no detector applies"
                return [], set(), f"no detector ran ({why})"
            for d in ran:
                detectors_run[d["name"]] = detectors_run.get(d["name"], 0) + 1
            n = report.n_records
            out: list[Finding] = [] if n == rf.records else [_count_mismatch(self.engine, self.name, rf, n)]
            for f in report.findings:
                recs = _globalise(rf, f.records, n)
                out.append(
                    Finding(
                        f.check,
                        f.kind,
                        f.severity,
                        f.summary,
                        recs,
                        engine=self.engine,
                        file=rf.name,
                        n_records=len(f.records),
                        score=f.score,
                        p_value=f.p_value,
                    )
                )
            flagged = set(_globalise(rf, (int(i) for i in report.flagged.nonzero()[0]), n))
            return out, flagged, None

        findings, flagged, skipped, ran = _per_file(ctx, _DETECT_FORMATS, run_file)
        stats: dict[str, Any] = {"files_run": ran, "files_skipped": skipped, "detectors": detectors_run}
        if not ran:
            return CheckOutcome(self.name, self.engine, "skipped", "; ".join(skipped) or "no files", stats=stats)
        fl = frozenset(flagged)
        return CheckOutcome(self.name, self.engine, _status(findings, fl), None, tuple(findings), fl, stats=stats)


# --- screening suite -----------------------------------------------------------------------------------------


def _screen_context(ctx: CheckContext, policy_file: Any) -> dict[str, Any]:
    """What the suite needs from the workspace: its policy (``screening.policy=FILE`` or its defaults) and the
    licence the catalog records for the source (a declaration, so files need not repeat it)."""
    from dataward.screen.policy import ScreenPolicy
    from dataward.sources import get_source

    out: dict[str, Any] = {"policy": ScreenPolicy.load(str(policy_file)) if policy_file else ScreenPolicy()}
    licence = get_source(ctx.ws, ctx.batch.source).license
    if licence:
        out["source_licence"] = licence
    feeds = active_feeds(ctx.ws)  # every screen matches every loaded threat-intelligence feed
    if feeds:
        out["intel"] = feeds
    return out


_SCREEN_FORMATS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "parquet": "parquet", "text": "text"}
_SCREEN_OPTIONS = ("baseline", "label", "text", "group", "image", "licence_column", "checks")
_DRIFT_CHECKS = ("drift", "labels", "group_bias")


@register
class ScreeningCheck(BatchCheck):
    """The screening suite on each record file, sandboxed, with the workspace's policy, licence and intel feeds."""

    name = "screening"
    engine = "dataward.screen"
    description = "the screening suite (schema, ranges, PII, duplicates, licences, drift, intel...) on each file"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        """Run :func:`dataward.screen.api.check_path` on every readable file; flags records at medium or above."""
        api, opts, kwargs, missing = self._engine(ctx, "dataward.screen.api", _SCREEN_OPTIONS)
        if missing is not None:
            return missing
        kwargs.update(_screen_context(ctx, opts.get("policy")))
        pii: dict[str, int] = {}
        drift: list[dict[str, Any]] = []
        check_status: dict[str, str] = {}
        unlisted = [0]

        def run_file(rf: RecordFile, fmt: str) -> tuple[list[Finding], set[int], str | None]:
            report = run_sandboxed(
                api.check_path,
                rf.path,
                where=rf.name,
                format=fmt,
                seed=int(opts.get("seed", 0)),
                progress=ctx.progress,
                **kwargs,
            )
            n = report.n_records
            out: list[Finding] = [] if n == rf.records else [_count_mismatch(self.engine, self.name, rf, n)]
            flagged: set[int] = set()
            for r in report.results:
                if r.skipped and not r.findings:
                    check_status.setdefault(r.check, f"skipped: {r.skipped}")
                else:
                    check_status[r.check] = "ran"
                for f in r.findings:
                    sev = f.severity
                    recs = _globalise(rf, f.records, n)
                    count = int(f.evidence.get("n_records", len(f.records)))
                    out.append(
                        Finding(
                            f.check, f.kind, sev, f.summary, recs, engine=self.engine, file=rf.name, n_records=count
                        )
                    )
                    if sev.rank >= FLAG_SEVERITY.rank:
                        flagged.update(recs)
                        unlisted[0] += max(0, count - len(recs))
                    if f.check == "pii":
                        pii[f.kind] = pii.get(f.kind, 0) + count
                    if f.check in _DRIFT_CHECKS:
                        column = f.evidence.get("column")
                        drift.append(
                            {"file": rf.name, "check": f.check, "kind": f.kind, "severity": sev.value, "column": column}
                        )
            return out, flagged, None

        findings, flagged, skipped, ran = _per_file(ctx, _SCREEN_FORMATS, run_file)
        stats: dict[str, Any] = {"files_run": ran, "files_skipped": skipped, "checks": check_status}
        if not ran:
            return CheckOutcome(self.name, self.engine, "skipped", "; ".join(skipped) or "no files", stats=stats)
        fl = frozenset(flagged)
        status = _status(findings, fl)
        return CheckOutcome(
            self.name, self.engine, status, None, tuple(findings), fl, pii, tuple(drift), stats, 0.0, unlisted[0]
        )
