"""Roles and role grants: who may do what, as values. Pure (no I/O); the checks are in :mod:`dataward.access`."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """A role a principal can be granted (least privilege: each action names the roles allowed it)."""

    ADMIN = "admin"
    INGESTER = "ingester"
    SCREENER = "screener"
    REVIEWER = "reviewer"
    APPROVER = "approver"
    TRAINER = "trainer"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Grant:
    """A role granted to a principal, on every source or scoped to one."""

    role: Role
    source: str | None = None  # None: every source
