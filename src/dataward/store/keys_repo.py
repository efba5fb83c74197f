"""Key queries: the catalog's keys table (public keys only), read into :class:`dataward.model.keys.KeyRecord`."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from dataward.model.keys import KeyRecord
from dataward.store import _schema as schema
from dataward.store._repository import repository, value_of

__all__ = [
    "active_key",
    "insert_key",
    "key_owner",
    "key_records",
    "keys_of",
    "keys_with_prefix",
    "retire_key",
    "revoke_key",
]


@repository
def key_records(conn: Connection) -> dict[str, KeyRecord]:
    """keyid -> record, for every key ever registered."""
    return {r.keyid: value_of(KeyRecord, r) for r in conn.execute(select(schema.keys))}


@repository
def active_key(conn: Connection, principal: str) -> KeyRecord | None:
    """The newest active key of ``principal`` (None: it has none)."""
    t = schema.keys
    r = conn.execute(
        select(t).where(t.c.principal == principal, t.c.status == "active").order_by(t.c.created_at.desc()).limit(1)
    ).first()
    return None if r is None else value_of(KeyRecord, r)


@repository
def keys_of(conn: Connection, principal: str | None = None) -> list[KeyRecord]:
    """The keys of ``principal`` (default: everyone's), by principal and then age."""
    t = schema.keys
    q = select(t).order_by(t.c.principal, t.c.created_at)
    if principal:
        q = q.where(t.c.principal == principal)
    return [value_of(KeyRecord, r) for r in conn.execute(q)]


@repository
def keys_with_prefix(conn: Connection, prefix: str) -> list[KeyRecord]:
    """The keys whose ID starts with ``prefix`` (lower-cased)."""
    t = schema.keys
    return [value_of(KeyRecord, r) for r in conn.execute(select(t).where(t.c.keyid.like(prefix.lower() + "%")))]


@repository
def key_owner(conn: Connection, keyid: str) -> str | None:
    """The principal key ``keyid`` is registered to (None: not registered)."""
    t = schema.keys
    owner = conn.execute(select(t.c.principal).where(t.c.keyid == keyid)).scalar()
    return None if owner is None else str(owner)


@repository
def insert_key(
    conn: Connection, keyid: str, principal: str, public_key_hex: str, *, created_at: str, expires_at: str | None
) -> None:
    """Register an active key."""
    conn.execute(
        insert(schema.keys).values(
            keyid=keyid,
            principal=principal,
            public_key=public_key_hex,
            created_at=created_at,
            expires_at=expires_at,
            status="active",
        )
    )


@repository
def retire_key(conn: Connection, keyid: str, at: str) -> None:
    """Mark key ``keyid`` retired at ``at`` (its earlier signatures stay valid)."""
    t = schema.keys
    conn.execute(update(t).where(t.c.keyid == keyid).values(status="retired", retired_at=at))


@repository
def revoke_key(conn: Connection, keyid: str, at: str, reason: str) -> None:
    """Mark key ``keyid`` revoked from ``at`` for ``reason``."""
    t = schema.keys
    conn.execute(update(t).where(t.c.keyid == keyid).values(status="revoked", revoked_at=at, revocation_reason=reason))
