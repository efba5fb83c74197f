"""The audit-log entries a source's risk is read from: refusals, incidents, and its batches' entries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from dataward.model.workflow_records import LoggedAction
from dataward.store import schema
from dataward.store.repository import repository

__all__ = ["count_entries", "entries_of", "entries_on"]

#: subjects per IN (...) list, well under every database's bound-parameter limit
_CHUNK = 500


def _action(action: Any, subject: Any, entry: Any) -> LoggedAction:
    details = json.loads(bytes(entry)).get("details", {})
    return LoggedAction(str(action), str(subject), details if isinstance(details, dict) else {})


@repository
def count_entries(conn: Connection, action: str, subject: str) -> int:
    """How many log entries record ``action`` on ``subject``."""
    le = schema.log_entries
    n = conn.execute(select(func.count()).where(le.c.action == action, le.c.subject == subject)).scalar()
    return int(n or 0)


@repository
def entries_of(conn: Connection, action: str) -> list[LoggedAction]:
    """Every log entry recording ``action`` (for actions with few entries, such as ``incident.open``)."""
    le = schema.log_entries
    return [
        _action(r.action, r.subject, r.entry)
        for r in conn.execute(select(le.c.subject, le.c.action, le.c.entry).where(le.c.action == action))
    ]


@repository
def entries_on(conn: Connection, actions: Iterable[str], subjects: Iterable[str]) -> list[LoggedAction]:
    """The log entries recording one of ``actions`` on one of ``subjects`` (read in chunks of subjects)."""
    le = schema.log_entries
    wanted, names = list(actions), list(subjects)
    out: list[LoggedAction] = []
    for start in range(0, len(names), _CHUNK):
        q = select(le.c.action, le.c.subject, le.c.entry).where(
            le.c.action.in_(wanted), le.c.subject.in_(names[start : start + _CHUNK])
        )
        out.extend(_action(r.action, r.subject, r.entry) for r in conn.execute(q))
    return out
