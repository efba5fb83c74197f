"""The thin I/O layer of evidence-first trust: read log rows and public keys, replay them, cache the result.

The cache lives on the :class:`~dataward.workspace.Workspace` object: entries already replayed are never
re-read (a row rewritten afterwards cannot change what was verified), new ones are replayed on top.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from dataward.evidence.replay import RawEntry, TrustedState, replay
from dataward.store import schema

if TYPE_CHECKING:
    from dataward.workspace import Workspace

_CACHE_ATTR = "_trusted_state"


def _as_bytes(v: Any) -> bytes:
    """A cell that should be bytes; a tampered cell of another type (TEXT, a number) becomes bytes that
    fail the checks, never an exception."""
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def raw_entries(conn: Connection, start: int = 0) -> Iterator[RawEntry]:
    """Log rows from sequence number ``start`` on, in order, as :class:`RawEntry` (no trust implied)."""
    t = schema.log_entries
    q = select(t.c.seq, t.c.time, t.c.principal, t.c.action, t.c.subject, t.c.keyid, t.c.entry, t.c.signature)
    for r in conn.execute(q.where(t.c.seq >= start).order_by(t.c.seq)):
        try:
            seq = int(r[0])
        except (TypeError, ValueError):
            continue
        yield RawEntry(seq, r[1], r[2], r[3], r[4], r[5], _as_bytes(r[6]), _as_bytes(r[7]))


def public_keys(conn: Connection) -> dict[str, bytes]:
    """keyid -> raw public key bytes from the keys table (each is checked against its ID on use)."""
    out: dict[str, bytes] = {}
    for kid, pub in conn.execute(select(schema.keys.c.keyid, schema.keys.c.public_key)):
        try:
            out[str(kid)] = bytes.fromhex(str(pub))
        except ValueError:
            continue
    return out


def default_policy_digest() -> str:
    from dataward.workflow.policy import default_policy_text

    return hashlib.sha256(default_policy_text().encode("utf-8")).hexdigest()


def replay_log(conn: Connection, *, state: TrustedState | None = None) -> TrustedState:
    """Replay the log read through ``conn`` (on top of ``state``, from its size on)."""
    st = state if state is not None else TrustedState(default_policy=default_policy_digest())
    return replay(raw_entries(conn, st.size), public_keys(conn), state=st)


def trusted_state(ws: Workspace, conn: Connection | None = None) -> TrustedState:
    """The workspace's trusted state, replaying only entries appended since the last call."""
    st: TrustedState | None = getattr(ws, _CACHE_ATTR, None)
    if conn is None:
        with ws.engine.connect() as c:
            st = replay_log(c, state=st)
    else:
        st = replay_log(conn, state=st)
    setattr(ws, _CACHE_ATTR, st)
    return st


def policy_requirements(ws: Workspace, digests: set[str]) -> Mapping[str, Mapping[str, int]]:
    """policy digest -> tier -> approvals required, for the policies whose text can be found and matches:
    the stored copy (``policy.set`` keeps one in the meta area), the workspace file, or the packaged default."""
    from dataward.errors import Error
    from dataward.workflow.policy import default_policy_text, parse_policy, policy_path

    texts: list[str] = [default_policy_text()]
    try:
        texts.append(policy_path(ws).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        pass
    for d in digests:
        try:
            texts.append(ws.objects.read_bytes("meta", d, verify=True).decode("utf-8"))
        except (Error, OSError, UnicodeDecodeError, ValueError):
            continue
    out: dict[str, dict[str, int]] = {}
    for text in texts:
        d = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if d in digests and d not in out:
            try:
                p = parse_policy(text, f"policy {d[:12]}")
            except Error:
                continue
            out[d] = {name: tier.approvals for name, tier in p.tiers.items()}
    return out
