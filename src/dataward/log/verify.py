"""Verify the whole audit log: entries, signatures, tree, stored nodes and the latest checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import select

from dataward.core import merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.core.dsse import public_key_from_hex
from dataward.errors import Error
from dataward.log.auditlog import iter_entries, latest_checkpoint
from dataward.store import schema
from dataward.timeutil import parse_iso
from dataward.workspace import Workspace


@dataclass(frozen=True)
class LogProblem:
    seq: int | None
    kind: str  # entry | signature | key | missing | order | tree | checkpoint | node
    detail: str

    def line(self) -> str:
        return (f"entry {self.seq}: " if self.seq is not None else "log: ") + self.detail

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class LogVerification:
    entries: int
    signatures_checked: int
    checkpoint_size: int | None
    root: str
    problems: tuple[LogProblem, ...] = field(default=())
    marked: tuple[str, ...] = field(default=())  # valid but noteworthy (signed before a later revocation)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "signatures_checked": self.signatures_checked,
            "checkpoint_size": self.checkpoint_size,
            "root": self.root,
            "problems": [p.to_json() for p in self.problems],
            "marked": list(self.marked),
        }


_COLUMNS = ("time", "principal", "action", "subject", "keyid")


def key_valid_at(row: Any, t: str) -> str | None:
    """Why a signature made at ``t`` with key ``row`` is invalid, or None if it is valid."""
    when = parse_iso(t)
    if parse_iso(row.created_at) > when:
        return f"key {row.keyid[:16]} did not exist yet"
    if row.expires_at and parse_iso(row.expires_at) < when:
        return f"key {row.keyid[:16]} had expired"
    if row.retired_at and parse_iso(row.retired_at) < when:
        return f"key {row.keyid[:16]} had been retired by rotation"
    if row.revoked_at and parse_iso(row.revoked_at) <= when:
        return f"key {row.keyid[:16]} had been revoked"
    return None


def verify_log(ws: Workspace, *, max_problems: int = 100) -> LogVerification:
    problems: list[LogProblem] = []
    marked: list[str] = []

    def problem(seq: int | None, kind: str, detail: str) -> None:
        if len(problems) < max_problems:
            problems.append(LogProblem(seq, kind, detail))

    leaves: list[bytes] = []
    n_sigs = 0
    with ws.engine.connect() as conn:
        keys = ws.public_keys(conn)
        pubs = {k: public_key_from_hex(r.public_key) for k, r in keys.items()}
        expected = 0
        last_time = ""
        for row in iter_entries(conn):
            seq = int(row.seq)
            if seq != expected:
                if seq > expected:
                    problem(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
                expected = seq
            expected += 1
            body = bytes(row.entry)
            leaf = merkle.leaf_hash(body)
            leaves.append(leaf)
            try:
                obj = json.loads(body)
                canonical = canonical_json(obj) == body
            except (UnicodeDecodeError, json.JSONDecodeError):
                problem(seq, "entry", "entry is not valid JSON")
                continue
            if not canonical or not isinstance(obj, dict):
                problem(seq, "entry", "entry is not canonical JSON")
                continue
            if obj.get("seq") != seq:
                problem(seq, "order", f"entry says it is number {obj.get('seq')} (rows swapped or renumbered)")
            for col in _COLUMNS:
                if obj.get(col) != getattr(row, col):
                    problem(
                        seq, "entry", f"column {col!r} was changed ({getattr(row, col)!r}, signed {obj.get(col)!r})"
                    )
            if bytes(row.leaf_hash) != leaf:
                problem(seq, "entry", "stored leaf hash differs from the entry's")
            t = str(obj.get("time", ""))
            if t < last_time:
                problem(seq, "order", "entry is older than the one before it (reordered)")
            last_time = max(last_time, t)
            krow = keys.get(str(obj.get("keyid")))
            if krow is None:
                problem(seq, "signature", f"signed by unknown key {str(obj.get('keyid'))[:16]}")
                continue
            try:
                pubs[krow.keyid].verify(bytes(row.signature), body)
                n_sigs += 1
            except InvalidSignature:
                problem(seq, "signature", f"signature by {krow.principal} does not verify (entry forged or altered)")
                continue
            if krow.principal != obj.get("principal"):
                problem(
                    seq, "signature", f"signed by {krow.principal}'s key but claims principal {obj.get('principal')!r}"
                )
            why = key_valid_at(krow, t)
            if why:
                problem(seq, "key", f"signature made when {why}")
            elif krow.revoked_at:
                marked.append(
                    f"entry {seq}: signed by key {krow.keyid[:16]} before its revocation at {krow.revoked_at}"
                )
        root = merkle.root_from_leaf_hashes(leaves)
        _check_nodes(conn, leaves, problem)
        note = latest_checkpoint(conn)
    cp_size = None
    if note is None:
        if leaves:
            problem(None, "checkpoint", "the log has entries but no signed checkpoint")
    else:
        try:
            cp = parse_signed_checkpoint(note, {ws.origin: ws.log_public_key()}, origin=ws.origin)
            cp_size = cp.size
            if cp.size != len(leaves):
                what = "deleted or truncated" if cp.size > len(leaves) else "inserted without a checkpoint"
                problem(
                    None,
                    "checkpoint",
                    f"the signed checkpoint covers {cp.size} entries, the log has {len(leaves)} (entries {what})",
                )
            elif cp.root_hash != root:
                problem(None, "tree", "the entries do not hash to the signed checkpoint's root")
        except Error as exc:
            problem(None, "checkpoint", f"latest checkpoint does not verify: {exc.message}")
    return LogVerification(len(leaves), n_sigs, cp_size, root.hex(), tuple(problems), tuple(marked))


def _check_nodes(conn: Any, leaves: list[bytes], problem: Any) -> None:
    """The stored perfect-subtree nodes (used for proofs) must match the entries."""
    t = schema.log_nodes
    stored = {(int(r.level), int(r.idx)): bytes(r.hash) for r in conn.execute(select(t.c.level, t.c.idx, t.c.hash))}
    level = leaves
    lv = 0
    bad = 0
    while level:
        for i, h in enumerate(level):
            if stored.get((lv, i)) != h:
                bad += 1
                if bad <= 3:
                    problem(
                        i if lv == 0 else None, "node", f"stored tree node (level {lv}, index {i}) is wrong or missing"
                    )
        if len(level) < 2:
            break
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        lv += 1
    if bad > 3:
        problem(None, "node", f"{bad} stored tree nodes are wrong or missing")
