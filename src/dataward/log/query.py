"""Reading the log: entries with filters, inclusion and consistency proofs (with the checkpoint they fit)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dataward.core import merkle
from dataward.core.checkpoint import Checkpoint, parse_note
from dataward.errors import InputError, IntegrityError, NotFoundError
from dataward.log.auditlog import LogEntry, NodeReader, latest_checkpoint
from dataward.store import schema
from dataward.timeutil import parse_iso, to_iso

if TYPE_CHECKING:
    from dataward.workspace import Workspace


def _row_to_entry(r: Any) -> LogEntry:
    body = bytes(r.entry)
    details = json.loads(body).get("details", {})
    return LogEntry(
        int(r.seq),
        r.time,
        r.principal,
        r.action,
        r.subject,
        details,
        r.keyid,
        body,
        bytes(r.signature),
        bytes(r.leaf_hash),
    )


def show_entries(
    ws: Workspace,
    *,
    action: str | None = None,
    principal: str | None = None,
    subject: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
    since: str | None = None,
    until: str | None = None,
) -> list[LogEntry]:
    """Entries matching every filter given (``*`` is a wildcard in action and subject; times are ISO-8601,
    ``since`` inclusive, ``until`` exclusive)."""
    t = schema.log_entries
    q = select(t)
    if since:
        q = q.where(t.c.time >= _iso(since, "--since"))
    if until:
        q = q.where(t.c.time < _iso(until, "--until"))
    if action:
        q = q.where(t.c.action.like(_pattern(action), escape="\\"))
    if principal:
        q = q.where(t.c.principal == principal)
    if subject:
        q = q.where(t.c.subject.like(_pattern(subject), escape="\\"))
    q = q.order_by(t.c.seq.desc() if newest_first else t.c.seq).limit(limit).offset(offset)
    with ws.engine.connect() as conn:
        return [_row_to_entry(r) for r in conn.execute(q)]


def _pattern(glob: str) -> str:
    """A LIKE pattern where only ``*`` is a wildcard (``%`` and ``_`` in names match themselves)."""
    esc = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return esc.replace("*", "%")


def _iso(text: str, what: str) -> str:
    try:
        return to_iso(parse_iso(text))
    except ValueError:
        raise InputError(f"{what} {text!r} is not an ISO-8601 time (e.g. 2026-11-25 or 2026-11-25T10:00:00Z)") from None


def get_entry(ws: Workspace, seq: int) -> LogEntry:
    t = schema.log_entries
    with ws.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.seq == seq)).first()
    if r is None:
        raise NotFoundError(f"no log entry {seq}")
    return _row_to_entry(r)


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note the proof is against
    entry: bytes = b""  # the signed entry body (canonical JSON) and its signature: the leaf's content
    signature: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "dataward-log-inclusion/v1",
            "index": self.seq,
            "tree_size": self.size,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "checkpoint": self.checkpoint.decode("utf-8"),
            "entry": self.entry.decode("utf-8"),
            "signature": base64.b64encode(self.signature).decode(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    size1: int
    size2: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the latest checkpoint (the new one when size2 is the latest size)
    old_checkpoint: bytes | None = None  # the signed checkpoints of size1 and size2, when the log has them
    new_checkpoint: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "dataward-log-consistency/v1",
            "size1": self.size1,
            "size2": self.size2,
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "checkpoint": self.checkpoint.decode("utf-8"),
            "old_checkpoint": None if self.old_checkpoint is None else self.old_checkpoint.decode("utf-8"),
            "new_checkpoint": None if self.new_checkpoint is None else self.new_checkpoint.decode("utf-8"),
        }


def checkpoint_at(conn: Any, size: int) -> bytes | None:
    """The signed checkpoint of exactly ``size`` entries, if one was made (one per append transaction)."""
    t = schema.checkpoints
    note = conn.execute(select(t.c.note).where(t.c.size == size)).scalar()
    return None if note is None else str(note).encode("utf-8")


def _prefetch(conn: Any, compute: Callable[[merkle.GetNode], list[bytes]]) -> list[bytes]:
    """Run a proof computation with every node it needs read in one query (not one query per node)."""
    nodes = NodeReader(conn)
    nodes.prefetch_for(compute)
    return compute(nodes)


def _checkpoint_size(note: bytes | None) -> int:
    """The tree size a stored checkpoint claims (its signature is checked by whoever uses the proof)."""
    if note is None:
        return 0
    return Checkpoint.from_text(parse_note(note).text).size


def prove_inclusion(ws: Workspace, seq: int) -> InclusionProof:
    """Inclusion proof of entry ``seq`` in the tree of the latest signed checkpoint."""
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
        size = _checkpoint_size(note)
        if note is None or not 0 <= seq < size:
            raise NotFoundError(f"no log entry {seq} (log has {size})")
        t = schema.log_entries
        row = conn.execute(select(t.c.leaf_hash, t.c.entry, t.c.signature).where(t.c.seq == seq)).first()
        if row is None:
            raise NotFoundError(f"log entry {seq} is missing", advice="Run `dataward log verify`.")
        try:
            proof = _prefetch(conn, lambda get: merkle.inclusion_proof(seq, size, get))
        except LookupError as exc:
            raise IntegrityError(f"cannot prove entry {seq}: {exc}", advice="Run `dataward log verify`.") from None
    return InclusionProof(seq, size, bytes(row.leaf_hash), tuple(proof), note, bytes(row.entry), bytes(row.signature))


def prove_consistency(ws: Workspace, size1: int, size2: int | None = None) -> ConsistencyProof:
    """Consistency proof from ``size1`` to ``size2`` (default: the latest checkpoint's size)."""
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
        size = _checkpoint_size(note)
        size2 = size if size2 is None else size2
        if note is None or not 0 < size1 <= size2 <= size:
            raise InputError(f"sizes must satisfy 0 < OLD_SIZE <= NEW_SIZE <= {size}")
        try:
            proof = _prefetch(conn, lambda get: merkle.consistency_proof(size1, size2, get))
        except LookupError as exc:
            raise IntegrityError(
                f"cannot prove {size1} -> {size2}: {exc}", advice="Run `dataward log verify`."
            ) from None
        old_note, new_note = checkpoint_at(conn, size1), checkpoint_at(conn, size2)
    return ConsistencyProof(size1, size2, tuple(proof), note, old_note, new_note)
