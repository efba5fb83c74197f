"""Reading the log: entries with filters, inclusion and consistency proofs (with the checkpoint they fit)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataward.core import merkle
from dataward.core.checkpoint import Checkpoint, parse_note
from dataward.errors import InputError, IntegrityError, NotFoundError
from dataward.log.auditlog import LogEntry, NodeReader, latest_checkpoint
from dataward.store import log_entries as store
from dataward.store.catalog import Transaction
from dataward.timeutil import parse_iso, to_iso

if TYPE_CHECKING:
    from dataward.workspace import Workspace


def _row_to_entry(r: store.EntryRow) -> LogEntry:
    details = json.loads(r.entry).get("details", {})
    return LogEntry(
        r.seq, r.time, r.principal, r.action, r.subject, details, r.keyid, r.entry, r.signature, r.leaf_hash
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
    lo = _iso(since, "--since") if since else None
    hi = _iso(until, "--until") if until else None
    with ws.engine.connect() as conn:
        rows = store.find_entries(
            conn,
            since=lo,
            until=hi,
            action_like=_pattern(action) if action else None,
            principal=principal or None,
            subject_like=_pattern(subject) if subject else None,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
    return [_row_to_entry(r) for r in rows]


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
    """Entry ``seq`` as stored (raises :class:`NotFoundError` if there is none)."""
    with ws.engine.connect() as conn:
        r = store.get_entry_row(conn, seq)
    if r is None:
        raise NotFoundError(f"no log entry {seq}")
    return _row_to_entry(r)


@dataclass(frozen=True)
class InclusionProof:
    """Everything a standalone verifier needs to check that entry ``seq`` is in the signed tree of ``size``."""

    seq: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note the proof is against
    entry: bytes = b""  # the signed entry body (canonical JSON) and its signature: the leaf's content
    signature: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The proof as ``dataward-log-inclusion/v1`` JSON (what ``log verify-proof`` reads)."""
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
    """A proof that the tree of ``size2`` entries extends the tree of ``size1``, with the checkpoints."""

    size1: int
    size2: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the latest checkpoint (the new one when size2 is the latest size)
    old_checkpoint: bytes | None = None  # the signed checkpoints of size1 and size2, when the log has them
    new_checkpoint: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """The proof as ``dataward-log-consistency/v1`` JSON (what ``log verify-proof`` reads)."""
        return {
            "type": "dataward-log-consistency/v1",
            "size1": self.size1,
            "size2": self.size2,
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "checkpoint": self.checkpoint.decode("utf-8"),
            "old_checkpoint": None if self.old_checkpoint is None else self.old_checkpoint.decode("utf-8"),
            "new_checkpoint": None if self.new_checkpoint is None else self.new_checkpoint.decode("utf-8"),
        }


def checkpoint_at(conn: Transaction, size: int) -> bytes | None:
    """The signed checkpoint of exactly ``size`` entries, if one was made (one per append transaction)."""
    return store.checkpoint_at(conn, size)


def _prefetch(conn: Transaction, compute: Callable[[merkle.GetNode], list[bytes]]) -> list[bytes]:
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
        row = store.get_entry_row(conn, seq)
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
