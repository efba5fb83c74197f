"""The audit log's tables (entries, perfect-subtree nodes, checkpoints): every query the log layer needs.

Typed functions over an open :data:`~dataward.store.catalog.Transaction`; the log layer decides what the
rows mean. Hot paths (appending a batch, reading a range of entries, the node check) go to the driver
directly: the log's columns are plain ints, strings and bytes, and SQLAlchemy's per-row processing costs
about as much as the cryptography around it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, text

from dataward.store import _schema as schema
from dataward.store.catalog import Transaction

__all__ = [
    "ENTRY_COLUMNS",
    "EntryRow",
    "SigningKeyRow",
    "checkpoint_at",
    "entry_counts",
    "entry_range",
    "find_entries",
    "get_entry_row",
    "insert_checkpoint",
    "insert_entries",
    "insert_nodes",
    "iter_entry_rows",
    "iter_nodes",
    "last_entry",
    "latest_checkpoint",
    "log_size",
    "node_count",
    "node_hash",
    "nodes",
    "nodes_from",
    "signed_by",
    "signing_key",
]

#: the columns of ``log_entries`` in table order (the tuples of :func:`entry_range` and :func:`insert_entries`)
ENTRY_COLUMNS = ("seq", "time", "principal", "action", "subject", "entry", "keyid", "signature", "leaf_hash")


@dataclass(frozen=True)
class EntryRow:
    """One stored entry as read (no trust implied: the log layer checks it)."""

    seq: int
    time: str
    principal: str
    action: str
    subject: str
    entry: bytes
    keyid: str
    signature: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class SigningKeyRow:
    """What an append needs to know of a signing key."""

    keyid: str
    principal: str
    status: str
    expires_at: str | None


def _bytes(v: Any) -> bytes:
    return bytes(v) if isinstance(v, bytes | bytearray | memoryview) else str(v).encode("utf-8", "surrogateescape")


def _entry_row(r: Any) -> EntryRow:
    return EntryRow(
        int(r.seq),
        r.time,
        r.principal,
        r.action,
        r.subject,
        _bytes(r.entry),
        r.keyid,
        _bytes(r.signature),
        _bytes(r.leaf_hash),
    )


# ------------------------------------------------------------------------------------------- entries


def log_size(conn: Transaction) -> int:
    """One past the highest sequence number (0 for an empty log)."""
    n = conn.execute(select(func.max(schema.log_entries.c.seq))).scalar()
    return 0 if n is None else int(n) + 1


def last_entry(conn: Transaction) -> tuple[int, str]:
    """(size, time of the last entry or '')."""
    t = schema.log_entries
    row = conn.execute(select(t.c.seq, t.c.time).order_by(t.c.seq.desc()).limit(1)).first()
    return (0, "") if row is None else (int(row.seq) + 1, str(row.time))


def entry_counts(conn: Transaction) -> tuple[int, int, int]:
    """(row count, lowest seq, highest seq) of the log: (0, 0, -1) when it is empty."""
    t = schema.log_entries
    row = conn.execute(select(func.count(), func.min(t.c.seq), func.max(t.c.seq))).one()
    n, lo, hi = row[0], row[1], row[2]
    return int(n or 0), int(lo or 0), -1 if hi is None else int(hi)


def entry_range(conn: Transaction, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    """The rows with ``lo <= seq < hi`` in seq order, as plain driver tuples in :data:`ENTRY_COLUMNS` order
    (cells as stored: a tampered cell may have another type)."""
    cols = ", ".join(ENTRY_COLUMNS)  # constants; the bounds are ints
    sql = f"SELECT {cols} FROM log_entries WHERE seq >= {int(lo)} AND seq < {int(hi)} ORDER BY seq"  # noqa: S608
    cur = conn.connection.cursor()  # a DBAPI cursor on the connection's own transaction
    try:
        cur.execute(sql)
        while batch := cur.fetchmany(5000):
            yield from batch
    finally:
        cur.close()


def iter_entry_rows(conn: Transaction, *, batch: int = 10_000) -> Iterator[Any]:
    """Every stored entry row in seq order, streamed (the row objects of the result layer)."""
    t = schema.log_entries
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(select(t).order_by(t.c.seq))
    yield from result


def get_entry_row(conn: Transaction, seq: int) -> EntryRow | None:
    """Entry ``seq`` as stored, or None."""
    t = schema.log_entries
    r = conn.execute(select(t).where(t.c.seq == seq)).first()
    return None if r is None else _entry_row(r)


def find_entries(
    conn: Transaction,
    *,
    since: str | None = None,
    until: str | None = None,
    action_like: str | None = None,
    principal: str | None = None,
    subject_like: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[EntryRow]:
    """Entries matching every filter given (``*_like``: LIKE patterns with ``\\`` as the escape)."""
    t = schema.log_entries
    q = select(t)
    if since:
        q = q.where(t.c.time >= since)
    if until:
        q = q.where(t.c.time < until)
    if action_like:
        q = q.where(t.c.action.like(action_like, escape="\\"))
    if principal:
        q = q.where(t.c.principal == principal)
    if subject_like:
        q = q.where(t.c.subject.like(subject_like, escape="\\"))
    q = q.order_by(t.c.seq.desc() if newest_first else t.c.seq).limit(limit).offset(offset)
    return [_entry_row(r) for r in conn.execute(q)]


def signed_by(conn: Transaction, below: int, keyids: Sequence[str]) -> list[tuple[int, str, str, str]]:
    """(seq, time, principal, keyid) of the entries below ``below`` that name one of ``keyids``, in order."""
    t = schema.log_entries
    q = select(t.c.seq, t.c.time, t.c.principal, t.c.keyid).where(t.c.seq < below, t.c.keyid.in_(list(keyids)))
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in conn.execute(q.order_by(t.c.seq))]


_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _bulk_insert(conn: Transaction, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the table's column order). executemany goes straight to the driver: the
    log's columns are plain ints, strings and bytes, and SQLAlchemy's per-row parameter processing costs
    about as much as signing the entry."""
    cols = [c.name for c in table.columns]
    ph = _PLACEHOLDER.get(str(conn.dialect.paramstyle))
    if ph is None or len(rows) < 8:
        conn.execute(insert(table), [dict(zip(cols, r, strict=True)) for r in rows])
        return
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([ph] * len(cols))})"  # noqa: S608
    conn.exec_driver_sql(sql, list(rows))


def insert_entries(conn: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert entry rows (tuples in :data:`ENTRY_COLUMNS` order)."""
    _bulk_insert(conn, schema.log_entries, rows)


# --------------------------------------------------------------------------------------------- nodes


def node_hash(conn: Transaction, level: int, index: int) -> bytes | None:
    """The stored perfect-subtree hash at (level, index), or None."""
    t = schema.log_nodes
    h = conn.execute(select(t.c.hash).where(t.c.level == level, t.c.idx == index)).scalar()
    return None if h is None else bytes(h)


def nodes(conn: Transaction, wanted: Sequence[tuple[int, int]]) -> list[tuple[int, int, bytes]]:
    """The stored nodes among ``wanted`` (level, index) pairs, read 200 to a query; missing ones are left out."""
    out: list[tuple[int, int, bytes]] = []
    keys = list(wanted)
    for i in range(0, len(keys), 200):
        part = keys[i : i + 200]
        # OR of (level, idx) equalities as plain SQL (building expressions costs more than the query);
        # SQLite answers each term from the primary key, where a row-value IN would scan. The values are
        # ints, written into the statement.
        where = " OR ".join(f"(level = {int(lv)} AND idx = {int(ix)})" for lv, ix in part)
        rows = conn.execute(text(f"SELECT level, idx, hash FROM log_nodes WHERE {where}"))  # noqa: S608
        out.extend((int(r[0]), int(r[1]), bytes(r[2])) for r in rows)
    return out


def nodes_from(conn: Transaction, level: int, first: int) -> list[tuple[int, bytes]]:
    """(index, hash) of the stored nodes of ``level`` from index ``first`` on."""
    t = schema.log_nodes
    q = select(t.c.idx, t.c.hash).where(t.c.level == level, t.c.idx >= first)
    return [(int(r[0]), _bytes(r[1])) for r in conn.execute(q)]


def iter_nodes(conn: Transaction) -> Iterator[tuple[Any, Any, Any]]:
    """Every stored node as a driver tuple (level, idx, hash), by level then index."""
    cur = conn.connection.cursor()  # plain tuples from the driver, in the caller's transaction
    try:
        cur.execute("SELECT level, idx, hash FROM log_nodes ORDER BY level, idx")
        while batch := cur.fetchmany(20_000):
            yield from batch
    finally:
        cur.close()


def node_count(conn: Transaction) -> int:
    """How many nodes are stored."""
    return int(conn.execute(select(func.count()).select_from(schema.log_nodes)).scalar() or 0)


def insert_nodes(conn: Transaction, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert (level, idx, hash) node rows."""
    _bulk_insert(conn, schema.log_nodes, rows)


# --------------------------------------------------------------------------------------- checkpoints


def latest_checkpoint(conn: Transaction) -> bytes | None:
    """The signed note of the largest checkpoint, or None."""
    t = schema.checkpoints
    note = conn.execute(select(t.c.note).order_by(t.c.size.desc()).limit(1)).scalar()
    return None if note is None else str(note).encode("utf-8")


def checkpoint_at(conn: Transaction, size: int) -> bytes | None:
    """The signed checkpoint of exactly ``size`` entries, if one was made (one per append transaction)."""
    t = schema.checkpoints
    note = conn.execute(select(t.c.note).where(t.c.size == size)).scalar()
    return None if note is None else str(note).encode("utf-8")


def insert_checkpoint(conn: Transaction, size: int, note: str, time: str) -> None:
    """Store a signed checkpoint note of ``size`` entries."""
    conn.execute(insert(schema.checkpoints).values(size=size, note=note, time=time))


# -------------------------------------------------------------------------------------------- keys


def signing_key(conn: Transaction, keyid: str) -> SigningKeyRow | None:
    """The registered key ``keyid`` as an append checks it, or None."""
    t = schema.keys
    row = conn.execute(select(t.c.keyid, t.c.principal, t.c.status, t.c.expires_at).where(t.c.keyid == keyid)).first()
    return None if row is None else SigningKeyRow(str(row[0]), str(row[1]), str(row[2]), row[3])
