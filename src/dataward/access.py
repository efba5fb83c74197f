"""Roles and least privilege: which roles may take which action (deny by default).

Pure: callers pass in the principal's grants. A grant may be scoped to one source; a scoped grant only
allows actions on that source's batches.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from dataward.errors import AuthorizationError


class Role(enum.StrEnum):
    ADMIN = "admin"
    INGESTER = "ingester"
    SCREENER = "screener"
    REVIEWER = "reviewer"
    APPROVER = "approver"
    TRAINER = "trainer"
    AUDITOR = "auditor"


ALL_ROLES = frozenset(Role)

#: action -> roles allowed to take it. Every state-changing action of dataward is listed here.
PERMISSIONS: dict[str, frozenset[Role]] = {
    # identity and configuration
    "principal.add": frozenset({Role.ADMIN}),
    "role.grant": frozenset({Role.ADMIN}),
    "role.revoke": frozenset({Role.ADMIN}),
    "key.generate": frozenset({Role.ADMIN}),  # logs written before keyrings (now key.add)
    "key.add": frozenset({Role.ADMIN}),
    "key.migrate": frozenset({Role.ADMIN}),
    "key.rotate": frozenset({Role.ADMIN}),
    "key.revoke": frozenset({Role.ADMIN}),
    "source.add": frozenset({Role.ADMIN}),
    "source.update": frozenset({Role.ADMIN}),
    "policy.set": frozenset({Role.ADMIN}),
    "workspace.doctor": frozenset({Role.ADMIN}),  # doctor --fix: removes unreferenced objects and stale temp files
    "intel.add": frozenset({Role.ADMIN, Role.SCREENER}),
    # admin changes under the k-of-n admin threshold (dataward.admin): a proposal by anyone allowed the
    # change itself, signatures by admins only, the threshold itself an admin change
    "admin.propose": frozenset({Role.ADMIN, Role.SCREENER}),
    "admin.sign": frozenset({Role.ADMIN}),
    "admin.withdraw": frozenset({Role.ADMIN}),
    "admin.threshold": frozenset({Role.ADMIN}),
    # the supply chain
    "batch.acquire": frozenset({Role.INGESTER}),
    "batch.refuse": frozenset({Role.INGESTER}),
    "batch.generation": frozenset({Role.INGESTER}),  # a synthetic batch's signed generation statement
    "model.scan": frozenset({Role.INGESTER}),
    "batch.verify": ALL_ROLES,
    "batch.screen": frozenset({Role.SCREENER}),
    "audit.sample": frozenset({Role.REVIEWER, Role.SCREENER}),
    "audit.decide": frozenset({Role.REVIEWER}),
    "audit.complete": frozenset({Role.REVIEWER}),
    "batch.approve": frozenset({Role.APPROVER}),
    "batch.reject": frozenset({Role.APPROVER, Role.SCREENER}),
    "dataset.release": frozenset({Role.APPROVER}),
    "dataset.rollback": frozenset({Role.APPROVER}),
    "batch.revoke": frozenset({Role.APPROVER}),
    "run.record": frozenset({Role.TRAINER}),
    "data.read": frozenset({Role.TRAINER, Role.AUDITOR, Role.APPROVER, Role.REVIEWER}),
    "redteam.run": frozenset({Role.TRAINER, Role.AUDITOR, Role.SCREENER}),
    "incident.open": frozenset({Role.AUDITOR, Role.TRAINER, Role.ADMIN}),
    "incident.resolve": frozenset({Role.APPROVER}),
    "log.verify": ALL_ROLES,
    "log.replay": frozenset({Role.ADMIN}),  # rebuilds the catalog projection from the signed log
    "federation.node.add": frozenset({Role.ADMIN}),  # a coordinator registers a node by its log key
    "federation.round": frozenset({Role.TRAINER}),  # a coordinator records an aggregated round
    "token.create": frozenset({Role.ADMIN}),
    "token.revoke": frozenset({Role.ADMIN}),
    "console.read": ALL_ROLES - {Role.INGESTER},  # the web console's read pages and API
}


@dataclass(frozen=True)
class Grant:
    role: Role
    source: str | None = None  # None: every source


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
