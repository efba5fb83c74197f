"""The gate between quarantine and approval: screening hook, source risk, label audits, policy, approvals.

Every state change here goes through :meth:`dataward.workspace.Workspace.change` (authorized, one
transaction, logged) and moves a batch along :mod:`dataward.lifecycle` with a signed attestation. The
library calls behind each command (see docs/workflow.md):
"""

from __future__ import annotations

from dataward.workflow.approval import approve, approve_with_statement, prepare_statement, reject, sign_statement
from dataward.workflow.approval_policy import load_policy, set_policy
from dataward.workflow.audit import complete_audit, draw_sample, estimate, record_decisions, sample_items
from dataward.workflow.gate import evaluate
from dataward.workflow.risk import assess, assess_all
from dataward.workflow.screening import latest_report, screen_batch

__all__ = [
    "approve",
    "approve_with_statement",
    "assess",
    "assess_all",
    "complete_audit",
    "draw_sample",
    "estimate",
    "evaluate",
    "latest_report",
    "load_policy",
    "prepare_statement",
    "record_decisions",
    "reject",
    "sample_items",
    "screen_batch",
    "set_policy",
    "sign_statement",
]
