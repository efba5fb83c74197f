"""Roles and least privilege: which roles may take which action (deny by default).

Pure: callers pass in the principal's grants. A grant may be scoped to one source; a scoped grant only
allows actions on that source's batches.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataward.errors import AuthorizationError
from dataward.model.action import Action
from dataward.model.roles import Grant, Role

# Grant and Role are model values; they stay importable from here until workflow/ (owned elsewhere) imports
# them from dataward.model.roles.
__all__ = [
    "ALL_ROLES",
    "PERMISSIONS",
    "Grant",
    "Role",
    "allowed",
    "require",
    "require_separation",
]


ALL_ROLES = frozenset(Role)

#: action -> roles allowed to take it. Every state-changing action of dataward is listed here (keyed by
#: :class:`~dataward.model.action.Action`, a str: lookups by the plain string work).
PERMISSIONS: dict[str, frozenset[Role]] = {
    # identity and configuration
    Action.PRINCIPAL_ADD: frozenset({Role.ADMIN}),
    Action.ROLE_GRANT: frozenset({Role.ADMIN}),
    Action.ROLE_REVOKE: frozenset({Role.ADMIN}),
    Action.KEY_GENERATE: frozenset({Role.ADMIN}),  # logs written before keyrings (now key.add)
    Action.KEY_ADD: frozenset({Role.ADMIN}),
    Action.KEY_MIGRATE: frozenset({Role.ADMIN}),
    Action.KEY_ROTATE: frozenset({Role.ADMIN}),
    Action.KEY_REVOKE: frozenset({Role.ADMIN}),
    Action.SOURCE_ADD: frozenset({Role.ADMIN}),
    Action.SOURCE_UPDATE: frozenset({Role.ADMIN}),
    Action.POLICY_SET: frozenset({Role.ADMIN}),
    Action.WORKSPACE_DOCTOR: frozenset({Role.ADMIN}),  # doctor --fix: removes unreferenced objects and stale temp files
    Action.INTEL_ADD: frozenset({Role.ADMIN, Role.SCREENER}),
    # admin changes under the k-of-n admin threshold (dataward.admin): a proposal by anyone allowed the
    # change itself, signatures by admins only, the threshold itself an admin change
    Action.ADMIN_PROPOSE: frozenset({Role.ADMIN, Role.SCREENER}),
    Action.ADMIN_SIGN: frozenset({Role.ADMIN}),
    Action.ADMIN_WITHDRAW: frozenset({Role.ADMIN}),
    Action.ADMIN_THRESHOLD: frozenset({Role.ADMIN}),
    # the supply chain
    Action.BATCH_ACQUIRE: frozenset({Role.INGESTER}),
    Action.BATCH_REFUSE: frozenset({Role.INGESTER}),
    Action.BATCH_GENERATION: frozenset({Role.INGESTER}),  # a synthetic batch's signed generation statement
    Action.MODEL_SCAN: frozenset({Role.INGESTER}),
    Action.BATCH_VERIFY: ALL_ROLES,
    Action.BATCH_SCREEN: frozenset({Role.SCREENER}),
    Action.AUDIT_SAMPLE: frozenset({Role.REVIEWER, Role.SCREENER}),
    Action.AUDIT_DECIDE: frozenset({Role.REVIEWER}),
    Action.AUDIT_COMPLETE: frozenset({Role.REVIEWER}),
    Action.BATCH_APPROVE: frozenset({Role.APPROVER}),
    Action.BATCH_REJECT: frozenset({Role.APPROVER, Role.SCREENER}),
    Action.DATASET_RELEASE: frozenset({Role.APPROVER}),
    Action.DATASET_ROLLBACK: frozenset({Role.APPROVER}),
    Action.BATCH_REVOKE: frozenset({Role.APPROVER}),
    Action.RUN_RECORD: frozenset({Role.TRAINER}),
    Action.DATA_READ: frozenset({Role.TRAINER, Role.AUDITOR, Role.APPROVER, Role.REVIEWER}),
    Action.REDTEAM_RUN: frozenset({Role.TRAINER, Role.AUDITOR, Role.SCREENER}),
    Action.INCIDENT_OPEN: frozenset({Role.AUDITOR, Role.TRAINER, Role.ADMIN}),
    Action.INCIDENT_RESOLVE: frozenset({Role.APPROVER}),
    Action.LOG_VERIFY: ALL_ROLES,
    Action.LOG_REPLAY: frozenset({Role.ADMIN}),  # rebuilds the catalog projection from the signed log
    Action.FEDERATION_NODE_ADD: frozenset({Role.ADMIN}),  # a coordinator registers a node by its log key
    Action.FEDERATION_ROUND: frozenset({Role.TRAINER}),  # a coordinator records an aggregated round
    Action.TOKEN_CREATE: frozenset({Role.ADMIN}),
    Action.TOKEN_REVOKE: frozenset({Role.ADMIN}),
    Action.CONSOLE_READ: ALL_ROLES - {Role.INGESTER},  # the web console's read pages and API
}


def allowed(grants: Iterable[Grant], action: str, source: str | None = None) -> bool:
    """Whether ``grants`` allow ``action`` (on ``source``). Unknown actions and no grants are denied.

    A scoped grant counts only for its source, except for the actions every role may take (verifying a
    batch or the log): those need some role, wherever it is scoped.
    """
    roles = PERMISSIONS.get(action)
    if roles is None:
        return False  # unknown actions are denied
    everyone = roles == ALL_ROLES
    return any(g.role in roles and (g.source is None or g.source == source or everyone) for g in grants)


def require(principal: str, grants: Iterable[Grant], action: str, source: str | None = None) -> None:
    """Refuse (:class:`~dataward.errors.AuthorizationError`, naming the roles needed and held) unless
    ``grants`` allow ``action`` on ``source``."""
    grants = list(grants)
    if not allowed(grants, action, source):
        need = ", ".join(sorted(PERMISSIONS.get(action, frozenset())))
        where = f" on source {source!r}" if source else ""
        have = ", ".join(sorted(f"{g.role}" + (f"@{g.source}" if g.source else "") for g in grants)) or "none"
        raise AuthorizationError(
            f"{principal} may not {action}{where}: needs one of [{need}], has [{have}]",
        )


def require_separation(principal: str, acquirer: str, action: str) -> None:
    """Separation of duties: whoever acquired a batch may not approve or release it."""
    if principal == acquirer:
        raise AuthorizationError(
            f"{principal} acquired this batch and may not {action} it (separation of duties)",
            advice="Another principal with the approver role must do this.",
        )
