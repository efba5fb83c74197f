"""Registered-key queries: the catalog's public keys read into :class:`dataward.model.keys.Key` values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dataward.model.keys import Key, PublicKey
from dataward.store import schema
from dataward.store.repository import repository

__all__ = ["active_keys", "find_key", "registered_keys"]


def _key(r: Any) -> Key:
    return Key(
        str(r.keyid),
        str(r.principal),
        PublicKey(bytes.fromhex(r.public_key)),
        str(r.status),
        str(r.created_at),
        r.expires_at,
        r.retired_at,
        r.revoked_at,
        r.revocation_reason,
    )


@repository
def registered_keys(conn: Connection) -> list[Key]:
    """Every key ever registered (any status)."""
    return [_key(r) for r in conn.execute(select(schema.keys))]


@repository
def find_key(conn: Connection, keyid: str) -> Key | None:
    """The key with exactly this key ID, or None."""
    row = conn.execute(select(schema.keys).where(schema.keys.c.keyid == keyid)).first()
    return None if row is None else _key(row)


@repository
def active_keys(conn: Connection, principal: str) -> list[Key]:
    """The principal's keys whose status is active (expiry is the caller's to judge)."""
    t = schema.keys
    return [_key(r) for r in conn.execute(select(t).where(t.c.principal == principal, t.c.status == "active"))]
