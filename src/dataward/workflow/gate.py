"""The gate: evaluate the workspace policy on one batch, with its source's risk tier, report and audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataward.acquire.verify import verify_batch
from dataward.batches import load_batch
from dataward.errors import NotFoundError
from dataward.model.workflow_records import Approval
from dataward.store import approvals
from dataward.synthetic.api import regeneration_evidence
from dataward.workflow import screening
from dataward.workflow.approval_policy import PolicyContext, RuleResult, tier_rule
from dataward.workflow.audit import audit_exists, estimate, verify_completed
from dataward.workflow.risk import RiskAssessment
from dataward.workflow.tiers import tier_for
from dataward.workspace import Workspace

__all__ = ["Approver", "PolicyDecision", "approvals_of", "evaluate", "tier_for"]

#: the former name of :class:`dataward.model.workflow_records.Approval`, kept for code written against it
Approver = Approval


def approvals_of(ws: Workspace, batch_id: str) -> list[Approval]:
    """The batch's recorded approvals, oldest first."""
    with ws.engine.connect() as conn:
        return approvals.approvals_of(conn, batch_id)


@dataclass(frozen=True)
class PolicyDecision:
    """The policy's verdict on one batch: its tier and risk, every rule's result, and the approvals so far."""

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
    approvals: tuple[Approval, ...]

    @property
    def passed(self) -> bool:
        """Whether every rule of the tier passed."""
        return self.result.passed

    def failing(self) -> list[str]:
        """Each failing rule with its explanation, one string per rule."""
        return [f"{f.rule} ({f.explanation})" for f in self.result.failures()]

    def to_json(self) -> dict[str, Any]:
        """The JSON form `policy check --json` prints."""
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
    return batch_id in regeneration_evidence(ws)[1]


def evaluate(ws: Workspace, batch_id: str, *, reverify: bool = False) -> PolicyDecision:
    """Evaluate the policy on ``batch_id``; ``reverify`` re-hashes the data when the tier asks for it."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    tier, tp, risk, policy = tier_for(ws, batch)
    report: screening.ScreeningReport | None
    try:
        report = screening.latest_report(ws, batch_id)
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
