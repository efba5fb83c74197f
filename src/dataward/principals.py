"""Principals, their roles and their public keys over time (register, rotate, revoke).

The workspace only ever receives public keys: each person generates their key pair in their own keyring
(``dataward key generate``, :class:`dataward.store.keyring.FileKeyring`) and hands the public key to an
admin, who registers it with the principal (:func:`add_principal`) or later (:func:`add_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dataward.errors import ChangePending, ConflictError, InputError, NotFoundError
from dataward.identity import LOG_PRINCIPAL, Actor
from dataward.log import auditlog
from dataward.model.keys import Key, KeyRecord, PublicKey
from dataward.model.roles import Grant, Role
from dataward.model.subject import Subject
from dataward.store import keys_repo, principals_repo
from dataward.store.catalog import Transaction, write_transaction
from dataward.store.keyring import FileKeyring
from dataward.timeutil import now, now_iso, parse_iso, to_iso
from dataward.workspace import Change, Workspace, admin_change, check_name, find_principal_exists


def parse_grant(text: str) -> Grant:
    """``role`` or ``role@source``."""
    role, _, src = text.partition("@")
    try:
        r = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}; one of {', '.join(x.value for x in Role)}") from None
    return Grant(r, src or None)


def _insert_principal(conn: Transaction, name: str, by: str) -> None:
    principals_repo.insert_principal(conn, name, created_at=now_iso(), created_by=by)


def add_principal(
    ws: Workspace,
    actor: Actor,
    name: str,
    grants: list[Grant],
    public_key: PublicKey | None = None,
    *,
    expires_days: int | None = None,
    expires_at: str | None = None,
) -> dict[str, Any]:
    """Add principal ``name`` with ``grants`` and its first public key, in one transaction and log entry.

    Without ``public_key`` the principal has no key until :func:`add_key` registers one. An admin change:
    under an admin threshold above 1 it is proposed (:class:`~dataward.errors.ChangePending`, see
    :mod:`dataward.admin`).
    """
    check_name(name, "principal")
    expires_at = _expiry(expires_days, expires_at)
    call = {
        "op": "principal.add",
        "args": {
            "name": name,
            "roles": [_grant_text(g) for g in grants],
            "public_key": public_key.hex() if public_key is not None else None,
            "expires_at": expires_at,
        },
    }
    with admin_change(ws, actor, "principal.add", Subject.principal(name), call=call) as ch:
        if find_principal_exists(ch.conn, name):
            raise ConflictError(f"principal {name!r} already exists")
        _insert_principal(ch.conn, name, actor.name)
        for g in grants:
            _insert_grant(ch.conn, name, g, actor.name)
        ch.details["roles"] = [_grant_text(g) for g in grants]
        info: dict[str, Any] = {"principal": name, "keyid": None, "expires_at": None}
        if public_key is not None:
            _register(ch.conn, name, public_key, expires_at)
            ch.details.update({"keyid": public_key.keyid, "public_key": public_key.hex(), "expires_at": expires_at})
            info.update({"keyid": public_key.keyid, "expires_at": expires_at})
    return info


def enroll(
    ws: Workspace,
    actor: Actor,
    name: str,
    grants: list[Grant] | None = None,
    *,
    keyring: FileKeyring | None = None,
    expires_days: int | None = None,
    passphrase: bytes | None = None,
) -> Actor:
    """Generate a key for ``name`` in ``keyring`` and add the principal with it; returns ``name`` acting.

    For one person setting up their own service principals, tests and demos: the private key goes to
    ``keyring`` (by default the *caller's* keyring, never the workspace). A colleague generates their
    own key instead and the admin calls :func:`add_principal` with its public half.
    """
    ring = keyring or FileKeyring()
    entry, pub = ring.generate(name, passphrase)
    try:
        add_principal(ws, actor, name, grants or [], pub, expires_days=expires_days)
    except ChangePending:
        raise  # the pending change registers this key when it applies: keep it
    except BaseException:
        entry.path.unlink(missing_ok=True)
        raise
    return ws.actor(name, keyring=ring, passphrase=passphrase)


def _grant_text(g: Grant) -> str:
    return g.role.value + (f"@{g.source}" if g.source else "")


def _insert_grant(conn: Transaction, principal: str, g: Grant, by: str) -> None:
    principals_repo.insert_grant(conn, principal, g.role.value, g.source, granted_at=now_iso(), granted_by=by)


def grant_roles(ws: Workspace, actor: Actor, principal: str, grants: list[Grant]) -> None:
    """Grant roles (an admin change, see :mod:`dataward.admin`)."""
    call = {"op": "role.grant", "args": {"principal": principal, "roles": [_grant_text(g) for g in grants]}}
    with admin_change(ws, actor, "role.grant", Subject.principal(principal), call=call) as ch:
        if not find_principal_exists(ch.conn, principal):
            raise NotFoundError(f"no principal named {principal!r}")
        for g in grants:
            _insert_grant(ch.conn, principal, g, actor.name)
        ch.details["roles"] = [_grant_text(g) for g in grants]


def revoke_roles(ws: Workspace, actor: Actor, principal: str, grants: list[Grant]) -> None:
    """Take roles away (an admin change, see :mod:`dataward.admin`)."""
    call = {"op": "role.revoke", "args": {"principal": principal, "roles": [_grant_text(g) for g in grants]}}
    with admin_change(ws, actor, "role.revoke", Subject.principal(principal), call=call) as ch:
        if not find_principal_exists(ch.conn, principal):
            raise NotFoundError(f"no principal named {principal!r}")
        removed = 0
        for g in grants:
            removed += principals_repo.delete_grant(ch.conn, principal, g.role.value, g.source)
        ch.details["roles"] = [_grant_text(g) for g in grants]
        ch.details["removed"] = removed


def _expiry(expires_days: int | None, expires_at: str | None) -> str | None:
    """An absolute expiry time (a pending change must not depend on when it applies)."""
    if expires_at is not None:
        return expires_at
    return to_iso(now() + timedelta(days=expires_days)) if expires_days else None


def _register(conn: Transaction, principal: str, key: PublicKey, expires_at: str | None) -> str | None:
    if keys_repo.key_owner(conn, key.keyid) is not None:
        raise ConflictError(
            f"key {key.keyid[:16]} is already registered",
            advice="Every principal needs a key of its own: `dataward key generate NAME` makes a new one.",
        )
    keys_repo.insert_key(conn, key.keyid, principal, key.hex(), created_at=now_iso(), expires_at=expires_at)
    return expires_at


def add_key(
    ws: Workspace,
    actor: Actor,
    principal: str,
    public_key: PublicKey,
    *,
    expires_days: int | None = None,
    expires_at: str | None = None,
) -> dict[str, Any]:
    """Register ``public_key`` as the first active key of ``principal`` (created without roles if new).

    An admin change (see :mod:`dataward.admin`)."""
    check_name(principal, "principal")
    expires_at = _expiry(expires_days, expires_at)
    call = {
        "op": "key.add",
        "args": {"principal": principal, "public_key": public_key.hex(), "expires_at": expires_at},
    }
    with admin_change(ws, actor, "key.add", Subject.principal(principal), call=call) as ch:
        if not find_principal_exists(ch.conn, principal):
            _insert_principal(ch.conn, principal, actor.name)
            ch.details["principal_created"] = True
        if ws.active_key_row(ch.conn, principal) is not None:
            raise ConflictError(
                f"{principal} already has an active key", advice=f"Use `dataward key rotate {principal} --key FILE`."
            )
        _register(ch.conn, principal, public_key, expires_at)
        ch.details.update({"keyid": public_key.keyid, "public_key": public_key.hex(), "expires_at": expires_at})
    return {"principal": principal, "keyid": public_key.keyid, "expires_at": expires_at}


def generate_key(
    ws: Workspace,
    actor: Actor,
    principal: str,
    *,
    expires_days: int | None = None,
    passphrase: bytes | None = None,
    keyring: FileKeyring | None = None,
) -> dict[str, Any]:
    """Generate a key for ``principal`` in ``keyring`` (default: the caller's) and register its public half.

    Kept for scripts and tests written before keyrings; people generate their own key with
    ``dataward key generate`` and an admin calls :func:`add_key`.
    """
    ring = keyring or FileKeyring()
    entry, pub = ring.generate(principal, passphrase)
    try:
        info = add_key(ws, actor, principal, pub, expires_days=expires_days)
    except ChangePending:
        raise  # the pending change registers this key when it applies: keep it
    except BaseException:
        entry.path.unlink(missing_ok=True)
        raise
    return {**info, "keyring": str(ring.path)}


def rotate_key(
    ws: Workspace,
    actor: Actor,
    principal: str,
    new_key: PublicKey | None = None,
    *,
    expires_days: int | None = None,
    expires_at: str | None = None,
    passphrase: bytes | None = None,
    keyring: FileKeyring | None = None,
) -> dict[str, Any]:
    """Register ``new_key`` and retire the old key: old signatures stay verifiable, new ones with it are refused.

    Without ``new_key`` a new key is generated into ``keyring`` (the caller's by default): right when a
    principal rotates its own key, and for the caller's own service principals.
    """
    action = "key.rotate"
    if principal == LOG_PRINCIPAL:
        raise ConflictError(
            "the workspace log key cannot be rotated like a principal's key",
            advice="Every client's witness pins it; a log-key hand-over is not supported yet.",
        )
    made = None
    if new_key is None:
        made, new_key = (keyring or FileKeyring()).generate(principal, passphrase)
    key = new_key
    expires_at = _expiry(expires_days, expires_at)
    try:
        if actor.name != principal:
            # rotating someone else's key needs the admin role (an admin change, see dataward.admin)
            call = {
                "op": "key.rotate",
                "args": {"principal": principal, "public_key": key.hex(), "expires_at": expires_at},
            }
            with admin_change(ws, actor, action, Subject.principal(principal), call=call) as ch:
                old = _active_key_or_fail(ws, ch.conn, principal)
                _retire(ch.conn, old.keyid, now_iso())
                _register(ch.conn, principal, key, expires_at)
                ch.details.update(
                    {"old_keyid": old.keyid, "keyid": key.keyid, "public_key": key.hex(), "expires_at": expires_at}
                )
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
                _register(ch.conn, principal, key, expires_at)
                ch.details.update(
                    {"old_keyid": old.keyid, "keyid": key.keyid, "public_key": key.hex(), "expires_at": expires_at}
                )
                ch.after_append.append(lambda entries: _retire(ch.conn, old.keyid, entries[0].time))
    except ChangePending:
        raise  # the pending change registers the new key when it applies: keep it
    except BaseException:
        if made is not None:
            made.path.unlink(missing_ok=True)
        raise
    return {"principal": principal, "keyid": key.keyid, "retired": old.keyid, "expires_at": expires_at}


def _active_key_or_fail(ws: Workspace, conn: Transaction, principal: str) -> KeyRecord:
    old = ws.active_key_row(conn, principal)
    if old is None:
        raise NotFoundError(
            f"{principal} has no active key to rotate", advice=f"Use `dataward key generate {principal}`."
        )
    return old


def _retire(conn: Transaction, keyid: str, at: str) -> None:
    keys_repo.retire_key(conn, keyid, at)


@dataclass
class _SelfChange(Change):
    after_append: list[Callable[[list[auditlog.LogEntry]], None]] = field(default_factory=list)


@contextmanager
def _self_change(ws: Workspace, actor: Actor, action: str, principal: str) -> Iterator[_SelfChange]:
    """Self-service: the transaction and log entry of ``ws.change``, without the admin-role requirement."""
    from dataward.store.crash import crash_point

    log_key = ws.log_actor()
    with write_transaction(ws.engine) as conn:
        ch = _SelfChange(conn, actor, action, Subject.principal(principal))
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
        crash_point(f"{action}.before-commit")  # crash-injection tests (dataward.store.crash)
    crash_point(f"{action}.after-commit")


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
    call = {"op": "key.revoke", "args": {"keyid": keyid_prefix, "reason": reason, "at": when}}
    with admin_change(ws, actor, "key.revoke", Subject.key(keyid_prefix), call=call) as ch:
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
        keys_repo.revoke_key(ch.conn, row.keyid, when, reason)
        ch.subject = Subject.key(row.keyid)
        ch.details.update({"keyid": row.keyid, "principal": row.principal, "revoked_at": when, "reason": reason})
    return {"keyid": row.keyid, "principal": row.principal, "revoked_at": when, "reason": reason}


def _find_key(conn: Transaction, prefix: str) -> KeyRecord:
    if len(prefix) < 8:
        raise InputError("give at least 8 hex characters of the key ID")
    rows = keys_repo.keys_with_prefix(conn, prefix)
    if not rows:
        raise NotFoundError(f"no key with ID {prefix!r}")
    if len(rows) > 1:
        raise InputError(f"key ID prefix {prefix!r} is ambiguous")
    return rows[0]


def list_keys(ws: Workspace, principal: str | None = None) -> list[dict[str, Any]]:
    """The keys of ``principal`` (default: everyone's) as JSON, by principal and age (no key material)."""
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
            for r in keys_repo.keys_of(conn, principal)
        ]


def list_principals(ws: Workspace) -> list[dict[str, Any]]:
    """Every principal with its roles as the signed log grants them."""
    with ws.engine.connect() as conn:
        names = principals_repo.principal_names(conn)
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


def registered_key(ws: Workspace, principal: str, keyid: str | None = None) -> Key | None:
    """The key ``keyid`` of ``principal`` (a prefix of 8+ hex is enough), or its active key; None if none."""
    with ws.engine.connect() as conn:
        row: KeyRecord | None
        if keyid is None:
            row = ws.active_key_row(conn, principal)
        else:
            row = _find_key(conn, keyid)
            if row.principal != principal:
                raise NotFoundError(f"key {row.keyid[:16]} belongs to {row.principal}, not {principal}")
        if row is None:
            known = any(k.principal == principal for k in keys_repo.keys_of(conn, principal))
            if not known and not find_principal_exists(conn, principal):
                raise NotFoundError(f"no principal named {principal!r}")
            return None
    return row.key()


def migrate_keys(ws: Workspace, actor: Actor, dest: Path) -> list[dict[str, Any]]:
    """Move every principal's private key out of the workspace's key directory into ``dest/NAME/``.

    For workspaces made before keyrings, where the admin generated everyone's key into ``keys/``. Each
    ``dest/NAME`` is a keyring (0700, files 0600, still encrypted if they were) to hand to NAME. A key is
    deleted from the workspace only after its copy is durable; the log's own key stays. One log entry
    lists the key IDs moved (never key material).
    """
    with ws.engine.connect() as conn:
        rows = ws.public_keys(conn)
    log_ids = {kid for kid, r in rows.items() if r.principal == LOG_PRINCIPAL}
    plan: list[tuple[Path, KeyRecord]] = []
    for f in sorted(ws.keys.path.glob("*.pem")):
        row = rows.get(f.stem)
        if f.stem in log_ids:
            continue
        if row is None:
            raise ConflictError(
                f"{f} is not the key of any registered principal",
                advice="Move or delete it by hand after checking whose key it is.",
            )
        plan.append((f, row))
    moved: list[dict[str, Any]] = []
    with ws.change(actor, "key.migrate", "keys:workspace") as ch:
        for f, row in plan:
            ring = FileKeyring(dest / row.principal)
            target = ring.path / f"{row.keyid}.{row.principal}.pem"
            if not target.exists():
                ring.add_pem(row.principal, f.read_bytes(), row.keyid)
            moved.append({"principal": row.principal, "keyid": row.keyid, "keyring": str(ring.path)})
        ch.details["moved"] = [{"principal": m["principal"], "keyid": m["keyid"]} for m in moved]
    for f, _row in plan:  # the copies are durable and the move is logged: now the workspace lets go
        f.unlink()
    return moved
