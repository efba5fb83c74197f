"""Console API tokens: the catalog's ``tokens`` table (only a token's SHA-256 is stored, never the secret).

Typed repository functions over a :data:`~dataward.store.catalog.Transaction` the caller holds: a read
connection, or the ``Change`` of :meth:`dataward.workspace.Workspace.change` that logs ``token.create`` or
``token.revoke``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import insert, select, update

from dataward.model.api_token import TokenInfo
from dataward.store import _schema as schema
from dataward.store.catalog import Transaction

__all__ = [
    "TokenRow",
    "insert_token",
    "mark_revoked",
    "principal_enabled",
    "token_by_hash",
    "token_by_id",
    "token_rows",
]


@dataclass(frozen=True)
class TokenRow:
    """One row of the ``tokens`` table: what may be shown of the token, and the SHA-256 of its secret."""

    info: TokenInfo
    token_hash: str


def _row(r: Any) -> TokenRow:
    return TokenRow(TokenInfo(**{f.name: getattr(r, f.name) for f in fields(TokenInfo)}), r.token_hash)


def insert_token(tx: Transaction, row: TokenRow) -> None:
    """Store a newly created token (inside the change that logs ``token.create``)."""
    tx.execute(insert(schema.tokens).values(token_hash=row.token_hash, **asdict(row.info)))


def token_by_id(tx: Transaction, token_id: str) -> TokenRow | None:
    """The token with public id ``token_id``, or None."""
    r = tx.execute(select(schema.tokens).where(schema.tokens.c.id == token_id)).first()
    return None if r is None else _row(r)


def token_by_hash(tx: Transaction, digest: str) -> TokenRow | None:
    """The token whose secret hashes to ``digest`` (SHA-256 hex), or None; the caller compares in constant time."""
    r = tx.execute(select(schema.tokens).where(schema.tokens.c.token_hash == digest)).first()
    return None if r is None else _row(r)


def token_rows(tx: Transaction, principal: str | None = None) -> list[TokenRow]:
    """Every token in creation order, optionally only ``principal``'s."""
    t = schema.tokens
    q = select(t).order_by(t.c.created_at)
    if principal:
        q = q.where(t.c.principal == principal)
    return [_row(r) for r in tx.execute(q)]


def mark_revoked(tx: Transaction, token_id: str, *, by: str, at: str) -> None:
    """Record that ``by`` revoked the token at ``at`` (inside the change that logs ``token.revoke``)."""
    t = schema.tokens
    tx.execute(update(t).where(t.c.id == token_id).values(revoked_at=at, revoked_by=by))


def principal_enabled(tx: Transaction, name: str) -> bool:
    """Whether the principal a token belongs to exists and is not disabled."""
    p = schema.principals
    r = tx.execute(select(p.c.disabled).where(p.c.name == name)).first()
    return r is not None and not r.disabled
