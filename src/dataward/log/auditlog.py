"""Appending to and reading the audit log inside catalog transactions.

Each entry is canonical JSON signed by the acting principal; its bytes are a leaf of an RFC 6962 Merkle
tree whose perfect subtrees are stored in ``log_nodes`` (level, index), so proofs need O(log n) reads.
Appends happen in the same transaction as the change they record; after each append (or batch of
appends) the workspace log key signs a C2SP checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from dataward.core import merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import Checkpoint, sign_checkpoint
from dataward.identity import Actor
from dataward.store import schema
from dataward.store.catalog import lock_for_append
from dataward.timeutil import now_iso


@dataclass(frozen=True)
class PendingEntry:
    actor: Actor
    action: str
    subject: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class LogEntry:
    seq: int
    time: str
    principal: str
    action: str
    subject: str
    details: Mapping[str, Any]
    keyid: str
    entry: bytes
    signature: bytes
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "principal": self.principal,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details),
            "keyid": self.keyid,
            "leaf_hash": self.leaf_hash.hex(),
        }


def entry_body(
    seq: int, time: str, principal: str, action: str, subject: str, details: Mapping[str, Any], keyid: str
) -> bytes:
    return canonical_json(
        {
            "seq": seq,
            "time": time,
            "principal": principal,
            "action": action,
            "subject": subject,
            "details": dict(details),
            "keyid": keyid,
        }
    )


def log_size(conn: Connection) -> int:
    n = conn.execute(select(func.max(schema.log_entries.c.seq))).scalar()
    return 0 if n is None else int(n) + 1


class NodeReader:
    """Reads stored perfect-subtree hashes, with a write-through cache for appends in one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        key = (level, index)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        t = schema.log_nodes
        h = self._conn.execute(select(t.c.hash).where(t.c.level == level, t.c.idx == index)).scalar()
        if h is None:
            raise LookupError(f"log node ({level}, {index}) is missing")
        self._cache[key] = bytes(h)
        return bytes(h)

    def remember(self, level: int, index: int, h: bytes) -> None:
        self._cache[(level, index)] = h


def root_at(size: int, get_node: NodeReader) -> bytes:
    """Root of the first ``size`` leaves, from stored perfect subtrees."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.subtree_root(0, size, get_node)


def append(conn: Connection, entries: Sequence[PendingEntry], *, log_key: Actor, origin: str) -> list[LogEntry]:
    """Append ``entries`` (in order) and sign one checkpoint for the new size; same transaction as the caller."""
    lock_for_append(conn)
    size = log_size(conn)
    nodes = NodeReader(conn)
    rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    out: list[LogEntry] = []
    for pe in entries:
        t = now_iso()
        body = entry_body(size, t, pe.actor.name, pe.action, pe.subject, pe.details, pe.actor.keyid)
        sig = pe.actor.sign(body)
        leaf = merkle.leaf_hash(body)
        rows.append(
            {
                "seq": size,
                "time": t,
                "principal": pe.actor.name,
                "action": pe.action,
                "subject": pe.subject,
                "entry": body,
                "keyid": pe.actor.keyid,
                "signature": sig,
                "leaf_hash": leaf,
            }
        )
        # new perfect subtrees completed by this leaf
        level, idx, h = 0, size, leaf
        nodes.remember(level, idx, h)
        node_rows.append({"level": level, "idx": idx, "hash": h})
        while idx & 1:
            h = merkle.node_hash(nodes(level, idx - 1), h)
            level, idx = level + 1, idx >> 1
            nodes.remember(level, idx, h)
            node_rows.append({"level": level, "idx": idx, "hash": h})
        out.append(LogEntry(size, t, pe.actor.name, pe.action, pe.subject, pe.details, pe.actor.keyid, body, sig, leaf))
        size += 1
    if rows:
        conn.execute(insert(schema.log_entries), rows)
        conn.execute(insert(schema.log_nodes), node_rows)
        root = root_at(size, nodes)
        note = sign_checkpoint(Checkpoint(origin, size, root), origin, log_key.key)
        conn.execute(insert(schema.checkpoints).values(size=size, note=note.decode("utf-8"), time=now_iso()))
    return out


def latest_checkpoint(conn: Connection) -> bytes | None:
    t = schema.checkpoints
    note = conn.execute(select(t.c.note).order_by(t.c.size.desc()).limit(1)).scalar()
    return None if note is None else str(note).encode("utf-8")


def iter_entries(conn: Connection, *, batch: int = 10_000) -> Iterator[Any]:
    t = schema.log_entries
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(select(t).order_by(t.c.seq))
    yield from result
