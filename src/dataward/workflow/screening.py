"""``dataward screen BATCH``: run the registered batch checks, sign the report, move the batch to screened.

The integrity check always runs first; a batch that no longer verifies is not screened (the attempt is
logged as a ``batch.screen`` entry with ``integrity: failed`` and counts against its source's risk).
"""

from __future__ import annotations

import hmac
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataward import lifecycle
from dataward.batches import Batch, BatchState, load_batch
from dataward.core.canonical import canonical_json
from dataward.errors import ConflictError, IntegrityError, NotFoundError
from dataward.identity import Actor
from dataward.model.finding import Finding
from dataward.progress import Progress, phase
from dataward.sources import get_source
from dataward.store import screenings
from dataward.timeutil import now_iso
from dataward.workflow import checks as registry
from dataward.workflow._common import authorize, key_owner, read_attestation, read_json_object
from dataward.workflow.checks import CheckContext, CheckOutcome, RecordFile
from dataward.workspace import Workspace

DEFAULT_CHECKS = ("integrity", "detection", "screening")


@dataclass(frozen=True)
class ScreeningReport:
    """The one normalised screening result the policy reads (and the predicate of the signed report)."""

    batch: str
    source: str
    manifest: str
    merkle_root: str
    records: int
    created_at: str
    screened_by: str
    checks: tuple[Mapping[str, Any], ...]
    findings: tuple[Finding, ...]
    findings_by_severity: Mapping[str, int]
    flagged_records: tuple[int, ...]
    pii_counts: Mapping[str, int]
    licence: Mapping[str, Any]
    drift: tuple[Mapping[str, Any], ...]
    integrity_ok: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    envelope_digest: str | None = None
    #: flagged records an engine counted without listing them (its record lists are capped)
    flagged_unlisted: int = 0

    @property
    def flagged_count(self) -> int:
        """Records flagged, an upper bound when some were not listed (overlaps are then counted twice)."""
        return min(self.records, len(self.flagged_records) + self.flagged_unlisted)

    @property
    def flagged_fraction(self) -> float:
        """The share of the batch's records flagged (0 for an empty batch)."""
        return self.flagged_count / self.records if self.records else 0.0

    def check(self, name: str) -> Mapping[str, Any] | None:
        """The outcome of check ``name`` (None: it did not run)."""
        for c in self.checks:
            if c["name"] == name:
                return c
        return None

    def to_predicate(self, flagged_digest: str) -> dict[str, Any]:
        """The predicate of the signed screening report (naming the flagged-record list by its digest)."""
        return {
            "batch": self.batch,
            "source": self.source,
            "manifest": self.manifest,
            "merkle_root": self.merkle_root,
            "records": self.records,
            "screened_at": self.created_at,
            "screened_by": self.screened_by,
            "checks": [dict(c) for c in self.checks],
            "findings_by_severity": dict(self.findings_by_severity),
            "findings": [f.to_json() for f in self.findings[:500]],
            "findings_total": len(self.findings),
            "flagged": {
                "count": self.flagged_count,
                "listed": len(self.flagged_records),
                "fraction": self.flagged_fraction,
                "sha256": flagged_digest,
            },
            "pii_counts": dict(self.pii_counts),
            "licence": dict(self.licence),
            "drift": [dict(d) for d in self.drift],
            "integrity_ok": self.integrity_ok,
            "options": dict(self.options),
        }

    @classmethod
    def from_predicate(cls, p: Mapping[str, Any], flagged: Sequence[int], envelope_digest: str) -> ScreeningReport:
        """The report read back from its signed predicate, its flagged-record list and its envelope digest."""
        return cls(
            batch=p["batch"],
            source=p["source"],
            manifest=p["manifest"],
            merkle_root=p["merkle_root"],
            records=int(p["records"]),
            created_at=p["screened_at"],
            screened_by=p["screened_by"],
            checks=tuple(p["checks"]),
            findings=tuple(Finding.from_json(f) for f in p["findings"]),
            findings_by_severity=dict(p["findings_by_severity"]),
            flagged_records=tuple(int(i) for i in flagged),
            pii_counts=dict(p["pii_counts"]),
            licence=dict(p["licence"]),
            drift=tuple(p["drift"]),
            integrity_ok=bool(p["integrity_ok"]),
            options=dict(p.get("options", {})),
            envelope_digest=envelope_digest,
            flagged_unlisted=int(p["flagged"]["count"]) - int(p["flagged"].get("listed", p["flagged"]["count"])),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form `screen --json` prints: the predicate with the flagged records listed (up to 1,000)
        and each finding's id."""
        out = self.to_predicate(flagged_digest="")
        out["flagged"].pop("sha256")
        out["flagged"]["records"] = list(self.flagged_records[:1000])
        out["attestation"] = self.envelope_digest
        for i, f in enumerate(out["findings"]):  # BATCH#N names the finding (rollback --without-records)
            f["id"] = f"{self.batch}#{i}"
        return out


def _materialise(ws: Workspace, batch: Batch, tmp: Path) -> tuple[RecordFile, ...]:
    """Local paths for the batch's quarantined files (zero-copy on a local store), with record offsets."""
    out: list[RecordFile] = []
    offset = 0
    for f in batch.files:
        local = ws.objects.local_path("quarantine", f.sha256)
        suffix = Path(f.name).suffix
        dest = tmp / f"{f.position:05d}{suffix}"
        if local is not None:
            try:
                dest.symlink_to(local)
            except OSError:
                shutil.copyfile(local, dest)
        else:
            with ws.objects.open("quarantine", f.sha256) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
        out.append(RecordFile(f.position, f.name, f.format, dest, offset, f.record_count, f.sha256))
        offset += f.record_count
    return tuple(out)


def build_report(
    ws: Workspace, batch: Batch, actor: str, outcomes: Sequence[CheckOutcome], options: Mapping[str, Any]
) -> ScreeningReport:
    """Combine the checks' outcomes into one report: findings by severity, flagged records, personal data,
    licence and drift."""
    src = get_source(ws, batch.source)
    findings = [f for o in outcomes for f in o.findings]
    findings.sort(key=lambda f: (-registry.severity_rank(f.severity), f.check, f.kind))
    by_sev = {s: 0 for s in registry.SEVERITIES}
    for f in findings:
        by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
    flagged = sorted(set().union(*(o.flagged for o in outcomes))) if outcomes else []
    pii: dict[str, int] = {}
    for o in outcomes:
        for k, v in o.pii_counts.items():
            pii[k] = pii.get(k, 0) + int(v)
    licence_findings = [f.to_json() for f in findings if f.check in ("licences", "licence")]
    integrity = next((o for o in outcomes if o.name == "integrity"), None)
    return ScreeningReport(
        batch=batch.id,
        source=batch.source,
        manifest=batch.manifest_digest,
        merkle_root=batch.merkle_root,
        records=batch.record_count,
        created_at=now_iso(),
        screened_by=actor,
        checks=tuple(o.to_json() for o in outcomes),
        findings=tuple(findings),
        findings_by_severity=by_sev,
        flagged_records=tuple(flagged),
        pii_counts=pii,
        licence={"expression": src.license, "status": src.license_status, "findings": licence_findings[:20]},
        drift=tuple(d for o in outcomes for d in o.drift),
        integrity_ok=integrity is not None and integrity.status == "passed",
        options=dict(options),
        flagged_unlisted=sum(o.flagged_unlisted for o in outcomes),
    )


def screen_batch(
    ws: Workspace,
    actor: Actor,
    batch_id: str,
    *,
    checks: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    engine_progress: Progress | None = None,
) -> ScreeningReport:
    """Screen a quarantined batch; on success the batch is ``screened`` and the signed report stored.

    ``progress`` is called with each check's name as it starts; ``engine_progress`` gets a phase over the
    checks and is handed to the engines for their own phases (records read, detectors run)."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    subject = f"batch:{batch_id}"
    authorize(ws, actor, "batch.screen", subject, batch.source)
    if batch.state != BatchState.QUARANTINED:
        raise ConflictError(
            f"batch {batch_id} is {batch.state}; only a quarantined batch can be screened",
            advice="Screening happens once, right after acquisition.",
        )
    names = list(dict.fromkeys(["integrity", *(checks if checks is not None else DEFAULT_CHECKS)]))
    instances = [registry.get(n)() for n in names]
    opts = {k: dict(v) for k, v in (options or {}).items()}
    outcomes: list[CheckOutcome] = []
    with tempfile.TemporaryDirectory(prefix="dataward-screen-") as tmp:
        ctx = CheckContext(ws, batch, _materialise(ws, batch, Path(tmp)), opts, engine_progress)
        task = phase(engine_progress, f"screening {batch_id}", len(instances), unit="checks")
        for check in instances:
            if progress:
                progress(check.name)
            task.update(note=check.name)
            try:
                out = registry.run_check(check, ctx)
            except BaseException:
                task.done()
                raise
            task.advance(1)
            outcomes.append(out)
            if check.name == "integrity" and out.status != "passed":
                problems = [f.summary for f in out.findings[:5]] or [out.reason or "verification did not run"]
                ws.record(
                    actor, "batch.screen", subject, {"batch": batch_id, "integrity": "failed", "problems": problems}
                )
                raise IntegrityError(
                    f"batch {batch_id} does not verify, so it is not screened: {problems[0]}",
                    advice=f"Run `dataward verify {batch_id}` for every problem; reject the batch.",
                )
        task.done()
    report = build_report(ws, batch, actor.name, outcomes, opts)
    flagged_digest = ws.objects.put_bytes("meta", canonical_json(list(report.flagged_records)))
    predicate = report.to_predicate(flagged_digest)
    with ws.change(actor, "batch.screen", subject, source=batch.source) as ch:
        lifecycle.transition(ch, batch_id, BatchState.SCREENED)
        digest = lifecycle.attest(
            ws, ch, [(subject, batch.manifest_digest)], lifecycle.PREDICATE_REPORT, predicate, batch_id=batch_id
        )
        screenings.insert_screening(
            ch.conn,
            batch_id=batch_id,
            envelope_digest=digest,
            flagged_digest=flagged_digest,
            flagged_count=report.flagged_count,
            created_at=report.created_at,
            created_by=actor.name,
        )
        ch.details.update(
            {
                "integrity": "passed",
                "checks": {o.name: o.status for o in outcomes},
                "findings_by_severity": dict(report.findings_by_severity),
                "flagged": report.flagged_count,
                "flagged_sha256": flagged_digest,
            }
        )
    return ScreeningReport.from_predicate(predicate, report.flagged_records, digest)


def latest_report(ws: Workspace, batch_id: str) -> ScreeningReport:
    """The batch's screening report, read back from its signed attestation (signature verified)."""
    with ws.engine.connect() as conn:
        row = screenings.latest_screening(conn, batch_id)
    if row is None:
        raise NotFoundError(
            f"batch {batch_id} has no screening report", advice=f"Screen it first: `dataward screen {batch_id}`."
        )
    st, kid = read_attestation(ws, row.envelope_digest, lifecycle.PREDICATE_REPORT)
    owner = key_owner(ws, kid)
    if owner is None or owner.principal != row.created_by:
        raise IntegrityError(f"screening report of batch {batch_id} is not signed by its screener {row.created_by}")
    pred = st.predicate
    named = pred.get("flagged", {}).get("sha256")
    if not isinstance(named, str) or not hmac.compare_digest(named.encode(), str(row.flagged_digest).encode()):
        raise IntegrityError(f"screening report of batch {batch_id} does not name its flagged-record list")
    flagged = read_json_object(ws, row.flagged_digest)
    return ScreeningReport.from_predicate(pred, flagged, row.envelope_digest)


def report_id(ws: Workspace, batch_id: str) -> int | None:
    """The catalog id of the batch's newest screening report (None: never screened)."""
    with ws.engine.connect() as conn:
        row = screenings.latest_screening(conn, batch_id)
    return None if row is None else row.id
