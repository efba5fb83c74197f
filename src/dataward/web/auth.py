"""API tokens per principal (only their SHA-256 is stored), browser sessions, CSRF tokens, who may do what.

A token is ``dwt_`` + 32 random bytes (base64url). The catalog keeps ``sha256(token)`` only; lookups hash
the presented token and compare digests with :func:`hmac.compare_digest`. Creating and revoking tokens are
state changes through :meth:`Workspace.change` (actions ``token.create`` / ``token.revoke``), so they are
authorized and logged like every other change.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from dataward.access import allowed
from dataward.errors import AuthorizationError, ConflictError, InputError, NotFoundError
from dataward.identity import Actor
from dataward.model.roles import Grant
from dataward.model.subject import Subject
from dataward.store import schema
from dataward.timeutil import now, now_iso, parse_iso, to_iso
from dataward.workspace import Workspace, require_principal

TOKEN_PREFIX = "dwt_"  # noqa: S105 (a prefix, not a secret)
MAX_TOKEN_DAYS = 366
SESSION_HOURS = 12
_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``12h``, ``30d``, ``2w`` -> timedelta (at most a year)."""
    m = _DURATION.match(text.strip().lower())
    if m is None:
        raise InputError(f"token lifetime {text!r} is not a duration", advice="Use e.g. 90m, 12h, 30d or 2w.")
    delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if delta <= timedelta(0) or delta > timedelta(days=MAX_TOKEN_DAYS):
        raise InputError(f"token lifetime {text!r} must be between 1 minute and {MAX_TOKEN_DAYS} days")
    return delta


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    principal: str
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if parse_iso(self.expires_at) <= now() else "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "status": self.status,
        }


def _info(r: Any) -> TokenInfo:
    return TokenInfo(r.id, r.principal, r.created_at, r.created_by, r.expires_at, r.revoked_at, r.revoked_by)


def create_token(ws: Workspace, actor: Actor, principal: str, lifetime: timedelta) -> tuple[TokenInfo, str]:
    """A new token for ``principal`` (admins; logged). Returns its info and the secret, shown once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tid = secrets.token_hex(8)
    at = now()
    expires = to_iso(at + lifetime)
    with ws.change(actor, "token.create", Subject.principal(principal)) as ch:
        require_principal(ch.conn, principal)
        ch.conn.execute(
            insert(schema.tokens).values(
                id=tid,
                principal=principal,
                token_hash=token_hash(secret),
                created_at=to_iso(at),
                created_by=actor.name,
                expires_at=expires,
            )
        )
        # the hash (never the secret) is logged: a token row inserted by SQL matches no logged token
        ch.details.update(
            {"token": tid, "principal": principal, "expires_at": expires, "token_hash": token_hash(secret)}
        )
    return TokenInfo(tid, principal, to_iso(at), actor.name, expires), secret


def revoke_token(ws: Workspace, actor: Actor, token_id: str) -> TokenInfo:
    """Revoke a token by id (admins; logged). Sessions opened with it end at their next request."""
    t = schema.tokens
    with ws.change(actor, "token.revoke", f"token:{token_id}") as ch:
        r = ch.conn.execute(select(t).where(t.c.id == token_id)).first()
        if r is None:
            raise NotFoundError(f"no token {token_id!r}", advice="List tokens with `dataward token list`.")
        if r.revoked_at is not None:
            raise ConflictError(f"token {token_id} was already revoked at {r.revoked_at}")
        at = now_iso()
        ch.conn.execute(update(t).where(t.c.id == token_id).values(revoked_at=at, revoked_by=actor.name))
        ch.details.update({"token": token_id, "principal": r.principal})
        return TokenInfo(r.id, r.principal, r.created_at, r.created_by, r.expires_at, at, actor.name)


def list_tokens(ws: Workspace, principal: str | None = None) -> list[TokenInfo]:
    t = schema.tokens
    q = select(t).order_by(t.c.created_at)
    if principal:
        q = q.where(t.c.principal == principal)
    with ws.engine.connect() as conn:
        return [_info(r) for r in conn.execute(q)]


@dataclass(frozen=True)
class Viewer:
    """The signed-in principal of one request: name, grants, and the token that authenticated it."""

    name: str
    grants: tuple[Grant, ...]
    token_id: str

    def can(self, action: str, source: str | None = None) -> bool:
        return allowed(self.grants, action, source)


def _check_token_row(ws: Workspace, r: Any) -> Viewer:
    if r.revoked_at is not None:
        raise AuthorizationError(f"token {r.id} was revoked", advice="Ask an admin for a new token.")
    if parse_iso(r.expires_at) <= now():
        raise AuthorizationError(f"token {r.id} expired at {r.expires_at}", advice="Ask an admin for a new token.")
    with ws.engine.connect() as conn:
        p = conn.execute(select(schema.principals.c.disabled).where(schema.principals.c.name == r.principal)).first()
        if p is None or p.disabled:
            raise AuthorizationError(f"principal {r.principal!r} of token {r.id} is disabled")
        grants = tuple(ws.grants(conn, r.principal))
    return Viewer(r.principal, grants, r.id)


def authenticate(ws: Workspace, token: str) -> Viewer:
    """The principal a presented token stands for; refuses unknown, expired and revoked tokens."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthorizationError("not a dataward API token", advice="Tokens start with dwt_.")
    digest = token_hash(token)
    t = schema.tokens
    with ws.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.token_hash == digest)).first()
    if r is None or not hmac.compare_digest(str(r.token_hash), digest):
        raise AuthorizationError("unknown API token", advice="Ask an admin for a token (`dataward token create`).")
    return _check_token_row(ws, r)


def viewer_for_token_id(ws: Workspace, token_id: str) -> Viewer:
    """Re-check a session's token (revocation and expiry take effect at the next request)."""
    t = schema.tokens
    with ws.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.id == token_id)).first()
    if r is None:
        raise AuthorizationError(f"token {token_id} no longer exists")
    return _check_token_row(ws, r)


def token_expiry(ws: Workspace, token_id: str) -> datetime:
    t = schema.tokens
    with ws.engine.connect() as conn:
        exp = conn.execute(select(t.c.expires_at).where(t.c.id == token_id)).scalar()
    return parse_iso(str(exp)) if exp else now()


# --- browser sessions ----------------------------------------------------------------------------------------


@dataclass
class Session:
    id: str
    token_id: str
    principal: str
    csrf: str
    expires: datetime
    flash: list[str] = field(default_factory=list)


@dataclass
class SessionStore:
    """Server-side sessions (in memory: a restart signs everyone out). Keys are random 32-byte ids."""

    sessions: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, viewer: Viewer, token_expires: datetime) -> Session:
        s = Session(
            secrets.token_urlsafe(32),
            viewer.token_id,
            viewer.name,
            secrets.token_urlsafe(32),
            min(token_expires, now() + timedelta(hours=SESSION_HOURS)),
        )
        with self.lock:
            self._expire()
            self.sessions[s.id] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.lock:
            s = self.sessions.get(sid)
            if s is None or s.expires <= now():
                self.sessions.pop(sid, None)
                return None
            return s

    def close(self, sid: str | None) -> None:
        if sid:
            with self.lock:
                self.sessions.pop(sid, None)

    def _expire(self) -> None:
        t = now()
        for k in [k for k, s in self.sessions.items() if s.expires <= t]:
            del self.sessions[k]


def check_csrf(session: Session, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(session.csrf.encode(), presented.encode("utf-8", "replace")):
        raise AuthorizationError("missing or wrong CSRF token", advice="Reload the page and submit the form again.")


def require(ws: Workspace, viewer: Viewer, action: str, subject: str, source: str | None = None) -> None:
    """Refuse (and log the denied attempt) unless the viewer's roles allow ``action``."""
    if not viewer.can(action, source):
        from dataward.access import require as access_require

        try:
            access_require(viewer.name, viewer.grants, action, source)
        except AuthorizationError as exc:
            ws.record_denial(viewer.name, action, subject, str(exc))
            raise
