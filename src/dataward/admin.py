"""Admin changes under a k-of-n threshold, in the style of TUF's root role.

A workspace's admin threshold K (``dataward init --admin-threshold K``, ``dataward admin threshold K``) is
recorded in the signed log. Adding principals, granting or revoking roles, registering, rotating or revoking
keys, setting the policy, adding sources and intel feeds, and changing the threshold itself are *admin
changes*. With K = 1 an admin change applies at once, signed by the acting admin. With K > 1 the library
call that would make it (``principals.add_principal`` and the others) instead records a *pending change*:

* the statement: the exact log entry the change will append (action, subject, details), the call that
  makes it (to re-run it when it applies), who proposed it and when, and the log's origin. Its SHA-256 over
  canonical JSON is the CHANGE id. It is logged as an ``admin.propose`` entry, signed by the proposer
  (whose signature counts when the proposer is an admin);
* each further admin signs it with ``admin.sign`` (:func:`sign`), an entry of the log signed with that
  admin's key. The same admin signing twice counts once; a non-admin is refused;
* when the K-th distinct, currently valid admin signs, the call is re-run in the same transaction as that
  signature: it must produce exactly the signed details, else the change no longer applies as proposed and
  nothing is written. The applying entry carries ``details.change``.

The log is the authority: :mod:`dataward.evidence.replay` recounts the signatures of every applied admin
change (each signer still an admin, its key still valid when the change applies) and refuses one applied
with fewer than K, so a role grant inserted by SQL, or a forged ``principal.add`` signed by one stolen
admin key, grants nothing and is named by ``dataward log verify``. The ``admin_changes`` and
``admin_signatures`` tables are a projection for listing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dataward.access import require
from dataward.core.canonical import canonical_json
from dataward.errors import AuthorizationError, ChangePending, ConflictError, InputError, NotFoundError
from dataward.evidence.replay import ChangeEvidence, TrustedState, change_id_of
from dataward.identity import Actor
from dataward.log import auditlog
from dataward.store import schema
from dataward.store.catalog import lock_for_append, write_transaction
from dataward.timeutil import now_iso
from dataward.workspace import Change, Workspace

STATEMENT_TYPE = "https://dataward.dev/admin-change/v1"


@dataclass
class AdminChange(Change):
    """A :class:`~dataward.workspace.Change` that may only be a proposal: when ``applies_now`` is False the
    catalog changes made in the block are rolled back; side effects outside the catalog must wait for it."""

    applies_now: bool = True


@dataclass(frozen=True)
class _Applying:
    change: ChangeEvidence
    signer: Actor
    signers: tuple[str, ...]


_APPLYING: contextvars.ContextVar[_Applying | None] = contextvars.ContextVar("dataward_admin_applying", default=None)


class _DryRun(Exception):
    """Rolls a proposal's catalog transaction back once its details are known."""


def _state(ws: Workspace) -> TrustedState:
    from dataward.evidence.load import trusted_state

    return trusted_state(ws)


@contextmanager
def admin_change(
    ws: Workspace, actor: Actor, action: str, subject: str, *, call: dict[str, Any]
) -> Iterator[AdminChange]:
    """One admin change: applied at once under an admin threshold of 1, else proposed (raises
    :class:`~dataward.errors.ChangePending` after the block) or, inside :func:`sign`, applied as signed.

    ``call`` is the JSON form of the library call that makes the change (``{"op": ACTION, "args": {...}}``,
    re-run by :func:`sign`); it must not depend on the time or on the caller's machine.
    """
    applying = _APPLYING.get()
    if applying is not None:
        with _applying_change(ws, actor, action, subject, applying) as ch:
            yield ch
        return
    st = _state(ws)
    if st.effective_admin_threshold() <= 1:
        with ws.change(actor, action, subject) as base:
            ch = AdminChange(base.conn, actor, action, subject, base.details, base.extra_entries)
            yield ch
        return
    details: dict[str, Any] = {}
    try:
        with write_transaction(ws.engine) as conn:
            require(actor.name, st.grants_of(actor.name), action)
            ch = AdminChange(conn, actor, action, subject, applies_now=False)
            yield ch
            details = dict(ch.details)
            raise _DryRun
    except _DryRun:
        pass
    except AuthorizationError as exc:
        ws.record_denial(actor.name, action, subject, str(exc))
        raise
    statement = {
        "type": STATEMENT_TYPE,
        "origin": ws.origin,
        "action": action,
        "subject": subject,
        "details": details,
        "call": call,
        "proposed_by": actor.name,
        "proposed_at": now_iso(),
    }
    raise _propose(ws, actor, statement)


def _propose(ws: Workspace, actor: Actor, statement: dict[str, Any]) -> ChangePending:
    cid = change_id_of(statement)
    st = _state(ws)
    signed = actor.name in st.admins()
    with write_transaction(ws.engine) as conn:
        require(actor.name, st.grants_of(actor.name), "admin.propose")
        conn.execute(
            insert(schema.admin_changes).values(
                id=cid,
                action=statement["action"],
                subject=statement["subject"],
                statement=canonical_json(statement).decode("utf-8"),
                status="pending",
                proposed_by=actor.name,
                proposed_at=statement["proposed_at"],
            )
        )
        if signed:
            _insert_signature(conn, cid, actor)
        auditlog.append(
            conn,
            [auditlog.PendingEntry(actor, "admin.propose", f"change:{cid}", {"change": cid, "statement": statement})],
            log_key=ws.log_actor(),
            origin=ws.origin,
        )
    return ChangePending(
        cid, statement["action"], statement["subject"], 1 if signed else 0, st.effective_admin_threshold()
    )


def _still_pending(ws: Workspace, conn: Connection, cid: str) -> None:
    """Under the log's append lock: ``cid`` is still pending (two admins signing at once: one applies it)."""
    from dataward.evidence.load import trusted_state

    lock_for_append(conn)
    ch = trusted_state(ws, conn).changes.get(cid)
    if ch is None or ch.status != "pending":
        raise ConflictError(
            f"change {cid[:16]} is {'unknown' if ch is None else ch.status}, not pending",
            advice="`dataward admin pending` lists the changes still waiting for signatures.",
        )


def _insert_signature(conn: Any, cid: str, actor: Actor) -> None:
    conn.execute(
        insert(schema.admin_signatures).values(
            change_id=cid, principal=actor.name, keyid=actor.keyid, signed_at=now_iso()
        )
    )


@contextmanager
def _applying_change(
    ws: Workspace, actor: Actor, action: str, subject: str, applying: _Applying
) -> Iterator[AdminChange]:
    ch_ev = applying.change
    if actor is not applying.signer or action != ch_ev.action or subject != ch_ev.subject:
        raise ConflictError(
            f"change {ch_ev.id[:16]} applies {ch_ev.action} of {ch_ev.subject}, not {action} of {subject}",
            advice="Withdraw the change (`dataward admin withdraw`) and propose it again.",
        )
    try:
        with write_transaction(ws.engine) as conn:
            _still_pending(ws, conn, ch_ev.id)
            require(actor.name, _state(ws).grants_of(actor.name), action)
            ch = AdminChange(conn, actor, action, subject, applies_now=True)
            yield ch
            if ch.details != ch_ev.statement.get("details"):
                diff = sorted(
                    k
                    for k in set(ch.details) | set(ch_ev.statement.get("details") or {})
                    if ch.details.get(k) != (ch_ev.statement.get("details") or {}).get(k)
                )
                raise ConflictError(
                    f"change {ch_ev.id[:16]} no longer applies as signed: the workspace changed since it was "
                    f"proposed ({', '.join(diff)} differ)",
                    advice="Withdraw it (`dataward admin withdraw`) and propose the change again.",
                )
            entry_details = {**ch.details, "change": ch_ev.id, "signers": list(applying.signers)}
            ch.entries = auditlog.append(
                conn,
                [
                    auditlog.PendingEntry(actor, "admin.sign", f"change:{ch_ev.id}", {"change": ch_ev.id}),
                    auditlog.PendingEntry(actor, action, subject, entry_details),
                    *ch.extra_entries,
                ],
                log_key=ws.log_actor(),
                origin=ws.origin,
            )
            _insert_signature(conn, ch_ev.id, actor)
            t = schema.admin_changes
            conn.execute(update(t).where(t.c.id == ch_ev.id).values(status="applied"))
    except AuthorizationError as exc:
        ws.record_denial(actor.name, action, subject, str(exc))
        raise


# --- the library calls a pending change re-runs ---------------------------------------------------------------


def _ops() -> dict[str, Callable[[Workspace, Actor, dict[str, Any]], Any]]:
    from dataward import principals, sources
    from dataward.model.keys import PublicKey
    from dataward.workflow import intel, policy

    def key(v: Any) -> PublicKey:
        return PublicKey.parse(str(v))

    def opt_key(v: Any) -> PublicKey | None:
        return None if v is None else key(v)

    def grants(v: Any) -> list[Any]:
        return [principals.parse_grant(str(g)) for g in v or []]

    return {
        "principal.add": lambda ws, a, kw: principals.add_principal(
            ws, a, kw["name"], grants(kw["roles"]), opt_key(kw["public_key"]), expires_at=kw["expires_at"]
        ),
        "role.grant": lambda ws, a, kw: principals.grant_roles(ws, a, kw["principal"], grants(kw["roles"])),
        "role.revoke": lambda ws, a, kw: principals.revoke_roles(ws, a, kw["principal"], grants(kw["roles"])),
        "key.add": lambda ws, a, kw: principals.add_key(
            ws, a, kw["principal"], key(kw["public_key"]), expires_at=kw["expires_at"]
        ),
        "key.rotate": lambda ws, a, kw: principals.rotate_key(
            ws, a, kw["principal"], key(kw["public_key"]), expires_at=kw["expires_at"]
        ),
        "key.revoke": lambda ws, a, kw: principals.revoke_key(ws, a, kw["keyid"], reason=kw["reason"], at=kw["at"]),
        "source.add": lambda ws, a, kw: sources.add_source(ws, a, **kw),
        "policy.set": lambda ws, a, kw: policy.set_policy(
            ws, a, ws.objects.read_bytes("meta", kw["sha256"], verify=True).decode("utf-8"), where=kw["where"]
        ),
        "intel.add": lambda ws, a, kw: intel.add_feed_bytes(
            ws,
            a,
            ws.objects.read_bytes("meta", kw["sha256"], verify=True),
            kw["where"],
            [key(k).crypto() for k in kw["keys"]],
        ),
        "admin.threshold": lambda ws, a, kw: set_threshold(ws, a, int(kw["threshold"])),
    }


# --- the API behind `dataward admin ...` ----------------------------------------------------------------------


def find_change(st: TrustedState, prefix: str) -> ChangeEvidence:
    """The change whose id starts with ``prefix`` (8+ hex characters), from the signed log."""
    p = prefix.strip().lower()
    if len(p) < 8 or any(c not in "0123456789abcdef" for c in p):
        raise InputError(f"change id {prefix!r}: give at least 8 hex characters of the CHANGE id")
    hits = [c for cid, c in st.changes.items() if cid.startswith(p)]
    if not hits:
        raise NotFoundError(
            f"no change {prefix!r} was proposed in the signed log", advice="List them with `dataward admin pending`."
        )
    if len(hits) > 1:
        raise InputError(f"change id prefix {prefix!r} is ambiguous")
    return hits[0]


def describe(st: TrustedState, ch: ChangeEvidence) -> dict[str, Any]:
    """A change as `admin pending` shows it: what it does, who signed, how many signatures count now."""
    from dataward.timeutil import now_iso as _now

    valid = st.valid_signers(ch, _now())
    return {
        "change": ch.id,
        "status": ch.status,
        "action": ch.action,
        "subject": ch.subject,
        "details": ch.statement.get("details"),
        "proposed_by": ch.proposed_by,
        "proposed_at": ch.statement.get("proposed_at"),
        "signed_by": sorted(ch.signatures),
        "valid_signatures": len(valid),
        "required": st.effective_admin_threshold(),
        "statement": ch.statement,
    }


def pending(ws: Workspace, *, include_closed: bool = False) -> list[dict[str, Any]]:
    """Pending admin changes (oldest first), read from the signed log (never from the catalog's rows)."""
    st = _state(ws)
    return [
        describe(st, c)
        for c in sorted(st.changes.values(), key=lambda c: c.proposed_seq)
        if include_closed or c.status == "pending"
    ]


def show(ws: Workspace, change: str) -> dict[str, Any]:
    st = _state(ws)
    return describe(st, find_change(st, change))


def sign(ws: Workspace, actor: Actor, change: str) -> dict[str, Any]:
    """Sign pending ``change`` as ``actor`` (an admin). The K-th distinct valid signature applies it, in the
    same transaction; before that the signature is logged as ``admin.sign``."""
    st = _state(ws)
    ch = find_change(st, change)
    if ch.status != "pending":
        raise ConflictError(f"change {ch.id[:16]} is {ch.status}, not pending")
    subject = f"change:{ch.id}"
    if actor.name not in st.admins():
        reason = f"{actor.name} may not admin.sign: only admins sign admin changes"
        ws.record_denial(actor.name, "admin.sign", subject, reason)
        raise AuthorizationError(reason, advice="An admin signs with `dataward admin sign CHANGE --as ADMIN`.")
    if actor.name in ch.signatures:
        raise ConflictError(
            f"{actor.name} already signed change {ch.id[:16]} (a second signature by the same admin counts once)",
            advice="Another admin signs it.",
        )
    if ch.statement.get("origin") != ws.origin:
        raise ConflictError(f"change {ch.id[:16]} was proposed for another log ({ch.statement.get('origin')})")
    need = st.effective_admin_threshold()
    valid = st.valid_signers(ch, now_iso()) | {actor.name}
    if len(valid) < need:
        with ws.change(actor, "admin.sign", subject) as c:
            _still_pending(ws, c.conn, ch.id)
            c.details["change"] = ch.id
            _insert_signature(c.conn, ch.id, actor)
        return {"change": ch.id, "applied": False, "valid_signatures": len(valid), "required": need}
    call = ch.statement.get("call")
    op = _ops().get(str(call.get("op"))) if isinstance(call, dict) else None
    if op is None or not isinstance(call, dict) or not isinstance(call.get("args"), dict):
        raise ConflictError(f"change {ch.id[:16]} names no call this dataward can apply")
    token = _APPLYING.set(_Applying(ch, actor, tuple(sorted(valid))))
    try:
        op(ws, actor, dict(call["args"]))
    finally:
        _APPLYING.reset(token)
    return {"change": ch.id, "applied": True, "valid_signatures": len(valid), "required": need}


def withdraw(ws: Workspace, actor: Actor, change: str, *, reason: str) -> dict[str, Any]:
    """Close pending ``change`` without applying it (any admin; logged as ``admin.withdraw``)."""
    if not reason.strip():
        raise InputError("withdrawing a change needs a reason (--reason)")
    st = _state(ws)
    ch = find_change(st, change)
    if ch.status != "pending":
        raise ConflictError(f"change {ch.id[:16]} is {ch.status}, not pending")
    with ws.change(actor, "admin.withdraw", f"change:{ch.id}") as c:
        _still_pending(ws, c.conn, ch.id)
        c.details.update({"change": ch.id, "reason": reason})
        t = schema.admin_changes
        c.conn.execute(update(t).where(t.c.id == ch.id).values(status="withdrawn"))
    return {"change": ch.id, "status": "withdrawn", "reason": reason}


def threshold(ws: Workspace) -> dict[str, Any]:
    """The admin threshold the signed log sets, the admins, and how many signatures a change needs now."""
    st = _state(ws)
    return {
        "threshold": st.admin_threshold,
        "admins": sorted(st.admins()),
        "required": st.effective_admin_threshold(),
    }


def set_threshold(ws: Workspace, actor: Actor, k: int) -> dict[str, Any]:
    """Make ``k`` the admin threshold (itself an admin change: it needs the current threshold's signatures)."""
    st = _state(ws)
    n = len(st.admins())
    if k < 1:
        raise InputError(f"admin threshold {k} must be at least 1")
    if k > n:
        raise InputError(
            f"admin threshold {k} is more than the {n} admin(s) the workspace has",
            advice="Add admins first (`dataward principal add NAME --role admin --key FILE`).",
        )
    with admin_change(
        ws, actor, "admin.threshold", "workspace:admins", call={"op": "admin.threshold", "args": {"threshold": k}}
    ) as ch:
        ch.details.update({"threshold": k, "previous": st.admin_threshold})
    return {"threshold": k, "previous": st.admin_threshold}


def changes_table(ws: Workspace) -> list[dict[str, Any]]:
    """The projection rows (for SQL consumers and the tamper tests; gates read :func:`pending`)."""
    with ws.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(schema.admin_changes))]
