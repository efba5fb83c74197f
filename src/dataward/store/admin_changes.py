"""The catalog rows of pending admin changes (a projection of the log's admin.propose / admin.sign entries;
:mod:`dataward.evidence.replay` is the authority, see :mod:`dataward.admin`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from dataward.store import _schema as schema
from dataward.timeutil import now_iso


def insert_change(
    conn: Connection, cid: str, *, action: str, subject: str, statement: str, proposed_by: str, proposed_at: str
) -> None:
    """Record a proposed change (``statement``: its canonical JSON)."""
    conn.execute(
        insert(schema.admin_changes).values(
            id=cid,
            action=action,
            subject=subject,
            statement=statement,
            status="pending",
            proposed_by=proposed_by,
            proposed_at=proposed_at,
        )
    )


def insert_signature(conn: Connection, cid: str, principal: str, keyid: str) -> None:
    """Record ``principal``'s signature (made with ``keyid``) on change ``cid``."""
    conn.execute(
        insert(schema.admin_signatures).values(change_id=cid, principal=principal, keyid=keyid, signed_at=now_iso())
    )


def set_status(conn: Connection, cid: str, status: str) -> None:
    """Mark change ``cid`` applied or withdrawn."""
    t = schema.admin_changes
    conn.execute(update(t).where(t.c.id == cid).values(status=status))


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every admin_changes row, for SQL consumers and tests (gates read the replayed log)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(schema.admin_changes))]
