"""Principal queries: the catalog's principals and role_grants tables (a projection of the signed log:
authorization reads the replayed log, never these rows)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from dataward.store import _schema as schema
from dataward.store._repository import repository

__all__ = ["delete_grant", "insert_grant", "insert_principal", "is_disabled", "principal_exists", "principal_names"]


@repository
def principal_exists(conn: Connection, name: str) -> bool:
    """Whether principal ``name`` is registered."""
    t = schema.principals
    return conn.execute(select(t.c.name).where(t.c.name == name)).first() is not None


@repository
def is_disabled(conn: Connection, name: str) -> bool | None:
    """Whether principal ``name`` is disabled (None: no such principal)."""
    t = schema.principals
    disabled = conn.execute(select(t.c.disabled).where(t.c.name == name)).first()
    return None if disabled is None else bool(disabled[0])


@repository
def principal_names(conn: Connection) -> list[str]:
    """Every principal's name, sorted."""
    t = schema.principals
    names: list[str] = list(conn.execute(select(t.c.name).order_by(t.c.name)).scalars())
    return names


@repository
def insert_principal(conn: Connection, name: str, *, created_at: str, created_by: str | None) -> None:
    """Register principal ``name`` (enabled)."""
    conn.execute(
        insert(schema.principals).values(name=name, created_at=created_at, created_by=created_by, disabled=False)
    )


@repository
def insert_grant(
    conn: Connection, principal: str, role: str, source: str | None, *, granted_at: str, granted_by: str | None
) -> None:
    """Grant ``role`` (on ``source``, None: every source) unless ``principal`` already holds that grant."""
    t = schema.role_grants
    q = select(t.c.id).where(t.c.principal == principal, t.c.role == role)
    q = q.where(t.c.source.is_(None)) if source is None else q.where(t.c.source == source)
    if conn.execute(q).first() is None:
        conn.execute(
            insert(t).values(
                principal=principal, role=role, source=source, granted_at=granted_at, granted_by=granted_by
            )
        )


@repository
def delete_grant(conn: Connection, principal: str, role: str, source: str | None) -> int:
    """Take the grant of ``role`` (on ``source``) from ``principal``; how many rows went."""
    t = schema.role_grants
    q = delete(t).where(t.c.principal == principal, t.c.role == role)
    q = q.where(t.c.source.is_(None)) if source is None else q.where(t.c.source == source)
    return int(conn.execute(q).rowcount or 0)
