"""Reading the log: entries with filters, inclusion and consistency proofs (with the checkpoint they fit)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dataward.core import merkle
from dataward.errors import InputError, NotFoundError
from dataward.log.auditlog import LogEntry, NodeReader, latest_checkpoint, log_size
from dataward.store import schema
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
) -> list[LogEntry]:
    t = schema.log_entries
    q = select(t)
    if action:
        q = q.where(t.c.action.like(action.replace("*", "%")))
    if principal:
        q = q.where(t.c.principal == principal)
    if subject:
        q = q.where(t.c.subject.like(subject.replace("*", "%")))
    q = q.order_by(t.c.seq.desc() if newest_first else t.c.seq).limit(limit).offset(offset)
    with ws.engine.connect() as conn:
        return [_row_to_entry(r) for r in conn.execute(q)]


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

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.seq,
            "tree_size": self.size,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "checkpoint": self.checkpoint.decode("utf-8"),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    size1: int
    size2: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "size1": self.size1,
            "size2": self.size2,
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "checkpoint": self.checkpoint.decode("utf-8"),
        }


def prove_inclusion(ws: Workspace, seq: int) -> InclusionProof:
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
        size = log_size(conn)
        if note is None or not 0 <= seq < size:
            raise NotFoundError(f"no log entry {seq} (log has {size})")
        leaf = conn.execute(select(schema.log_entries.c.leaf_hash).where(schema.log_entries.c.seq == seq)).scalar()
        proof = merkle.inclusion_proof(seq, size, NodeReader(conn))
    return InclusionProof(seq, size, bytes(leaf or b""), tuple(proof), note)


def prove_consistency(ws: Workspace, size1: int, size2: int | None = None) -> ConsistencyProof:
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
        size = log_size(conn)
        size2 = size if size2 is None else size2
        if note is None or not 0 < size1 <= size2 <= size:
            raise InputError(f"sizes must satisfy 0 < OLD_SIZE <= NEW_SIZE <= {size}")
        proof = merkle.consistency_proof(size1, size2, NodeReader(conn))
    return ConsistencyProof(size1, size2, tuple(proof), note)
