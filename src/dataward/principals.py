"""Principals, their roles and their keys over time (generate, rotate, revoke)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, delete, insert, select, update

from dataward.access import Grant, Role
from dataward.core.dsse import key_id, public_key_bytes
from dataward.errors import ConflictError, InputError, NotFoundError
from dataward.identity import LOG_PRINCIPAL, Actor
from dataward.log import auditlog
from dataward.store import schema
from dataward.store.catalog import write_transaction
from dataward.timeutil import now, now_iso, parse_iso, to_iso
from dataward.workspace import Change, Workspace, check_name, find_principal_exists


def parse_grant(text: str) -> Grant:
    """``role`` or ``role@source``."""
    role, _, src = text.partition("@")
    try:
        r = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}; one of {', '.join(x.value for x in Role)}") from None
    return Grant(r, src or None)


def _insert_principal(conn: Connection, name: str, by: str) -> None:
    conn.execute(insert(schema.principals).values(name=name, created_at=now_iso(), created_by=by, disabled=False))


def add_principal(ws: Workspace, actor: Actor, name: str, grants: list[Grant]) -> None:
    check_name(name, "principal")
    with ws.change(actor, "principal.add", f"principal:{name}") as ch:
        if find_principal_exists(ch.conn, name):
            raise ConflictError(f"principal {name!r} already exists")
        _insert_principal(ch.conn, name, actor.name)
        for g in grants:
            _insert_grant(ch.conn, name, g, actor.name)
        ch.details["roles"] = [_grant_text(g) for g in grants]


def _grant_text(g: Grant) -> str:
    return g.role.value + (f"@{g.source}" if g.source else "")


def _insert_grant(conn: Connection, principal: str, g: Grant, by: str) -> None:
    t = schema.role_grants
    q = select(t.c.id).where(t.c.principal == principal, t.c.role == g.role.value)
    q = q.where(t.c.source.is_(None)) if g.source is None else q.where(t.c.source == g.source)
    if conn.execute(q).first() is None:
        conn.execute(
            insert(t).values(
                principal=principal, role=g.role.value, source=g.source, granted_at=now_iso(), granted_by=by
            )
        )


def grant_roles(ws: Workspace, actor: Actor, principal: str, grants: list[Grant]) -> None:
    with ws.change(actor, "role.grant", f"principal:{principal}") as ch:
        if not find_principal_exists(ch.conn, principal):
            raise NotFoundError(f"no principal named {principal!r}")
        for g in grants:
            _insert_grant(ch.conn, principal, g, actor.name)
        ch.details["roles"] = [_grant_text(g) for g in grants]


def revoke_roles(ws: Workspace, actor: Actor, principal: str, grants: list[Grant]) -> None:
    with ws.change(actor, "role.revoke", f"principal:{principal}") as ch:
        if not find_principal_exists(ch.conn, principal):
            raise NotFoundError(f"no principal named {principal!r}")
        t = schema.role_grants
        removed = 0
        for g in grants:
            q = delete(t).where(t.c.principal == principal, t.c.role == g.role.value)
            q = q.where(t.c.source.is_(None)) if g.source is None else q.where(t.c.source == g.source)
            removed += ch.conn.execute(q).rowcount or 0
        ch.details["roles"] = [_grant_text(g) for g in grants]
        ch.details["removed"] = removed


def _new_key(
    ws: Workspace, conn: Connection, principal: str, expires_days: int | None, passphrase: bytes | None
) -> tuple[str, str | None]:
    key = Ed25519PrivateKey.generate()
    expires_at = to_iso(now() + timedelta(days=expires_days)) if expires_days else None
    kid = key_id(key.public_key())
    conn.execute(
        insert(schema.keys).values(
            keyid=kid,
            principal=principal,
            public_key=public_key_bytes(key.public_key()).hex(),
            created_at=now_iso(),
            expires_at=expires_at,
            status="active",
        )
    )
    ws.keys.save(key, passphrase)
    return kid, expires_at


def generate_key(
    ws: Workspace, actor: Actor, principal: str, *, expires_days: int | None = None, passphrase: bytes | None = None
) -> dict[str, Any]:
    """A first key for ``principal`` (created without roles if new). Use :func:`rotate_key` to replace one."""
    check_name(principal, "principal")
    with ws.change(actor, "key.generate", f"principal:{principal}") as ch:
        if not find_principal_exists(ch.conn, principal):
            _insert_principal(ch.conn, principal, actor.name)
            ch.details["principal_created"] = True
        if ws.active_key_row(ch.conn, principal) is not None:
            raise ConflictError(
                f"{principal} already has an active key", advice=f"Use `dataward key rotate {principal}`."
            )
        kid, expires_at = _new_key(ws, ch.conn, principal, expires_days, passphrase)
        ch.details.update({"keyid": kid, "expires_at": expires_at})
    return {
        "principal": principal,
        "keyid": kid,
        "expires_at": expires_at,
        "private_key_file": str(ws.keys.path / f"{kid}.pem"),
    }


def rotate_key(
    ws: Workspace, actor: Actor, principal: str, *, expires_days: int | None = None, passphrase: bytes | None = None
) -> dict[str, Any]:
    """Issue a new key and retire the old one: old signatures stay verifiable, new ones with it are refused."""
    action = "key.rotate"
    if principal == LOG_PRINCIPAL:
        raise ConflictError(
            "the workspace log key cannot be rotated like a principal's key",
            advice="Every client's witness pins it; a log-key hand-over is not supported yet.",
        )
    if actor.name != principal:
        # rotating someone else's key needs the admin role
        with ws.change(actor, action, f"principal:{principal}") as ch:
            old = _active_key_or_fail(ws, ch.conn, principal)
            _retire(ch.conn, old.keyid, now_iso())
            kid, expires_at = _new_key(ws, ch.conn, principal, expires_days, passphrase)
            ch.details.update({"old_keyid": old.keyid, "keyid": kid, "expires_at": expires_at})
    else:
        # a principal may always rotate its own key: the entry is signed with the old key, which is retired
        # at the entry's own time (so that signature stays valid and no later one is)
        with _self_change(ws, actor, action, principal) as ch:
            old = _active_key_or_fail(ws, ch.conn, principal)
            if old.keyid != actor.keyid:
                raise ConflictError(
                    f"{principal} acts with key {actor.keyid[:16]}, but its active key is {old.keyid[:16]}",
                    advice="Open the workspace again to act with the current key.",
                )
            kid, expires_at = _new_key(ws, ch.conn, principal, expires_days, passphrase)
            ch.details.update({"old_keyid": old.keyid, "keyid": kid, "expires_at": expires_at})
            ch.after_append.append(lambda entries: _retire(ch.conn, old.keyid, entries[0].time))
    return {"principal": principal, "keyid": kid, "retired": old.keyid, "expires_at": expires_at}


def _active_key_or_fail(ws: Workspace, conn: Connection, principal: str) -> Any:
    old = ws.active_key_row(conn, principal)
    if old is None:
        raise NotFoundError(
            f"{principal} has no active key to rotate", advice=f"Use `dataward key generate {principal}`."
        )
    return old


def _retire(conn: Connection, keyid: str, at: str) -> None:
    t = schema.keys
    conn.execute(update(t).where(t.c.keyid == keyid).values(status="retired", retired_at=at))


@dataclass
class _SelfChange(Change):
    after_append: list[Callable[[list[auditlog.LogEntry]], None]] = field(default_factory=list)


@contextmanager
def _self_change(ws: Workspace, actor: Actor, action: str, principal: str) -> Iterator[_SelfChange]:
    """Self-service: the transaction and log entry of ``ws.change``, without the admin-role requirement."""
    log_key = ws.log_actor()
    with write_transaction(ws.engine) as conn:
        ch = _SelfChange(conn, actor, action, f"principal:{principal}")
        yield ch
        ch.details["self_service"] = True
        ch.entries = auditlog.append(
            conn,
            [auditlog.PendingEntry(actor, action, ch.subject, ch.details)],
            log_key=log_key,
            origin=ws.origin,
        )
        for fn in ch.after_append:
            fn(ch.entries)


def revoke_key(ws: Workspace, actor: Actor, keyid_prefix: str, *, reason: str, at: str | None = None) -> dict[str, Any]:
    """Revoke a key from ``at`` (default now): later signatures are rejected, earlier ones stay valid, marked."""
    if not reason.strip():
        raise InputError("a revocation needs a reason (--reason)")
    try:
        when = to_iso(parse_iso(at)) if at else now_iso()
    except ValueError:
        raise InputError(f"revocation time {at!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z)") from None
    if when > now_iso():
        raise InputError(
            f"revocation time {at} is in the future", advice="Revoke now, or at the time the key was compromised."
        )
    with ws.change(actor, "key.revoke", f"key:{keyid_prefix}") as ch:
        row = _find_key(ch.conn, keyid_prefix)
        if row.keyid == actor.keyid:
            raise ConflictError(
                f"{actor.name} cannot revoke key {row.keyid[:16]}: it is the key this action is signed with",
                advice=f"Rotate first (`dataward key rotate {actor.name}`), then revoke the old key with the new one.",
            )
        if row.principal == LOG_PRINCIPAL:
            raise ConflictError(
                "the workspace log key cannot be revoked here",
                advice="Rotate the log key with `dataward log rotate-key`.",
            )
        if row.status == "revoked":
            raise ConflictError(f"key {row.keyid[:16]} is already revoked")
        t = schema.keys
        ch.conn.execute(
            update(t).where(t.c.keyid == row.keyid).values(status="revoked", revoked_at=when, revocation_reason=reason)
        )
        ch.subject = f"key:{row.keyid}"
        ch.details.update({"keyid": row.keyid, "principal": row.principal, "revoked_at": when, "reason": reason})
    return {"keyid": row.keyid, "principal": row.principal, "revoked_at": when, "reason": reason}


def _find_key(conn: Connection, prefix: str) -> Any:
    if len(prefix) < 8:
        raise InputError("give at least 8 hex characters of the key ID")
    t = schema.keys
    rows = conn.execute(select(t).where(t.c.keyid.like(prefix.lower() + "%"))).fetchall()
    if not rows:
        raise NotFoundError(f"no key with ID {prefix!r}")
    if len(rows) > 1:
        raise InputError(f"key ID prefix {prefix!r} is ambiguous")
    return rows[0]


def list_keys(ws: Workspace, principal: str | None = None) -> list[dict[str, Any]]:
    t = schema.keys
    q = select(t).order_by(t.c.principal, t.c.created_at)
    if principal:
        q = q.where(t.c.principal == principal)
    with ws.engine.connect() as conn:
        return [
            {
                "keyid": r.keyid,
                "principal": r.principal,
                "status": r.status,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "retired_at": r.retired_at,
                "revoked_at": r.revoked_at,
                "revocation_reason": r.revocation_reason,
            }
            for r in conn.execute(q)
        ]


def list_principals(ws: Workspace) -> list[dict[str, Any]]:
    with ws.engine.connect() as conn:
        names: list[str] = list(
            conn.execute(select(schema.principals.c.name).order_by(schema.principals.c.name)).scalars()
        )
        return [{"name": n, "roles": [_grant_text(g) for g in ws.grants(conn, n)]} for n in names]


def keys_due_for_rotation(ws: Workspace, max_age_days: int) -> list[dict[str, Any]]:
    """Active principals' keys older than ``max_age_days``, or expiring within a week (or expired)."""
    due = []
    for k in list_keys(ws):
        if k["status"] != "active" or k["principal"] == LOG_PRINCIPAL:
            continue  # the log key is pinned by every client's witness: it is not rotated like a principal's
        age = now() - parse_iso(k["created_at"])
        expiring = k["expires_at"] is not None and parse_iso(k["expires_at"]) - now() < timedelta(days=7)
        if age > timedelta(days=max_age_days) or expiring:
            due.append({**k, "age_days": age.days, "expiring_soon": expiring})
    return due
