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

from collections.abc import Callable
from typing import Any

from dataward import principals, sources
from dataward.errors import AuthorizationError, ConflictError, InputError, NotFoundError
from dataward.evidence.load import trusted_state
from dataward.evidence.replay import ChangeEvidence, TrustedState
from dataward.identity import Actor
from dataward.model.keys import PublicKey
from dataward.model.subject import Subject
from dataward.store import admin_changes as admin_rows
from dataward.timeutil import now_iso
from dataward.workflow import approval_policy, threat_feeds
from dataward.workspace import AdminChange, ApplyingChange, Workspace, admin_change, applying, still_pending

__all__ = ["AdminChange", "admin_change", "pending", "set_threshold", "show", "sign", "threshold", "withdraw"]


def _state(ws: Workspace) -> TrustedState:
    return trusted_state(ws)


# --- the library calls a pending change re-runs ---------------------------------------------------------------


def _ops() -> dict[str, Callable[[Workspace, Actor, dict[str, Any]], Any]]:
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
        "policy.set": lambda ws, a, kw: approval_policy.set_policy(
            ws, a, ws.objects.read_bytes("meta", kw["sha256"], verify=True).decode("utf-8"), where=kw["where"]
        ),
        "intel.add": lambda ws, a, kw: threat_feeds.add_feed_bytes(
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
    valid = st.valid_signers(ch, now_iso())
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
    """One change (a prefix of 8+ hex characters of its id), with its exact signed statement."""
    st = _state(ws)
    return describe(st, find_change(st, change))


def sign(ws: Workspace, actor: Actor, change: str) -> dict[str, Any]:
    """Sign pending ``change`` as ``actor`` (an admin). The K-th distinct valid signature applies it, in the
    same transaction; before that the signature is logged as ``admin.sign``."""
    st = _state(ws)
    ch = find_change(st, change)
    if ch.status != "pending":
        raise ConflictError(f"change {ch.id[:16]} is {ch.status}, not pending")
    subject = Subject.change(ch.id)
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
            still_pending(ws, c.conn, ch.id)
            c.details["change"] = ch.id
            admin_rows.insert_signature(c.conn, ch.id, actor.name, actor.keyid)
        return {"change": ch.id, "applied": False, "valid_signatures": len(valid), "required": need}
    call = ch.statement.get("call")
    op = _ops().get(str(call.get("op"))) if isinstance(call, dict) else None
    if op is None or not isinstance(call, dict) or not isinstance(call.get("args"), dict):
        raise ConflictError(f"change {ch.id[:16]} names no call this dataward can apply")
    with applying(ApplyingChange(ch, actor, tuple(sorted(valid)))):
        op(ws, actor, dict(call["args"]))
    return {"change": ch.id, "applied": True, "valid_signatures": len(valid), "required": need}


def withdraw(ws: Workspace, actor: Actor, change: str, *, reason: str) -> dict[str, Any]:
    """Close pending ``change`` without applying it (any admin; logged as ``admin.withdraw``)."""
    if not reason.strip():
        raise InputError("withdrawing a change needs a reason (--reason)")
    st = _state(ws)
    ch = find_change(st, change)
    if ch.status != "pending":
        raise ConflictError(f"change {ch.id[:16]} is {ch.status}, not pending")
    with ws.change(actor, "admin.withdraw", Subject.change(ch.id)) as c:
        still_pending(ws, c.conn, ch.id)
        c.details.update({"change": ch.id, "reason": reason})
        admin_rows.set_status(c.conn, ch.id, "withdrawn")
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
