"""The gate: evaluate the workspace policy on one batch, with its source's risk tier, report and audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dataward.batches import Batch, load_batch
from dataward.errors import NotFoundError
from dataward.store import schema
from dataward.workflow.approval_policy import Policy, PolicyContext, RuleResult, TierPolicy, load_policy, tier_rule
from dataward.workflow.risk import RiskAssessment, assess
from dataward.workspace import Workspace


def tier_for(ws: Workspace, batch: Batch) -> tuple[str, TierPolicy, RiskAssessment, Policy]:
    """The batch's source risk tier (under the policy's thresholds) and that tier's rules."""
    policy = load_policy(ws)
    risk = assess(ws, batch.source, thresholds=policy.risk_thresholds)
    return risk.tier, policy.tier(risk.tier), risk, policy


@dataclass(frozen=True)
class Approver:
    principal: str
    keyid: str
    at: str
    attestation: str

    def to_json(self) -> dict[str, Any]:
        return {"principal": self.principal, "keyid": self.keyid, "at": self.at, "attestation": self.attestation}


def approvals_of(ws: Workspace, batch_id: str) -> list[Approver]:
    t = schema.approvals
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.batch_id == batch_id).order_by(t.c.id))
        return [Approver(r.principal, r.keyid, r.created_at, r.envelope_digest) for r in rows]


@dataclass(frozen=True)
class PolicyDecision:
    batch: str
    source: str
    state: str
    tier: str
    risk: RiskAssessment
    policy_digest: str
    policy_where: str
    result: RuleResult
    approvals_required: int
    approver_roles: tuple[str, ...]
    separation_of_duties: tuple[str, ...]
    approvals: tuple[Approver, ...]

    @property
    def passed(self) -> bool:
        return self.result.passed

    def failing(self) -> list[str]:
        return [f"{f.rule} ({f.explanation})" for f in self.result.failures()]

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "source": self.source,
            "state": self.state,
            "tier": self.tier,
            "risk": self.risk.to_json(),
            "policy": {"sha256": self.policy_digest, "where": self.policy_where},
            "passed": self.passed,
            "rules": self.result.to_json(),
            "failing": self.failing(),
            "approvals": {
                "required": self.approvals_required,
                "roles": list(self.approver_roles),
                "separation_of_duties": list(self.separation_of_duties),
                "have": [a.to_json() for a in self.approvals],
            },
        }


def _regenerated(ws: Workspace, batch_id: str) -> bool:
    from dataward.synthetic.api import regeneration_evidence

    return batch_id in regeneration_evidence(ws)[1]


def evaluate(ws: Workspace, batch_id: str, *, reverify: bool = False) -> PolicyDecision:
    """Evaluate the policy on ``batch_id``; ``reverify`` re-hashes the data when the tier asks for it."""
    from dataward.acquire.verify import verify_batch
    from dataward.workflow.audit import audit_exists, estimate, verify_completed
    from dataward.workflow.screening import ScreeningReport, latest_report

    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    tier, tp, risk, policy = tier_for(ws, batch)
    report: ScreeningReport | None
    try:
        report = latest_report(ws, batch_id)
    except NotFoundError:
        report = None
    audit = estimate(ws, batch_id, method=tp.audit.method) if audit_exists(ws, batch_id) else None
    if audit is not None:
        verify_completed(ws, audit)
    verify = (lambda: verify_batch(ws, batch_id, area="quarantine")) if reverify and tp.reverify_on_approve else None
    ctx = PolicyContext(batch, risk, tp, report, audit, verify, regenerated=lambda: _regenerated(ws, batch_id))
    result = tier_rule(tp).evaluate(ctx)
    return PolicyDecision(
        batch_id,
        batch.source,
        str(batch.state),
        tier,
        risk,
        policy.digest,
        policy.where,
        result,
        tp.approvals,
        tp.approver_roles,
        tp.separation_of_duties,
        tuple(approvals_of(ws, batch_id)),
    )
