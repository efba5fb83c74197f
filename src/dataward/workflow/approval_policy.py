"""Policy as code: the workspace's ``policy.toml``, validated on load, and the rules it turns into.

The file (schema in docs/policy.md) has rules per source risk tier; ``[defaults]`` applies to every tier
and ``[tiers.NAME]`` overrides it. Errors name the line: TOML syntax errors carry tomllib's line number;
schema errors name the key path and the line where that key is written.

Rules are small composable objects in the manner of sigstore-python's verification policies: each
:class:`Rule` evaluates a context and returns a :class:`RuleResult` value ``(rule, passed, explanation)``;
:class:`AllOf` and :class:`AnyOf` combine them. A tier's gate is ``AllOf`` of the rules its settings ask for.

The policy is itself under control: ``dataward policy init`` / ``policy set`` (admins) write it and log its
SHA-256 as a ``policy.set`` entry; a policy file that does not match the last logged digest is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataward.errors import PolicyError
from dataward.identity import Actor
from dataward.workflow.checks import SEVERITIES, severity_rank
from dataward.workflow.risk import DEFAULT_TIER_THRESHOLDS, TIERS
from dataward.workspace import Workspace, admin_change

if TYPE_CHECKING:
    from dataward.acquire.verify import VerificationReport
    from dataward.batches import Batch
    from dataward.workflow.audit import AuditEstimate
    from dataward.workflow.risk import RiskAssessment
    from dataward.workflow.screening import ScreeningReport

POLICY_FILE = "policy.toml"
CHECK_NAMES = ("integrity", "detection", "screening")
SEPARATION_DUTIES = ("acquirer", "screener", "auditor")
SOURCE_KINDS = ("internal", "third-party", "web-scraped", "synthetic", "checkpoint")
AUDIT_METHODS = ("clopper-pearson", "wilson")
ROLES = ("admin", "ingester", "screener", "reviewer", "approver", "trainer", "auditor")


# --- the schema ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditParams:
    """A tier's audit settings: confidence, margin, expected error rate, flagged cap and interval method."""

    confidence: float = 0.95
    margin: float = 0.05
    expected_error_rate: float = 0.10
    max_flagged: int = 100
    method: str = "clopper-pearson"

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy show --json` prints under each tier's ``audit``."""
        return {
            "confidence": self.confidence,
            "margin": self.margin,
            "expected_error_rate": self.expected_error_rate,
            "max_flagged": self.max_flagged,
            "method": self.method,
        }


@dataclass(frozen=True)
class TierPolicy:
    """The rules of one risk tier: required checks, limits, licence, audit and approval settings."""

    tier: str
    required_checks: tuple[str, ...] = ("integrity", "screening", "detection")
    block_severity: str = "critical"
    max_flagged_fraction: float = 0.10
    audit_required: bool = True
    max_audit_error_upper: float = 0.10
    max_malicious: int = 0
    licence_required: bool = True
    licence_allow: tuple[str, ...] = ()
    licence_exempt_kinds: tuple[str, ...] = ("internal", "synthetic")
    pii_allowed: bool = False
    max_drifted_columns: int = 3
    label_shift_allowed: bool = False
    approvals: int = 1
    approver_roles: tuple[str, ...] = ("approver",)
    separation_of_duties: tuple[str, ...] = ("acquirer",)
    reverify_on_approve: bool = True
    #: a synthetic batch passes only with a verified regeneration in the log (`verify --regenerate`)
    synthetic_regenerable: bool = True
    audit: AuditParams = field(default_factory=AuditParams)

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy show --json` prints for each tier."""
        out: dict[str, Any] = {}
        for k in _TIER_KEYS:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else v
        out["audit"] = self.audit.to_json()
        return out


def _is_fraction(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _str_list(allowed: Sequence[str] | None = None) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) and (allowed is None or x in allowed) for x in v)

    return ok


def _one_of(allowed: Sequence[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in allowed


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


# key -> (validator, what a valid value is)
_TIER_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "required_checks": (_str_list(CHECK_NAMES), f"a list of check names ({', '.join(CHECK_NAMES)})"),
    "block_severity": (_one_of(SEVERITIES), f"one of {', '.join(SEVERITIES)}"),
    "max_flagged_fraction": (_is_fraction, "a number between 0 and 1"),
    "audit_required": (_is_bool, "true or false"),
    "max_audit_error_upper": (_is_fraction, "a number between 0 and 1"),
    "max_malicious": (_is_count, "a whole number >= 0"),
    "licence_required": (_is_bool, "true or false"),
    "licence_allow": (_str_list(), "a list of SPDX licence identifiers"),
    "licence_exempt_kinds": (_str_list(SOURCE_KINDS), f"a list of source kinds ({', '.join(SOURCE_KINDS)})"),
    "pii_allowed": (_is_bool, "true or false"),
    "max_drifted_columns": (_is_count, "a whole number >= 0"),
    "label_shift_allowed": (_is_bool, "true or false"),
    "approvals": (lambda v: _is_count(v) and v >= 1, "a whole number >= 1"),
    "approver_roles": (
        lambda v: _str_list(ROLES)(v) and len(v) > 0,
        f"a non-empty list of roles ({', '.join(ROLES)})",
    ),
    "separation_of_duties": (
        lambda v: _str_list(SEPARATION_DUTIES)(v) and "acquirer" in v,
        f"a list of duties ({', '.join(SEPARATION_DUTIES)}) that includes acquirer",
    ),
    "reverify_on_approve": (_is_bool, "true or false"),
    "synthetic_regenerable": (_is_bool, "true or false"),
}
_AUDIT_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "confidence": (lambda v: _is_fraction(v) and 0.5 <= float(v) < 1.0, "a number in [0.5, 1)"),
    "margin": (lambda v: _is_fraction(v) and 0.001 <= float(v) <= 0.5, "a number in [0.001, 0.5]"),
    "expected_error_rate": (lambda v: _is_fraction(v) and 0.0 < float(v) <= 0.5, "a number in (0, 0.5]"),
    "max_flagged": (_is_count, "a whole number >= 0 (0: every flagged record)"),
    "method": (_one_of(AUDIT_METHODS), f"one of {', '.join(AUDIT_METHODS)}"),
}

_REDTEAM_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    k: (_is_fraction, "a number between 0 and 1")
    for k in (
        "max_attack_success_rate",
        "min_accuracy",
        "max_accuracy_drop",
        "max_shift_degradation",
        "shift_gate_strength",
    )
} | {"sample": (lambda v: _is_count(v) and v >= 20, "a whole number >= 20")}


@dataclass(frozen=True)
class Policy:
    """The workspace policy as parsed: key rotation, risk thresholds, each tier's rules, red-team and
    model-scan settings, and its digest."""

    version: int
    rotation_max_age_days: int
    risk_thresholds: Mapping[str, float]
    tiers: Mapping[str, TierPolicy]
    digest: str
    where: str
    text: str = ""
    redteam: Mapping[str, float] = field(default_factory=dict)  # [redteam] gate thresholds (docs/redteam.md)
    modelscan_allow: tuple[str, ...] = ()  # [modelscan] allow: extra MODULE.NAME globals (docs/model-scanning.md)

    def tier(self, name: str) -> TierPolicy:
        """The rules of tier ``name``."""
        return self.tiers[name]

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy show --json` prints."""
        return {
            "version": self.version,
            "sha256": self.digest,
            "where": self.where,
            "keys": {"rotation_max_age_days": self.rotation_max_age_days},
            "risk": dict(self.risk_thresholds),
            "tiers": {t: p.to_json() for t, p in self.tiers.items()},
            "redteam": dict(self.redteam),
            "modelscan": {"allow": list(self.modelscan_allow)},
        }


def find_line(text: str, path: Sequence[str]) -> int | None:
    """The line (1-based) where the key at ``path`` is written, or its table's header, or None."""
    table: list[str] = []
    best: int | None = None
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    keyline = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")
    target = [p for p in path]
    for i, line in enumerate(text.splitlines(), 1):
        m = header.match(line)
        if m:
            table = [s.strip().strip("\"'") for s in m.group(1).split(".")]
            if table == target:
                return i
            if table == target[: len(table)] and best is None:
                best = i
            continue
        k = keyline.match(line)
        if k:
            full = table + [s.strip().strip("\"'") for s in k.group(1).split(".")]
            if full == target[: len(full)]:
                return i
    return best


def _err(text: str, where: str, path: Sequence[str], message: str) -> PolicyError:
    line = find_line(text, path)
    at = f"{where}:{line}" if line else where
    return PolicyError(
        f"{at}: {'.'.join(path)}: {message}", advice="Fix the policy file (schema: docs/policy.md) and load it again."
    )


def _check_table(
    text: str, where: str, prefix: list[str], table: Any, spec: Mapping[str, tuple[Callable[[Any], bool], str]]
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _err(text, where, prefix, "must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "audit" and spec is _TIER_KEYS:
            continue
        if key not in spec:
            known = ", ".join(sorted(spec))
            raise _err(text, where, [*prefix, key], f"unknown setting (known: {known})")
        ok, what = spec[key]
        if not ok(value):
            raise _err(text, where, [*prefix, key], f"must be {what}, not {value!r}")
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def parse_policy(text: str, where: str = POLICY_FILE) -> Policy:
    """Parse and validate a policy; every error names the line and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{where}: not valid TOML: {exc}", advice="Fix the TOML syntax at the line named.") from None
    top = {"version", "keys", "risk", "defaults", "tiers", "redteam", "modelscan"}
    for key in data:
        if key not in top:
            raise _err(text, where, [key], f"unknown section (known: {', '.join(sorted(top))})")
    if data.get("version") != 1:
        raise _err(text, where, ["version"], f"must be 1, not {data.get('version')!r}")
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or set(keys) - {"rotation_max_age_days"}:
        raise _err(text, where, ["keys"], "may only hold rotation_max_age_days")
    rot = keys.get("rotation_max_age_days", 90)
    if not _is_count(rot) or not 1 <= rot <= 3650:
        raise _err(
            text, where, ["keys", "rotation_max_age_days"], f"must be a whole number of days 1-3650, not {rot!r}"
        )
    risk = data.get("risk", {})
    if not isinstance(risk, dict):
        raise _err(text, where, ["risk"], "must be a table")
    thresholds = dict(DEFAULT_TIER_THRESHOLDS)
    for k, v in risk.items():
        if k not in thresholds:
            raise _err(text, where, ["risk", k], "unknown tier threshold (known: medium, high, critical)")
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 100:
            raise _err(text, where, ["risk", k], f"must be a score between 0 and 100, not {v!r}")
        thresholds[k] = float(v)
    if not thresholds["medium"] <= thresholds["high"] <= thresholds["critical"]:
        raise _err(text, where, ["risk"], "thresholds must rise: medium <= high <= critical")
    defaults_raw = data.get("defaults", {})
    defaults = _check_table(text, where, ["defaults"], defaults_raw, _TIER_KEYS)
    defaults_audit = _check_table(text, where, ["defaults", "audit"], defaults_raw.get("audit", {}), _AUDIT_KEYS)
    tiers_raw = data.get("tiers", {})
    if not isinstance(tiers_raw, dict):
        raise _err(text, where, ["tiers"], "must be a table of tiers")
    for name in tiers_raw:
        if name not in TIERS:
            raise _err(text, where, ["tiers", name], f"unknown tier (tiers: {', '.join(TIERS)})")
    tiers: dict[str, TierPolicy] = {}
    for name in TIERS:
        raw = tiers_raw.get(name, {})
        values = {**defaults, **_check_table(text, where, ["tiers", name], raw, _TIER_KEYS)}
        audit = {
            **defaults_audit,
            **_check_table(text, where, ["tiers", name, "audit"], raw.get("audit", {}), _AUDIT_KEYS),
        }
        tiers[name] = TierPolicy(tier=name, **values, audit=AuditParams(**audit))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    redteam = _check_table(text, where, ["redteam"], data.get("redteam", {}), _REDTEAM_KEYS)  # docs/redteam.md
    return Policy(1, int(rot), thresholds, tiers, digest, where, text, redteam, _modelscan_allow(text, where, data))


def _modelscan_allow(text: str, where: str, data: Mapping[str, Any]) -> tuple[str, ...]:
    """``[modelscan] allow``: exact MODULE.NAME globals a checkpoint pickle may also import."""
    from dataward.modelscan.allowlist import parse_allow

    table = data.get("modelscan", {})
    if not isinstance(table, dict) or set(table) - {"allow"}:
        raise _err(text, where, ["modelscan"], "may only hold allow (a list of MODULE.NAME globals)")
    names = table.get("allow", [])
    if not isinstance(names, list):
        raise _err(text, where, ["modelscan", "allow"], f"must be a list of MODULE.NAME strings, not {names!r}")
    try:
        parse_allow(names, "allow")
    except ValueError as exc:
        raise _err(text, where, ["modelscan", "allow"], str(exc).removeprefix("allow: ")) from None
    return tuple(names)


def default_policy_text() -> str:
    """The policy dataward ships (`policy init` writes it), as TOML text."""
    return resources.files("dataward.workflow").joinpath("default_policy.toml").read_text(encoding="utf-8")


def policy_path(ws: Workspace) -> Path:
    """Where the workspace keeps its policy file."""
    return ws.path / POLICY_FILE


def logged_policy_digest(ws: Workspace) -> str | None:
    """The SHA-256 of the policy last set through dataward, according to the replayed signed log: a
    ``policy.set`` entry the replay refuses (signed by too few admins, by a key not valid then) sets nothing."""
    from dataward.evidence.load import trusted_state

    policies = trusted_state(ws).policies
    return policies[-1][1] if policies else None


def load_policy(ws: Workspace, *, check_log: bool = True) -> Policy:
    """The workspace's policy (the packaged default when none was set), checked against the audit log."""
    path = policy_path(ws)
    logged = logged_policy_digest(ws) if check_log else None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if logged is not None:
            raise PolicyError(
                f"{path} is missing, but a policy (sha256 {logged[:16]}) was set",
                advice="Restore it, or set one again with `dataward policy set FILE`.",
            ) from None
        text = default_policy_text()
        return parse_policy(text, "default policy")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None
    policy = parse_policy(text, str(path))
    if check_log:
        if logged is None:
            raise PolicyError(
                f"{path} was never set through dataward (no policy.set entry in the log)",
                advice=f"An admin runs `dataward policy set {path}` to adopt it.",
            )
        if not hmac.compare_digest(logged, policy.digest):
            raise PolicyError(
                f"{path} changed outside dataward (sha256 {policy.digest[:16]}, logged {logged[:16]})",
                advice=f"Review the change; an admin adopts it with `dataward policy set {path}`.",
            )
    return policy


def set_policy(ws: Workspace, actor: Actor, text: str, *, where: str) -> Policy:
    """Validate ``text`` and make it the workspace policy (admins; logged as ``policy.set``)."""

    policy = parse_policy(text, where)
    path = policy_path(ws)
    # a content-addressed copy: gates re-read the policy an approval was made under by its logged digest (and
    # a pending change re-reads the text it proposes)
    ws.objects.put_bytes("meta", text.encode("utf-8"))
    call = {"op": "policy.set", "args": {"sha256": policy.digest, "where": where}}
    with admin_change(ws, actor, "policy.set", "policy", call=call) as ch:
        if ch.applies_now:  # a proposal leaves the policy file alone until enough admins sign
            tmp = path.with_name(f".{POLICY_FILE}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        ch.details.update({"sha256": policy.digest, "from": where})
    return parse_policy(text, str(path))


def rotation_max_age_days(ws: Workspace) -> int:
    """The key-rotation age limit ``dataward doctor`` uses."""
    return load_policy(ws).rotation_max_age_days


# --- rules -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """A rule's verdict with its explanation, and the verdicts of the rules it combines."""

    rule: str
    passed: bool
    explanation: str
    children: tuple[RuleResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy check --json` prints under ``rules``."""
        out: dict[str, Any] = {"rule": self.rule, "passed": self.passed, "explanation": self.explanation}
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out

    def failures(self) -> list[RuleResult]:
        """The failing leaf rules (for AnyOf: the node itself)."""
        if self.passed:
            return []
        if not self.children or self.rule.startswith("any-of"):
            return [self]
        return [f for c in self.children for f in c.failures()]

    def lines(self, indent: int = 0) -> list[str]:
        """The verdicts as indented PASS/FAIL lines, the way `policy check` prints them."""
        mark = "PASS" if self.passed else "FAIL"
        out = [f"{'  ' * indent}{mark} {self.rule}: {self.explanation}"]
        for c in self.children:
            out.extend(c.lines(indent + 1))
        return out


@dataclass
class PolicyContext:
    """What the rules look at. ``verify`` re-hashes the batch on demand (once)."""

    batch: Batch
    risk: RiskAssessment
    tier: TierPolicy
    report: ScreeningReport | None
    audit: AuditEstimate | None
    verify: Callable[[], VerificationReport] | None = None
    _verified: VerificationReport | None = None
    #: synthetic batches: whether the log holds a verified regeneration of this batch (None: not synthetic)
    regenerated: Callable[[], bool] | None = None

    def verification(self) -> VerificationReport | None:
        """The batch re-verified now (computed once, on first use), or None when not asked for."""
        if self.verify is None:
            return None
        if self._verified is None:
            self._verified = self.verify()
        return self._verified


class Rule(ABC):
    """One rule of the policy: evaluated on a :class:`PolicyContext`, it says whether it passes and why."""

    name: str = "rule"

    @abstractmethod
    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """The rule's verdict on ``ctx``, with a one-line explanation."""

    def _r(self, passed: bool, why: str) -> RuleResult:
        return RuleResult(self.name, passed, why)


class AllOf(Rule):
    """Passes when every one of its rules passes."""

    def __init__(self, rules: Sequence[Rule], name: str = "all-of") -> None:
        self.rules = list(rules)
        self.name = name

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Evaluate every rule; the result lists each one and names the failing ones."""
        results = tuple(r.evaluate(ctx) for r in self.rules)
        failed = [r.rule for r in results if not r.passed]
        why = (
            f"all {len(results)} rules pass"
            if not failed
            else f"{len(failed)} of {len(results)} fail: {', '.join(failed)}"
        )
        return RuleResult(self.name, not failed, why, results)


class AnyOf(Rule):
    """Passes when at least one of its rules passes."""

    def __init__(self, rules: Sequence[Rule], name: str = "any-of") -> None:
        self.rules = list(rules)
        self.name = name if name.startswith("any-of") else f"any-of:{name}"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Evaluate every rule; the result names the first that passes, or says none does."""
        results = tuple(r.evaluate(ctx) for r in self.rules)
        ok = [r.rule for r in results if r.passed]
        why = f"{ok[0]} passes" if ok else f"none of {', '.join(r.rule for r in results)} passes"
        return RuleResult(self.name, bool(ok), why, results)


class BatchStateIs(Rule):
    """Passes when the batch is in one of the given lifecycle states."""

    name = "lifecycle"

    def __init__(self, states: Sequence[str]) -> None:
        self.states = tuple(states)

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Compare the batch's state with the allowed ones."""
        s = str(ctx.batch.state)
        return self._r(
            s in self.states, f"batch is {s}" + ("" if s in self.states else f"; needs {' or '.join(self.states)}")
        )


class Screened(Rule):
    """Passes when the batch has a signed screening report."""

    name = "screened"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Name the report's signer and time, or say there is none."""
        r = ctx.report
        if r is None:
            return self._r(False, "no screening report")
        return self._r(True, f"signed report {str(r.envelope_digest)[:16]} by {r.screened_by} at {r.created_at[:19]}")


class IntegrityVerified(Rule):
    """Passes when screening verified the batch and, if asked, a re-verification now finds no problem."""

    name = "integrity"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Read the report's integrity verdict; re-hash the batch when the context can."""
        if ctx.report is None or not ctx.report.integrity_ok:
            return self._r(False, "screening did not verify the batch")
        v = ctx.verification()
        if v is None:
            return self._r(True, "verified at screening")
        if not v.ok:
            return self._r(False, f"re-verification found {len(v.problems)} problem(s): {v.problems[0].line()}")
        return self._r(True, f"verified at screening and again now ({v.records_checked} records)")


class ChecksRan(Rule):
    """Passes when every required check ran to a verdict (passed or failed) at screening."""

    name = "required-checks"

    def __init__(self, required: Sequence[str]) -> None:
        self.required = tuple(required)

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Look up each required check in the screening report."""
        if ctx.report is None:
            return self._r(False, "no screening report")
        missing = []
        for name in self.required:
            c = ctx.report.check(name)
            if c is None or c["status"] not in ("passed", "failed"):
                why = "not run" if c is None else f"{c['status']}: {c.get('reason') or ''}".rstrip(": ")
                missing.append(f"{name} ({why})")
        if missing:
            return self._r(False, "required check(s) did not run: " + "; ".join(missing))
        return self._r(True, f"ran {', '.join(self.required)}")


class MaxSeverity(Rule):
    """Passes when no finding is at or above the blocking severity."""

    name = "block-severity"

    def __init__(self, block: str) -> None:
        self.block = block

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Look for a finding at or above the blocking severity."""
        if ctx.report is None:
            return self._r(False, "no screening report")
        bad = [f for f in ctx.report.findings if severity_rank(f.severity) >= severity_rank(self.block)]
        if bad:
            f = bad[0]
            return self._r(
                False,
                f"{len(bad)} finding(s) at or above {self.block}, e.g. [{f.severity}] {f.check}/{f.kind}: {f.summary}",
            )
        return self._r(True, f"no finding at or above {self.block}")


class MaxFlaggedFraction(Rule):
    """Passes when the share of flagged records is within the limit."""

    name = "flagged-fraction"

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Compare the report's flagged fraction with the limit."""
        if ctx.report is None:
            return self._r(False, "no screening report")
        f = ctx.report.flagged_fraction
        return self._r(
            f <= self.limit,
            f"{ctx.report.flagged_count} of {ctx.report.records} records flagged ({f:.2%}; limit {self.limit:.2%})",
        )


class AuditErrorBound(Rule):
    """Passes when the label audit is complete and its upper error bound is within the limit."""

    name = "audit-error"

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Compare the complete audit's upper bound with the limit."""
        a = ctx.audit
        if a is None:
            return self._r(False, "no label audit")
        if not a.complete:
            return self._r(False, f"audit not complete ({a.undecided} sampled record(s) undecided)")
        return self._r(
            a.upper <= self.limit,
            f"label-error rate {a.rate:.2%}, {a.confidence:.0%} upper bound {a.upper:.2%} (limit {self.limit:.2%}; "
            f"{a.errors} of {a.n} random records)",
        )


class MaxMalicious(Rule):
    """Passes when the audit marked at most the limit of records malicious."""

    name = "malicious-records"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Compare the audit's malicious count with the limit."""
        a = ctx.audit
        if a is None:
            return self._r(False, "no label audit")
        return self._r(a.malicious <= self.limit, f"{a.malicious} record(s) marked malicious (limit {self.limit})")


class SourceKindIn(Rule):
    """Passes when the source is of one of the given kinds (used for licence exemptions)."""

    name = "source-kind"

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = tuple(kinds)

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Compare the source's kind with the exempt kinds."""
        k = ctx.risk.kind
        return self._r(k in self.kinds, f"source kind {k}" + (" is exempt" if k in self.kinds else " is not exempt"))


class Regenerable(Rule):
    """Passes for a batch that is not synthetic, or one whose regeneration the log verifies."""

    name = "regenerable"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Ask the context whether the synthetic batch regenerated bit for bit."""
        if ctx.risk.kind != "synthetic":
            return self._r(True, f"source kind {ctx.risk.kind} is not synthetic")
        if ctx.regenerated is not None and ctx.regenerated():
            return self._r(True, "the batch regenerated bit for bit from its signed generation statement")
        return self._r(
            False, f"synthetic batch {ctx.batch.id} has no verified regeneration: run `dataward verify --regenerate`"
        )


class LicencePresent(Rule):
    """Passes when the source records a licence."""

    name = "licence-present"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Look for the licence expression in the screening report."""
        lic = ctx.report.licence if ctx.report else {}
        expr = lic.get("expression")
        return self._r(bool(expr), f"licence {expr} ({lic.get('status')})" if expr else "the source has no licence")


class LicenceAllowed(Rule):
    """Passes when the source's licence expression is within the tier's allow-list."""

    name = "licence-allowed"

    def __init__(self, allow: Sequence[str]) -> None:
        self.allow = tuple(allow)

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Judge the recorded licence expression against the allow-list."""
        expr = (ctx.report.licence if ctx.report else {}).get("expression")
        if not expr:
            return self._r(False, "no licence to check")
        ok, why = licence_allowed(str(expr), self.allow)
        return self._r(ok, why)


def licence_allowed(expression: str, allow: Sequence[str]) -> tuple[bool, str]:
    """AND needs every part allowed, OR any one; ``X WITH exc`` is judged by X (one cached evaluator, shared
    with screening: :func:`dataward.screen.licences.judge`)."""
    from dataward.screen.licences import judge

    return judge(expression, tuple(allow))


class NoPii(Rule):
    """Passes when screening found no personal data."""

    name = "pii"

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Read the report's personal-data counts."""
        if ctx.report is None:
            return self._r(False, "no screening report")
        counts = {k: v for k, v in ctx.report.pii_counts.items() if v}
        if counts:
            return self._r(
                False, "personal data found: " + ", ".join(f"{k} in {v} record(s)" for k, v in counts.items())
            )
        return self._r(True, "no personal data found")


class DriftLimit(Rule):
    """Passes when few enough columns drifted and, unless allowed, no label shifted."""

    name = "drift"

    def __init__(self, max_columns: int, label_shift_allowed: bool) -> None:
        self.max_columns = max_columns
        self.label_shift_allowed = label_shift_allowed

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        """Count the report's drifted columns and label shifts against the limits."""
        if ctx.report is None:
            return self._r(False, "no screening report")
        cols = sorted({str(d.get("column")) for d in ctx.report.drift if d.get("kind") == "column_drift"})
        shifts = [d for d in ctx.report.drift if d.get("kind") in ("label_shift", "group_label_shift")]
        problems = []
        if len(cols) > self.max_columns:
            problems.append(f"{len(cols)} drifted column(s) ({', '.join(cols[:5])}; limit {self.max_columns})")
        if shifts and not self.label_shift_allowed:
            problems.append(f"{len(shifts)} label shift(s)")
        if problems:
            return self._r(False, "; ".join(problems))
        return self._r(True, f"{len(cols)} drifted column(s), {len(shifts)} label shift(s)")


def tier_rule(tp: TierPolicy, *, for_approval: bool = True) -> AllOf:
    """The gate of a tier: every rule its settings ask for."""
    rules: list[Rule] = [
        BatchStateIs(("audited", "approved") if for_approval else ("screened", "audited", "approved")),
        Screened(),
        IntegrityVerified(),
        ChecksRan(tp.required_checks),
        MaxSeverity(tp.block_severity),
        MaxFlaggedFraction(tp.max_flagged_fraction),
    ]
    if tp.audit_required:
        rules += [AuditErrorBound(tp.max_audit_error_upper), MaxMalicious(tp.max_malicious)]
    if tp.licence_required:
        licence = AllOf([LicencePresent(), LicenceAllowed(tp.licence_allow)], name="licence")
        rules.append(
            AnyOf([SourceKindIn(tp.licence_exempt_kinds), licence], name="licence")
            if tp.licence_exempt_kinds
            else licence
        )
    if not tp.pii_allowed:
        rules.append(NoPii())
    rules.append(DriftLimit(tp.max_drifted_columns, tp.label_shift_allowed))
    if tp.synthetic_regenerable:
        rules.append(Regenerable())
    return AllOf(rules, name=f"policy[{tp.tier}]")
