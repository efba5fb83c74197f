"""A batch's source risk tier under the workspace policy, and the rules of that tier.

Below both the gate (:mod:`dataward.workflow.gate`) and the label audit (:mod:`dataward.workflow.audit`):
the audit sizes its sample by the tier, the gate evaluates the tier's rules on the audit.
"""

from __future__ import annotations

from dataward.batches import Batch
from dataward.workflow.approval_policy import Policy, TierPolicy, load_policy
from dataward.workflow.risk import RiskAssessment, assess
from dataward.workspace import Workspace

__all__ = ["tier_for"]


def tier_for(ws: Workspace, batch: Batch) -> tuple[str, TierPolicy, RiskAssessment, Policy]:
    """The batch's source risk tier (under the policy's thresholds) and that tier's rules."""
    policy = load_policy(ws)
    risk = assess(ws, batch.source, thresholds=policy.risk_thresholds)
    return risk.tier, policy.tier(risk.tier), risk, policy
