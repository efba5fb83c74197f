"""Source risk: a score in [0, 100] and a tier (low/medium/high/critical), explained factor by factor.

Each factor adds points; the explanation says why. Factors: the source's kind (web-scraped > third-party
> checkpoint > internal > synthetic), whether its deliveries are supplier-signed, the age of the supplier
key, how often it updates, its licence status, and its integrity history from the audit log: refused
deliveries (``batch.refuse``), batches that failed integrity at screening, rejected batches, incidents.
Tiers drive audit sample sizes and which policy rules apply (see docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dataward.sources import Source, SourceKind, get_source, list_sources
from dataward.store import source_history
from dataward.store.batches import batch_ids as source_batch_ids
from dataward.timeutil import now, parse_iso
from dataward.workspace import Workspace

TIERS = ("low", "medium", "high", "critical")
#: score at which each tier starts (low starts at 0)
DEFAULT_TIER_THRESHOLDS: Mapping[str, float] = {"medium": 25.0, "high": 50.0, "critical": 75.0}

KIND_POINTS: Mapping[str, int] = {
    SourceKind.WEB_SCRAPED: 40,
    SourceKind.THIRD_PARTY: 25,
    SourceKind.CHECKPOINT: 20,
    SourceKind.INTERNAL: 8,
    # a synthetic label alone earns no trust: the "regeneration" factor adds points until batches regenerate
    SourceKind.SYNTHETIC: 5,
}
FREQUENCY_POINTS: Mapping[str | None, int] = {
    "hourly": 10,
    "daily": 7,
    "weekly": 4,
    "irregular": 6,
    "monthly": 2,
    "quarterly": 1,
    "yearly": 1,
    "once": 0,
    None: 4,
}
LICENCE_POINTS: Mapping[str, int] = {"spdx": 0, "non-spdx": 6, "missing": 12}
#: points per past event, and the cap for each kind of event
HISTORY_POINTS: Mapping[str, tuple[int, int]] = {
    "refusals": (8, 24),
    "integrity_failures": (12, 36),
    "rejections": (6, 24),
    "incidents": (15, 45),
}
KEY_MAX_AGE_DAYS = 365


@dataclass(frozen=True)
class Factor:
    """One risk factor of a source: its name, the points it adds and why."""

    name: str
    points: float
    explanation: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `risk show --json` prints for each factor."""
        return {"factor": self.name, "points": self.points, "explanation": self.explanation}


@dataclass(frozen=True)
class RiskAssessment:
    """A source's risk: its score in [0, 100], its tier and every factor that adds to it."""

    source: str
    kind: str
    score: float
    tier: str
    factors: tuple[Factor, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form `risk show --json` prints."""
        return {
            "source": self.source,
            "kind": self.kind,
            "score": self.score,
            "tier": self.tier,
            "factors": [f.to_json() for f in self.factors],
        }

    def explain(self) -> str:
        """The factors that add points, on one line (or ``no risk factor``)."""
        return (
            "; ".join(f"{f.name} +{f.points:g} ({f.explanation})" for f in self.factors if f.points) or "no risk factor"
        )


def tier_of(score: float, thresholds: Mapping[str, float] | None = None) -> str:
    """The tier a score falls in, under the default thresholds overridden by ``thresholds``."""
    th = {**DEFAULT_TIER_THRESHOLDS, **(thresholds or {})}
    tier = "low"
    for t in TIERS[1:]:
        if score >= th[t]:
            tier = t
    return tier


@dataclass
class _History:
    deliveries: int = 0
    signed: int = 0
    checksummed: int = 0
    refusals: int = 0
    integrity_failures: int = 0
    rejections: int = 0
    incidents: int = 0


def _history(ws: Workspace, source: str) -> _History:
    """The source's record in the log; only its own entries are read (and incident entries, which are few)."""
    h = _History()
    with ws.engine.connect() as conn:
        batch_ids = source_batch_ids(conn, source=source)
        h.refusals = source_history.count_entries(conn, "batch.refuse", f"source:{source}")
        for opened in source_history.entries_of(conn, "incident.open"):
            h.incidents += _mentions(opened.details, source, set(batch_ids), opened.subject)
        actions = ("batch.acquire", "batch.screen", "batch.reject")
        for entry in source_history.entries_on(conn, actions, [f"batch:{i}" for i in batch_ids]):
            details = entry.details
            if entry.action == "batch.acquire":
                h.deliveries += 1
                method = details.get("supplier_verification")
                h.signed += method == "dsse"
                h.checksummed += method == "sha256sums"
            elif entry.action == "batch.screen":
                h.integrity_failures += details.get("integrity") == "failed"
            else:
                h.rejections += 1
    return h


def _mentions(details: Mapping[str, Any], source: str, batch_ids: set[str], subject: str) -> bool:
    if subject in (f"source:{source}",) or subject.removeprefix("batch:") in batch_ids:
        return True
    names = [*_as_list(details.get("sources")), details.get("source")]
    batches = [*_as_list(details.get("batches")), details.get("batch")]
    return source in names or any(x in batch_ids for x in batches if isinstance(x, str))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def assess(ws: Workspace, source: str | Source, *, thresholds: Mapping[str, float] | None = None) -> RiskAssessment:
    """Score ``source`` factor by factor from its registration and its history in the log; tier it by ``thresholds``."""
    src = get_source(ws, source) if isinstance(source, str) else source
    h = _history(ws, src.name)
    factors: list[Factor] = [Factor("kind", KIND_POINTS[src.kind], f"{src.kind} source")]
    # supplier signatures
    internal = src.kind in (SourceKind.INTERNAL, SourceKind.SYNTHETIC)
    if h.deliveries and h.signed == h.deliveries:
        factors.append(Factor("signing", 0, f"all {h.deliveries} deliveries supplier-signed"))
    else:
        unsigned = h.deliveries - h.signed
        share = unsigned / h.deliveries if h.deliveries else 1.0
        base = 6 if internal else 15
        pts = round(base * share * (0.6 if h.checksummed and not internal else 1.0), 1)
        if not src.supplier_key:
            why = "no supplier key registered: deliveries cannot be signed"
        else:
            why = f"{unsigned} of {h.deliveries} deliveries not supplier-signed"
            if h.checksummed:
                why += f" ({h.checksummed} with a checksum list only)"
        factors.append(Factor("signing", pts, why))
    # supplier key age
    if src.supplier_key:
        age = (now() - parse_iso(src.created_at)).days
        pts = 8 if age > KEY_MAX_AGE_DAYS else 0
        factors.append(Factor("key_age", pts, f"supplier key registered {age} days ago (limit {KEY_MAX_AGE_DAYS})"))
    freq = src.update_frequency
    factors.append(
        Factor(
            "update_frequency", FREQUENCY_POINTS.get(freq, 4), f"updates {freq}" if freq else "update frequency unknown"
        )
    )
    lic = f"licence {src.license} ({src.license_status})" if src.license else "no licence recorded"
    factors.append(Factor("licence", LICENCE_POINTS.get(src.license_status, 12), lic))
    for name in ("refusals", "integrity_failures", "rejections", "incidents"):
        count = getattr(h, name)
        per, cap = HISTORY_POINTS[name]
        what = name.replace("_", " ")
        factors.append(Factor(name, min(cap, per * count), f"{count} {what} in the log"))
    if src.kind == SourceKind.SYNTHETIC:
        factors.append(_regeneration_factor(ws, src.name))
    score = float(min(100.0, sum(f.points for f in factors)))
    return RiskAssessment(src.name, str(src.kind), round(score, 1), tier_of(score, thresholds), tuple(factors))


REGENERATION_POINTS = 10


def _regeneration_factor(ws: Workspace, source: str) -> Factor:
    """Synthetic sources: points for every batch whose bit-for-bit regeneration is not verified in the log."""
    from dataward.synthetic.api import regeneration_evidence

    generated, verified = regeneration_evidence(ws, source)
    if not generated:
        return Factor("regeneration", REGENERATION_POINTS, "no batch with a signed generation statement yet")
    share = 1 - len(verified) / len(generated)
    why = f"{len(verified)} of {len(generated)} batches regenerated bit for bit (verify --regenerate)"
    return Factor("regeneration", round(REGENERATION_POINTS * share, 1), why)


def assess_all(ws: Workspace, *, thresholds: Mapping[str, float] | None = None) -> list[RiskAssessment]:
    """Every source's risk, highest first."""
    out = [assess(ws, s, thresholds=thresholds) for s in list_sources(ws)]
    out.sort(key=lambda r: (-r.score, r.source))
    return out
