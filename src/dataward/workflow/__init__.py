"""The gate between quarantine and approval: screening hook, source risk, label audits, policy, approvals.

Every state change here goes through :meth:`dataward.workspace.Workspace.change` (authorized, one
transaction, logged) and moves a batch along :mod:`dataward.lifecycle` with a signed attestation.
"""
