"""The thin I/O layer of evidence-first trust: read log rows and public keys, replay them, cache the result.

The cache lives on the :class:`~dataward.workspace.Workspace` object: entries already replayed are never
re-read (a row rewritten afterwards cannot change what was verified), new ones are replayed on top.
"""

from __future__ import annotations

import contextlib
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
    from dataward.workflow.approval_policy import default_policy_text

    return hashlib.sha256(default_policy_text().encode("utf-8")).hexdigest()


def replay_log(
    conn: Connection,
    *,
    state: TrustedState | None = None,
    check_signatures: bool = True,
    distrust: frozenset[int] = frozenset(),
) -> TrustedState:
    """Replay the log read through ``conn`` (on top of ``state``, from its size on)."""
    st = state if state is not None else TrustedState(default_policy=default_policy_digest())
    return replay(
        raw_entries(conn, st.size), public_keys(conn), state=st, check_signatures=check_signatures, distrust=distrust
    )


def _last_leaf(conn: Connection, size: int) -> bytes | None:
    t = schema.log_entries
    v = conn.execute(select(t.c.leaf_hash).where(t.c.seq == size - 1)).scalar() if size else b""
    return None if v is None else _as_bytes(v)


def _refresh(conn: Connection, cached: TrustedState | None) -> TrustedState:
    # the cached prefix is kept only while the log still ends it the same way; a log that was rewound
    # (restored from a backup) is replayed from scratch: detecting the rewind is the witness's job
    if cached is not None and _last_leaf(conn, cached.size) != cached.last_leaf:
        cached = None
    st = replay_log(conn, state=cached)
    st.last_leaf = _last_leaf(conn, st.size)
    return st


def trusted_state(ws: Workspace, conn: Connection | None = None) -> TrustedState:
    """The workspace's trusted state, replaying only entries appended since the last call.

    Without ``conn`` it reads committed entries only and caches the result on ``ws``; with ``conn`` (a
    read transaction of the caller's) the result is not cached, since that transaction may yet roll back.
    """
    cached: TrustedState | None = getattr(ws, _CACHE_ATTR, None)
    if conn is not None:
        fresh = _refresh(conn, None if cached is None else cached.fork())
        return fresh
    with ws.engine.connect() as c:
        st = _refresh(c, cached)
    setattr(ws, _CACHE_ATTR, st)
    return st


def policy_requirements(ws: Workspace, digests: set[str]) -> Mapping[str, Mapping[str, int]]:
    """policy digest -> tier -> approvals required, for the policies whose text can be found and matches:
    the stored copy (``policy.set`` keeps one in the meta area), the workspace file, or the packaged default."""
    from dataward.errors import Error
    from dataward.workflow.approval_policy import default_policy_text, parse_policy, policy_path

    texts: list[str] = [default_policy_text()]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        texts.append(policy_path(ws).read_text(encoding="utf-8"))
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


def _signed_manifests(ws: Workspace, st: TrustedState) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """batch manifest digest -> signed predicate, for every batch the log acquired (re-hashed on read)."""
    from dataward.core import dsse
    from dataward.errors import Error

    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for b in st.batches.values():
        try:
            data = ws.objects.read_bytes("meta", b.manifest, verify=True)
            pred = dsse.parse_statement(dsse.Envelope.from_bytes(data)).predicate
        except (Error, OSError, ValueError) as exc:
            problems.append(f"batch {b.id}: its signed manifest {b.manifest[:16]} cannot be read ({exc})")
            continue
        if isinstance(pred, dict):
            out[b.manifest] = pred
    return out, problems


def catalog_rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts, with the natural key columns the projection compares on (audit rows
    are keyed by their batch, decisions also by their order among the same reviewer's on the record)."""
    t = schema.metadata.tables[table]
    rows = [dict(r._mapping) for r in conn.execute(select(t))]
    if table in ("audit_items", "audit_decisions"):
        a = schema.audits
        batch_of = {r.id: r.batch_id for r in conn.execute(select(a.c.id, a.c.batch_id))}
        for r in rows:
            r["batch_id"] = batch_of.get(r["audit_id"])
    if table == "audit_decisions":
        seen: dict[tuple[Any, ...], int] = {}
        for r in sorted(rows, key=lambda x: int(x["id"]) if isinstance(x["id"], int) else 0):
            k = (r["batch_id"], r["record"], r["reviewer"])
            r["n"] = seen.get(k, 0)
            seen[k] = r["n"] + 1
    return rows


def projection_divergences(ws: Workspace, conn: Connection, st: TrustedState) -> list[Any]:
    """Every catalog row or cell of a projected table that the replayed log ``st`` does not support."""
    from dataward.evidence.projection import KEYS, Divergence, compare, expected

    manifests, problems = _signed_manifests(ws, st)
    want = expected(st, origin=ws.origin, manifests=manifests)
    out: list[Divergence] = [Divergence("batches", p.split(":")[0][6:], None, p) for p in problems]
    for table in KEYS:
        out += compare(table, want[table], catalog_rows(conn, table), strict_rows=table != "meta")
    return out
