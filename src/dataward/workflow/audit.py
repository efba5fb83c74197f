"""Label audits: a spot-check sample, reviewers' decisions, and the estimated label-error rate.

The sample has two strata. The *random* stratum is a simple random sample (without replacement) of all the
batch's records: it alone gives the unbiased error estimate, with an exact Clopper-Pearson or a Wilson
interval. The *flagged* stratum adds records screening flagged, by risk: every record a critical or
high finding names (or, past the tier's ``max_flagged``, a sample sized to bound the bad fraction among
them, stated in the summary), then medium, then other flagged records, within ``max_flagged`` (0: all).
They are reviewed first, for what they are, and kept out of the estimate (reported on their own).
Sizes come from the source's risk tier (policy ``[tiers.X.audit]``) unless given.

Decisions: ``ok``, ``wrong-label:NEW``, ``malicious``, ``unsure``. The latest decision on a record wins;
all are kept. For the estimate a record is an error when it is wrong-label, malicious or unsure (unsure
counts against the batch). The seed of every draw comes from ``secrets`` and is logged, so nobody picks
a convenient sample and anyone can re-draw it.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataward import lifecycle
from dataward.batches import Batch, BatchState, load_batch
from dataward.core.canonical import canonical_json
from dataward.errors import ConflictError, InputError, IntegrityError, NotFoundError
from dataward.identity import Actor
from dataward.model.workflow_records import Audit, AuditItem, ReviewDecision
from dataward.records.leaves import leaf_list
from dataward.store import audits
from dataward.store.catalog import Transaction
from dataward.timeutil import now_iso
from dataward.workflow import screening
from dataward.workflow._tiers import tier_for
from dataward.workflow.attestations import authorize, key_owner, read_attestation
from dataward.workflow.checks import severity_rank
from dataward.workspace import Workspace

DECISIONS = ("ok", "wrong-label", "malicious", "unsure")
ERROR_DECISIONS = frozenset({"wrong-label", "malicious", "unsure"})
METHODS = ("clopper-pearson", "wilson")
#: an undo: the record's earlier decisions stay in the history, the record is undecided again
WITHDRAWN = "withdrawn"


# --- statistics ------------------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    from scipy.stats import norm  # scipy is imported when a statistic is needed, not at CLI start-up

    return float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))


def interval(k: int, n: int, confidence: float = 0.95, method: str = "clopper-pearson") -> tuple[float, float]:
    """Two-sided interval for a binomial proportion ``k/n`` (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside 0..{n}")
    if method not in METHODS:
        raise InputError(f"unknown interval method {method!r}; one of {', '.join(METHODS)}")
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence, method="exact" if method == "clopper-pearson" else "wilson")
    lo = 0.0 if k == 0 else max(0.0, float(ci.low))
    hi = 1.0 if k == n else min(1.0, float(ci.high))
    return min(lo, k / n), max(hi, k / n)


def sample_size(population: int, margin: float, confidence: float = 0.95, p: float = 0.5) -> int:
    """Records needed for a ±``margin`` estimate of a proportion near ``p`` (normal approximation, FPC)."""
    if population <= 0:
        return 0
    z = _z(confidence)
    n0 = z * z * p * (1 - p) / (margin * margin)
    n = n0 / (1 + (n0 - 1) / population)
    return int(min(population, max(1, math.ceil(n))))


def _smallest(ok: Any, hi: int = 10_000_000) -> int | None:
    if not ok(hi):
        return None
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def size_for_margin(p: float, margin: float, confidence: float = 0.95, method: str = "clopper-pearson") -> int | None:
    """Random records needed so the interval around an observed rate ``p`` is at most ±``margin`` wide."""

    def ok(n: int) -> bool:
        k = round(p * n)
        lo, hi = interval(k, n, confidence, method)
        return max(hi - k / n, k / n - lo) <= margin

    return _smallest(ok)


def size_to_pass(p: float, limit: float, confidence: float = 0.95, method: str = "clopper-pearson") -> int | None:
    """Random records needed for the upper bound to drop to ``limit`` if the rate stays ``p`` (None: never)."""
    if p >= limit:
        return None
    return _smallest(lambda n: interval(round(p * n), n, confidence, method)[1] <= limit)


# --- values ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision on one sampled record, as submitted: ``ok``, ``wrong-label`` (with the new
    label), ``malicious``, ``unsure`` or ``withdrawn``."""

    record: int
    decision: str
    new_label: str | None = None
    note: str | None = None


def parse_decision(text: str, where: str = "decision") -> tuple[str, str | None]:
    """``ok`` | ``wrong-label:NEW`` | ``malicious`` | ``unsure`` -> (decision, new label)."""
    t = text.strip()
    head, sep, label = t.partition(":")
    head = head.strip().lower()
    if head == WITHDRAWN and not sep:
        return head, None
    if head not in DECISIONS:
        raise InputError(f"{where}: {text!r} is not a decision; use ok, wrong-label:NEW, malicious or unsure")
    if head == "wrong-label":
        if not sep or not label.strip():
            raise InputError(f"{where}: wrong-label needs the correct label, as wrong-label:NEW")
        return head, label.strip()
    if sep:
        raise InputError(f"{where}: only wrong-label takes a label after ':'")
    return head, None


@dataclass(frozen=True)
class StratumStats:
    """Decision counts of one stratum of an audit sample."""

    size: int
    decided: int
    ok: int
    wrong_label: int
    malicious: int
    unsure: int

    @property
    def errors(self) -> int:
        """Records decided wrong-label, malicious or unsure (unsure counts against the batch)."""
        return self.wrong_label + self.malicious + self.unsure

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the counts, with the error total."""
        return {
            "size": self.size,
            "decided": self.decided,
            "ok": self.ok,
            "wrong_label": self.wrong_label,
            "malicious": self.malicious,
            "unsure": self.unsure,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class AuditEstimate:
    """The label-error estimate of a batch's audit: both strata's counts, the interval, and what a tighter
    margin or a pass would need."""

    batch: str
    status: str
    population: int
    flagged_population: int
    random: StratumStats
    flagged: StratumStats
    confidence: float
    method: str
    rate: float
    lower: float
    upper: float
    flagged_rate: float | None
    margin_target: float | None
    needed_for_margin: int | None = None
    needed_to_pass: int | None = None
    pass_limit: float | None = None
    completed_by: str | None = None
    attestation: str | None = None

    @property
    def n(self) -> int:
        """Decided records of the random stratum: the estimate's sample size."""
        return self.random.decided

    @property
    def errors(self) -> int:
        """Errors among the decided random records (wrong-label, malicious or unsure)."""
        return self.random.errors

    @property
    def malicious(self) -> int:
        """Records marked malicious in either stratum."""
        return self.random.malicious + self.flagged.malicious

    @property
    def undecided(self) -> int:
        """Sampled records of either stratum that have no decision yet."""
        return (self.random.size - self.random.decided) + (self.flagged.size - self.flagged.decided)

    @property
    def complete(self) -> bool:
        """Whether the audit is complete (signed by its completer)."""
        return self.status == "complete"

    def to_json(self) -> dict[str, Any]:
        """The JSON form `audit show --json` prints (and the audit attestation signs, less its status)."""
        return {
            "batch": self.batch,
            "status": self.status,
            "population": self.population,
            "flagged_population": self.flagged_population,
            "random": self.random.to_json(),
            "flagged": self.flagged.to_json(),
            "undecided": self.undecided,
            "malicious": self.malicious,
            "confidence": self.confidence,
            "method": self.method,
            "error_rate": self.rate,
            "interval": [self.lower, self.upper],
            "flagged_error_rate": self.flagged_rate,
            "margin_target": self.margin_target,
            "needed_for_margin": self.needed_for_margin,
            "needed_to_pass": self.needed_to_pass,
            "pass_limit": self.pass_limit,
            "completed_by": self.completed_by,
            "attestation": self.attestation,
        }


@dataclass(frozen=True)
class SampleItem:
    """One sampled record with its place in the batch, its leaf hash and its latest decision."""

    record: int
    stratum: str
    draw: int
    file_position: int
    file_record: int
    record_digest: str
    decision: str | None = None
    new_label: str | None = None
    reviewer: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form `audit show --json` prints for each sampled record."""
        return {
            "record": self.record,
            "stratum": self.stratum,
            "digest": self.record_digest,
            "decision": self.decision,
            "new_label": self.new_label,
            "reviewer": self.reviewer,
        }


@dataclass(frozen=True)
class SampleSummary:
    """What a draw did: the tier, the population, both strata's sizes, how many records it added, and its seed."""

    batch: str
    tier: str
    population: int
    flagged_population: int
    random_size: int
    flagged_size: int
    added: int
    seed: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON form `audit sample --json` prints."""
        return {
            "batch": self.batch,
            "tier": self.tier,
            "population": self.population,
            "flagged_population": self.flagged_population,
            "random": self.random_size,
            "flagged": self.flagged_size,
            "added": self.added,
            "seed": self.seed,
            "params": self.params,
        }


# --- drawing the sample ----------------------------------------------------------------------------------------


def _require_audit(conn: Transaction, batch_id: str) -> Audit:
    row = audits.load_audit(conn, batch_id)
    if row is None:
        raise NotFoundError(
            f"batch {batch_id} has no audit sample", advice=f"Draw one: `dataward audit sample {batch_id}`."
        )
    return row


def _uniform(rng: np.random.Generator, population: int, need: int, exclude: set[int]) -> list[int]:
    """``need`` distinct record numbers in [0, population) not in ``exclude``, uniformly at random.

    A uniformly random ordered sample of ``need + len(exclude)`` numbers, with the excluded ones dropped,
    is a uniformly random ordered sample of the others (numpy draws it without materialising the population).
    """
    need = min(need, population - len(exclude))
    if need <= 0:
        return []
    drawn = rng.choice(population, size=min(population, need + len(exclude)), replace=False)
    return [int(i) for i in drawn.tolist() if int(i) not in exclude][:need]


def locate(ws: Workspace, batch: Batch, records: Iterable[int]) -> dict[int, tuple[int, int, str]]:
    """record number -> (file position, record within file, leaf hash hex) from the stored leaf lists."""
    wanted = sorted(set(records))
    out: dict[int, tuple[int, int, str]] = {}
    offset = 0
    j = 0
    for f in batch.files:
        end = offset + f.record_count
        mine = []
        while j < len(wanted) and wanted[j] < end:
            mine.append(wanted[j])
            j += 1
        if mine:
            leaves = b""
            if f.records_digest:
                leaves = leaf_list(ws.objects, f.sha256, f.records_digest)
            for r in mine:
                i = r - offset
                out[r] = (f.position, i, leaves[32 * i : 32 * i + 32].hex())
        offset = end
    return out


#: risk strata of the flagged part, in review order: the most severe finding naming a record decides
RISK_STRATA = ("high", "medium", "other")


def risk_of_records(findings: Iterable[Any]) -> dict[int, Any]:
    """record number -> the most severe finding that names it (findings come sorted, most severe first)."""
    out: dict[int, Any] = {}
    for f in sorted(findings, key=lambda f: -severity_rank(f.severity)):
        for r in f.records:
            out.setdefault(int(r), f)
    return out


def _risk_stratum(finding: Any) -> str:
    if finding is None:
        return "other"
    return "high" if finding.severity in ("high", "critical") else "medium" if finding.severity == "medium" else "other"


def _flagged_by_risk(
    rng: np.random.Generator, report: Any, exclude: set[int], cap: int, margin: float, confidence: float
) -> tuple[list[int], dict[str, Any]]:
    """The flagged part of a sample, by risk: every record of a critical or high finding, then medium, then
    the other flagged records, each within what the tier's ``max_flagged`` leaves (0: no cap).

    The high stratum is never cut to fit the cap: when it holds more records than the cap, a uniform sample
    sized to estimate the bad fraction among them within ``margin`` at ``confidence`` is drawn instead (at
    least ``cap`` records), and the summary states it, so the miss rate is bounded rather than silent.
    """
    by_record = risk_of_records(report.findings)
    pools: dict[str, list[int]] = {s: [] for s in RISK_STRATA}
    severe = {r for r, f in by_record.items() if _risk_stratum(f) != "other"}
    for r in sorted(set(report.flagged_records) | severe):
        if r not in exclude:
            pools[_risk_stratum(by_record.get(r))].append(r)
    chosen: list[int] = []
    stated: dict[str, Any] = {}
    room = cap if cap else None
    for name in RISK_STRATA:
        pool = pools[name]
        take = len(pool) if room is None else min(len(pool), room)
        bound = None
        if name == "high" and take < len(pool):
            take = min(len(pool), max(take, sample_size(len(pool), margin, confidence, 0.5)))
            bound = {"margin": margin, "confidence": confidence}
        picked = sorted(int(i) for i in rng.choice(pool, size=take, replace=False)) if take else []
        chosen.extend(picked)
        stated[name] = {"population": len(pool), "sampled": len(picked), "complete": len(picked) == len(pool)}
        if bound is not None:
            stated[name]["bad_fraction_bound"] = bound
        if room is not None:
            room = max(0, room - len(picked))
    return chosen, stated


def draw_sample(
    ws: Workspace,
    actor: Actor,
    batch_id: str,
    *,
    size: int | None = None,
    margin: float | None = None,
    confidence: float | None = None,
) -> SampleSummary:
    """Draw (or enlarge) the audit sample of a screened batch, sized by its source's risk tier."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
        existing = audits.load_audit(conn, batch_id)
    subject = f"batch:{batch_id}"
    authorize(ws, actor, "audit.sample", subject, batch.source)
    if batch.state != BatchState.SCREENED:
        raise ConflictError(
            f"batch {batch_id} is {batch.state}; an audit sample is drawn from a screened batch",
            advice=f"Screen it first: `dataward screen {batch_id}`." if str(batch.state) == "quarantined" else None,
        )
    if existing is not None and existing.status != "open":
        raise ConflictError(f"the audit of batch {batch_id} is complete; its sample cannot change")
    if size is not None and size < 1:
        raise InputError("--size must be at least 1")
    if margin is not None and not 0.001 <= margin <= 0.5:
        raise InputError("--margin must be between 0.001 and 0.5")
    if confidence is not None and not 0.5 <= confidence < 1:
        raise InputError("--confidence must be in [0.5, 1)")
    tier, tp, _risk, _policy = tier_for(ws, batch)
    params = tp.audit
    conf = (
        confidence if confidence is not None else (existing.confidence if existing is not None else params.confidence)
    )
    marg = margin if margin is not None else params.margin
    population = batch.record_count
    target = size if size is not None else sample_size(population, marg, conf, params.expected_error_rate)
    target = min(target, population)
    report = screening.latest_report(ws, batch_id)
    flagged = set(report.flagged_records)
    seed = secrets.token_hex(16)
    rng = np.random.default_rng(int(seed, 16))
    with ws.engine.connect() as conn:
        items = {} if existing is None else {r.record: r for r in audits.audit_items(conn, existing.id)}
    in_random = {r for r, it in items.items() if it.stratum == "random"}
    if existing is not None and target <= len(in_random):
        raise ConflictError(
            f"the sample of batch {batch_id} already has {len(in_random)} random record(s) (asked for {target})",
            advice="Ask for a larger --size (or a smaller --margin) to enlarge it.",
        )
    new_random = _uniform(rng, population, target - len(in_random), in_random)
    new_flagged: list[int] = []
    risk: dict[str, Any] = {}
    if existing is None:
        new_flagged, risk = _flagged_by_risk(rng, report, set(new_random), params.max_flagged, marg, conf)
    located = locate(ws, batch, [*new_random, *new_flagged])
    moved = [r for r in new_random if r in items]  # flagged-stratum records drawn at random join the random stratum
    summary_params = {
        "margin": marg,
        "confidence": conf,
        "size": size,
        "expected_error_rate": params.expected_error_rate,
        **({"risk": risk} if risk else {}),
    }
    with ws.change(actor, "audit.sample", subject, source=batch.source) as ch:
        if lifecycle.current_state(ch, batch_id) != BatchState.SCREENED:
            raise ConflictError(f"batch {batch_id} changed state meanwhile; retry")
        if existing is None:
            rid = screening.report_id(ws, batch_id)
            assert rid is not None  # the batch is screened, so its report is indexed
            audit_id = audits.insert_audit(
                ch.conn,
                batch_id=batch_id,
                report_id=rid,
                seed=seed,
                population=population,
                flagged_population=len(flagged),
                confidence=conf,
                margin=marg,
                created_at=now_iso(),
                created_by=actor.name,
            )
        else:
            audit_id = existing.id
            audits.set_margin(ch.conn, audit_id, marg)
        draw0 = len(items)
        rows = []
        for k, r in enumerate([x for x in new_random if x not in items] + new_flagged):
            pos, i, leaf = located[r]
            stratum = "random" if k < len(new_random) - len(moved) else "flagged"
            rows.append(AuditItem(r, stratum, draw0 + k, pos, i, leaf))
        audits.insert_items(ch.conn, audit_id, rows)
        audits.move_to_random(ch.conn, audit_id, moved)
        random_size = len(in_random) + len(new_random)
        flagged_size = len(items) - len(in_random) - len(moved) + len(new_flagged)
        ch.details.update(
            {
                "batch": batch_id,
                "tier": tier,
                "seed": seed,
                "random": random_size,
                "flagged": flagged_size,
                "added": len(new_random) + len(new_flagged),
                "population": population,
                "flagged_population": len(flagged),
                # every drawn record, so the catalog's sample is a projection the log can check
                "items": [[r.record, r.stratum, r.record_digest] for r in rows],
                "moved": sorted(int(r) for r in moved),
                **summary_params,
            }
        )
    return SampleSummary(
        batch_id,
        tier,
        population,
        len(flagged),
        random_size,
        flagged_size,
        len(new_random) + len(new_flagged),
        seed,
        summary_params,
    )


# --- decisions -------------------------------------------------------------------------------------------------


def sample_items(ws: Workspace, batch_id: str) -> list[SampleItem]:
    """The sample in drawing order, each with its latest decision."""
    with ws.engine.connect() as conn:
        audit = _require_audit(conn, batch_id)
        items = audits.audit_items(conn, audit.id)
        latest = _latest_decisions(conn, audit.id)
    out = []
    for it in items:
        d = latest.get(it.record)
        out.append(
            SampleItem(
                it.record,
                it.stratum,
                it.draw,
                it.file_position,
                it.file_record,
                it.record_digest,
                d.decision if d else None,
                d.new_label if d else None,
                d.reviewer if d else None,
            )
        )
    return out


def _latest_decisions(conn: Transaction, audit_id: int) -> dict[int, ReviewDecision]:
    """record -> its latest decision; a record whose latest decision was withdrawn (undo) has none."""
    latest = audits.latest_decisions(conn, audit_id)
    return {k: d for k, d in latest.items() if d.decision != WITHDRAWN}


def record_decisions(
    ws: Workspace, actor: Actor, batch_id: str, decisions: Sequence[Decision], *, origin: str | None = None
) -> int:
    """Record reviewers' decisions on sampled records (one transaction, one log entry)."""
    if not decisions:
        raise InputError("no decisions to record")
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
        audit = _require_audit(conn, batch_id)
        sampled = {it.record for it in audits.audit_items(conn, audit.id)}
    subject = f"batch:{batch_id}"
    authorize(ws, actor, "audit.decide", subject, batch.source)
    if audit.status != "open":
        raise ConflictError(f"the audit of batch {batch_id} is complete; decisions are closed")
    for d in decisions:
        if d.decision not in (*DECISIONS, WITHDRAWN):
            raise InputError(f"record {d.record}: {d.decision!r} is not a decision ({', '.join(DECISIONS)})")
        if d.decision == "wrong-label" and not d.new_label:
            raise InputError(f"record {d.record}: wrong-label needs the correct label")
        if d.record not in sampled:
            raise InputError(
                f"record {d.record} is not in the audit sample of batch {batch_id}",
                advice=f"List the sample with `dataward audit show {batch_id}`.",
            )
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d.decision] = counts.get(d.decision, 0) + 1
    with ws.change(actor, "audit.decide", subject, source=batch.source) as ch:
        if lifecycle.current_state(ch, batch_id) != BatchState.SCREENED:
            raise ConflictError(f"batch {batch_id} is no longer screened; decisions are closed")
        at = now_iso()
        audits.insert_decisions(
            ch.conn,
            audit.id,
            [ReviewDecision(d.record, actor.name, d.decision, d.new_label, d.note, at) for d in decisions],
        )
        ch.details.update({"batch": batch_id, "decisions": counts, "records": [d.record for d in decisions[:50]]})
        ch.details["by_record"] = [[d.record, d.decision, d.new_label] for d in decisions]
        if origin:
            ch.details["from"] = origin
    return len(decisions)


def read_decisions_file(path: Path, sample: Sequence[SampleItem] = ()) -> list[Decision]:
    """Decisions from a CSV (header: record, decision[, new_label][, note][, digest]) or JSONL file.

    ``decision`` may be written ``wrong-label:NEW`` or as ``wrong-label`` with a ``new_label`` column. A
    ``digest`` (the record's leaf hash, hex) is checked against the sample when given.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {i}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path} line {i}: expected a JSON object")
            rows.append((f"{path} line {i}", obj))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "record" not in reader.fieldnames or "decision" not in reader.fieldnames:
            raise InputError(f"{path}: the CSV header must name the columns record and decision")
        for row in reader:
            rows.append((f"{path} line {reader.line_num}", dict(row)))
    digests = {s.record: s.record_digest for s in sample}
    out: list[Decision] = []
    for where, obj in rows:
        try:
            rec = int(str(obj.get("record", "")).strip())
        except ValueError:
            raise InputError(f"{where}: record must be a record number, not {obj.get('record')!r}") from None
        text = str(obj.get("decision") or "")
        extra = obj.get("new_label")
        if extra and ":" not in text:
            text = f"{text}:{extra}"
        decision, label = parse_decision(text, where)
        digest = obj.get("digest")
        if digest and rec in digests and not hmac.compare_digest(str(digest).lower().encode(), digests[rec].encode()):
            raise InputError(f"{where}: digest of record {rec} does not match the sampled record")
        note = obj.get("note")
        out.append(Decision(rec, decision, label, str(note) if note else None))
    if not out:
        raise InputError(f"{path}: no decisions in the file")
    return out


# --- the estimate and completion -------------------------------------------------------------------------------


def _stats(items: Sequence[SampleItem], stratum: str) -> StratumStats:
    mine = [i for i in items if i.stratum == stratum]
    c = {d: sum(1 for i in mine if i.decision == d) for d in DECISIONS}
    return StratumStats(len(mine), sum(c.values()), c["ok"], c["wrong-label"], c["malicious"], c["unsure"])


def estimate(
    ws: Workspace,
    batch_id: str,
    *,
    method: str | None = None,
    margin: float | None = None,
    pass_limit: float | None = None,
) -> AuditEstimate:
    """The label-error estimate from the random stratum, and what a tighter margin needs."""
    with ws.engine.connect() as conn:
        audit = _require_audit(conn, batch_id)
    items = sample_items(ws, batch_id)
    rnd, flg = _stats(items, "random"), _stats(items, "flagged")
    if method is None:
        with ws.engine.connect() as conn:
            batch = load_batch(conn, batch_id)
        method = tier_for(ws, batch)[1].audit.method
    if method not in METHODS:
        raise InputError(f"unknown interval method {method!r}; one of {', '.join(METHODS)}")
    conf = audit.confidence
    n, k = rnd.decided, rnd.errors
    lo, hi = interval(k, n, conf, method)
    rate = k / n if n else 0.0
    target = margin if margin is not None else (audit.margin if audit.margin else None)
    if target is not None and n and max(hi - rate, rate - lo) <= target:
        target = max(0.001, round(max(hi - rate, rate - lo) / 2, 4))  # already met: show the next step
    p = rate if n else 0.1
    needed = size_for_margin(p, target, conf, method) if target else None
    to_pass = size_to_pass(p, pass_limit, conf, method) if pass_limit is not None and n else None
    f_rate = flg.errors / flg.decided if flg.decided else None
    return AuditEstimate(
        batch_id,
        audit.status,
        audit.population,
        audit.flagged_population,
        rnd,
        flg,
        conf,
        method,
        rate,
        lo,
        hi,
        f_rate,
        target,
        needed,
        to_pass,
        pass_limit,
        audit.completed_by,
        audit.envelope_digest,
    )


def complete_audit(ws: Workspace, actor: Actor, batch_id: str) -> AuditEstimate:
    """Sign the audit attestation and move the batch to ``audited`` (every sampled record decided)."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
        audit = _require_audit(conn, batch_id)
    subject = f"batch:{batch_id}"
    authorize(ws, actor, "audit.complete", subject, batch.source)
    if audit.status != "open":
        raise ConflictError(f"the audit of batch {batch_id} is already complete")
    est = estimate(ws, batch_id)
    if est.undecided:
        raise ConflictError(
            f"{est.undecided} sampled record(s) of batch {batch_id} have no decision yet",
            advice=f"Review them: `dataward audit review {batch_id}` or `dataward audit import {batch_id} FILE`.",
        )
    if est.random.size == 0:
        raise ConflictError(f"the audit sample of batch {batch_id} has no random records")
    items = sample_items(ws, batch_id)
    decisions_doc = [
        {
            "record": i.record,
            "stratum": i.stratum,
            "digest": i.record_digest,
            "decision": i.decision,
            "new_label": i.new_label,
            "reviewer": i.reviewer,
        }
        for i in items
    ]
    decisions_digest = ws.objects.put_bytes("meta", canonical_json(decisions_doc))
    report = screening.latest_report(ws, batch_id)
    reviewers = sorted({str(i.reviewer) for i in items if i.reviewer})
    predicate = {
        "batch": batch_id,
        "source": batch.source,
        "manifest": batch.manifest_digest,
        "merkle_root": batch.merkle_root,
        "screening_report": report.envelope_digest,
        "seed": audit.seed,
        "estimate": {k: v for k, v in est.to_json().items() if k not in ("status", "completed_by", "attestation")},
        "decisions": {"sha256": decisions_digest, "count": len(decisions_doc)},
        "reviewers": reviewers,
        "completed_by": actor.name,
        "completed_at": now_iso(),
    }
    with ws.change(actor, "audit.complete", subject, source=batch.source) as ch:
        lifecycle.transition(ch, batch_id, BatchState.AUDITED)
        digest = lifecycle.attest(
            ws, ch, [(subject, batch.manifest_digest)], lifecycle.PREDICATE_AUDIT, predicate, batch_id=batch_id
        )
        audits.mark_complete(
            ch.conn,
            audit.id,
            completed_at=str(predicate["completed_at"]),
            completed_by=actor.name,
            envelope_digest=digest,
        )
        ch.details.update(
            {"error_rate": est.rate, "interval": [est.lower, est.upper], "n": est.n, "malicious": est.malicious}
        )
    return estimate(ws, batch_id)


def verify_completed(ws: Workspace, est: AuditEstimate) -> None:
    """A complete audit's counts must be those its completer signed (the catalog rows were not edited since)."""
    if not est.complete or est.attestation is None:
        return
    st, kid = read_attestation(ws, est.attestation, lifecycle.PREDICATE_AUDIT)
    owner = key_owner(ws, kid)
    if owner is None or owner != est.completed_by:
        raise IntegrityError(f"the audit attestation of batch {est.batch} is not signed by {est.completed_by}")
    signed = st.predicate.get("estimate", {}) if isinstance(st.predicate, dict) else {}
    now = est.to_json()
    for key in ("random", "flagged", "malicious", "population"):
        if signed.get(key) != now[key]:
            raise IntegrityError(
                f"the audit of batch {est.batch} no longer matches its signed attestation ({key} differs)",
                advice="The catalog's audit rows were changed after completion: investigate with the audit log.",
            )


def audit_exists(ws: Workspace, batch_id: str) -> bool:
    """Whether an audit sample was drawn for the batch."""
    with ws.engine.connect() as conn:
        return audits.load_audit(conn, batch_id) is not None


#: the former private name, kept for code written against it
_locate = locate
