"""Verify the whole audit log: entries, signatures, keys over time, the tree, stored nodes, the checkpoint.

Full mode checks every entry: canonical JSON, the indexed columns against the signed body, the sequence
number, time order, the signature (Ed25519, the dominant cost: 50-140 us each), and that the key was
valid when the entry was signed. The rows are cut into aligned chunks of :data:`CHUNK` sequence numbers;
with ``workers > 1`` the chunks are checked in a process pool (each worker reads its own rows), the
parent only joins the leaf hashes and builds the tree.

Incremental mode (docs/adr/0005-log-verification.md) re-uses an earlier successful full verification that
this client recorded in its witness file: ``(size, root, rows digest)``. Entries below that size only need
the tree check (their leaf hashes, which commit to body and signature, must still give the recorded root)
plus a digest of every stored column (so an edited index column is caught) and the key-validity check
(a revocation recorded since may reject them); entries from that size on get the full check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from dataward.core import ed25519, merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.core.dsse import key_id, legacy_key_id, public_key_from_hex
from dataward.errors import Error, InputError
from dataward.log.auditlog import entry_leaf_hash, latest_checkpoint
from dataward.store import schema
from dataward.store.catalog import make_engine
from dataward.timeutil import parse_iso, to_iso

if TYPE_CHECKING:
    from dataward.evidence.replay import TrustedState
    from dataward.workspace import Workspace

#: sequence numbers per chunk (the unit of parallel work and of the rows digest)
CHUNK = 1 << 15
#: below this many entries the pool's start-up costs more than it saves
PARALLEL_MIN_ENTRIES = 50_000
#: most "marked" lines kept (their total is counted)
MAX_MARKED = 1000


@dataclass(frozen=True)
class LogProblem:
    seq: int | None
    kind: str  # entry | signature | key | missing | order | tree | checkpoint | node | witness | evidence | projection
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
    marked_count: int = 0
    mode: str = "full"  # full | incremental
    trusted_prefix: int = 0  # incremental: entries below this were fully verified earlier (tree check only)
    rows_digest: str = ""
    chunk: int = CHUNK

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "entries": self.entries,
            "trusted_prefix": self.trusted_prefix,
            "signatures_checked": self.signatures_checked,
            "checkpoint_size": self.checkpoint_size,
            "root": self.root,
            "problems": [p.to_json() for p in self.problems],
            "marked": list(self.marked),
            "marked_count": max(self.marked_count, len(self.marked)),
        }


#: the indexed columns a row repeats from its signed body, and their place in a row of _ROW_COLUMNS
_COLUMNS = (("time", 1), ("principal", 2), ("action", 3), ("subject", 4), ("keyid", 6))
_ROW_COLUMNS = ("seq", "time", "principal", "action", "subject", "entry", "keyid", "signature", "leaf_hash")


def key_valid_at(row: Any, t: str) -> str | None:
    """Why a signature made at ``t`` with key ``row`` is invalid, or None if it is valid."""
    return _KeyInfo.of(row).invalid_at(_norm(t) or t)


def _norm(t: str | None) -> str | None:
    """Times as the log writes them (sortable as strings); None stays None."""
    if t is None:
        return None
    try:
        return to_iso(parse_iso(t))
    except ValueError:
        return t


@dataclass(frozen=True)
class _KeyInfo:
    keyid: str
    principal: str
    public_key: bytes
    created_at: str
    expires_at: str | None
    retired_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, row: Any) -> _KeyInfo:
        return cls(
            row.keyid,
            row.principal,
            bytes.fromhex(row.public_key),
            _norm(row.created_at) or "",
            _norm(row.expires_at),
            _norm(row.retired_at),
            _norm(row.revoked_at),
        )

    def invalid_at(self, t: str) -> str | None:
        k = self.keyid[:16]
        if self.created_at > t:
            return f"key {k} did not exist yet"
        if self.expires_at and self.expires_at < t:
            return f"key {k} had expired"
        if self.retired_at and self.retired_at < t:
            return f"key {k} had been retired by rotation"
        if self.revoked_at and self.revoked_at <= t:
            return f"key {k} had been revoked"
        return None


@dataclass(frozen=True)
class _Task:
    """Check the rows with ``lo <= seq < hi``; rows below ``trusted`` get the tree-only check."""

    lo: int
    hi: int
    trusted: int
    max_problems: int


@dataclass
class _ChunkResult:
    lo: int
    hi: int
    leaves: list[bytes] = field(default_factory=list)
    problems: list[LogProblem] = field(default_factory=list)
    n_sigs: int = 0
    marked: list[str] = field(default_factory=list)
    marked_count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_time: str = ""
    last_time: str = ""
    digest_all: bytes = b""
    digest_trusted: bytes = b""


def _row_digest(r: Any) -> bytes:
    """The stored index columns of a row, length-prefixed (entry and signature are covered by the leaf, and
    the leaf_hash column is compared with the computed leaf)."""
    t, p, a, sj, k = str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[6])
    text = f"{int(r[0])}|{len(t)}:{t}|{len(p)}:{p}|{len(a)}:{a}|{len(sj)}:{sj}|{len(k)}:{k}\n"
    return text.encode("utf-8", "surrogateescape")


def _cell_bytes(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def _check_rows(rows: Iterable[Any], task: _Task, keys: dict[str, _KeyInfo]) -> _ChunkResult:
    """The per-entry checks over ``rows`` (ordered by seq, all within the task's range)."""
    res = _ChunkResult(task.lo, task.hi)
    pubs: dict[str, ed25519.Verifier] = {}
    legacy_ids = {hashlib.sha256(k.public_key).hexdigest() for k in keys.values()}
    h_all = hashlib.sha256()
    h_trusted = hashlib.sha256()
    expected = task.lo
    last_time = ""
    problems = res.problems

    def problem(seq: int | None, kind: str, detail: str) -> None:
        if len(problems) < task.max_problems:
            problems.append(LogProblem(seq, kind, detail))

    for r in rows:
        seq = int(r[0])
        if res.first_seq is None:
            res.first_seq = seq  # a gap before a chunk's first row is found when the chunks are joined
        elif seq != expected:
            problem(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
        if seq < 0:
            problem(seq, "order", "entry has a negative sequence number (inserted)")
        res.last_seq = seq
        expected = seq + 1
        # a cell rewritten as another type (TEXT, a number) becomes bytes that fail the checks, never a crash
        body = _cell_bytes(r[5])
        sig = _cell_bytes(r[7])
        leaf = entry_leaf_hash(body, sig)
        res.leaves.append(leaf)
        rd = _row_digest(r)
        h_all.update(rd)
        h_all.update(leaf)
        trusted = 0 <= seq < task.trusted
        if trusted:
            h_trusted.update(rd)
            h_trusted.update(leaf)
        if not hmac.compare_digest(_cell_bytes(r[8]), leaf):
            problem(seq, "entry", "stored leaf hash differs from the entry's")
        if trusted:
            # fully verified earlier: the rows digest and the root (checked by the caller) cover body,
            # signature and columns; only a revocation recorded since can change the verdict.
            t = str(r[1])
            krow = keys.get(str(r[6]))
            if krow is None:
                why: str | None = "its key is no longer registered"
            elif krow.principal != r[2]:
                why = f"key {krow.keyid[:16]} now belongs to {krow.principal}, not {r[2]}"
            else:
                why = krow.invalid_at(t)
            if why:
                problem(seq, "key", f"signature made when {why}")
            elif krow is not None and krow.revoked_at:
                res.marked_count += 1
                if len(res.marked) < MAX_MARKED:
                    res.marked.append(
                        f"entry {seq}: signed by key {krow.keyid[:16]} before its revocation at {krow.revoked_at}"
                    )
            if not res.first_time:
                res.first_time = t
            if t < last_time:
                problem(seq, "order", "entry is older than the one before it (reordered)")
            last_time = max(last_time, t)
            continue
        try:
            obj = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            problem(seq, "entry", "entry is not valid JSON (altered)")
            continue
        if not isinstance(obj, dict) or canonical_json(obj) != body:
            problem(seq, "entry", "entry is not canonical JSON (altered)")
            continue
        if obj.get("seq") != seq:
            problem(seq, "order", f"entry says it is number {obj.get('seq')} (rows swapped or renumbered)")
        for col, i in _COLUMNS:
            if obj.get(col) != r[i]:
                problem(seq, "entry", f"column {col!r} was changed ({r[i]!r}, signed {obj.get(col)!r})")
        t = str(obj.get("time", ""))
        if not res.first_time:
            res.first_time = t
        if t < last_time:
            problem(seq, "order", "entry is older than the one before it (reordered)")
        last_time = max(last_time, t)
        kid = str(obj.get("keyid"))
        krow = keys.get(kid)
        if krow is None:
            problem(seq, "signature", f"signed by unknown key {kid[:16]} (forged entry)")
            continue
        check = pubs.get(kid)
        if check is None:
            check = pubs[kid] = ed25519.verifier(krow.public_key)
        if not check(sig, body):
            problem(seq, "signature", f"signature by {krow.principal} does not verify (entry forged or altered)")
            continue
        res.n_sigs += 1
        if kid in legacy_ids:
            res.marked_count += 1
            if len(res.marked) < MAX_MARKED:
                res.marked.append(
                    f"entry {seq}: names its key by the legacy key ID {kid[:16]} (a workspace from before "
                    f"keyrings); accepted as key {key_id(public_key_from_hex(krow.public_key.hex()))[:16]}"
                )
        if krow.principal != obj.get("principal"):
            problem(seq, "signature", f"signed by {krow.principal}'s key but claims principal {obj.get('principal')!r}")
        why = krow.invalid_at(t)
        if why:
            problem(seq, "key", f"signature made when {why}")
        elif krow.revoked_at:
            res.marked_count += 1
            if len(res.marked) < MAX_MARKED:
                res.marked.append(
                    f"entry {seq}: signed by key {krow.keyid[:16]} before its revocation at {krow.revoked_at}"
                )
    res.last_time = last_time
    res.digest_all = h_all.digest()
    res.digest_trusted = h_trusted.digest()
    return res


def _range_rows(conn: Connection, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    """The rows with ``lo <= seq < hi`` as plain tuples, straight from the driver (the row objects of the
    result layer cost more than the checks of a trusted entry)."""
    cols = ", ".join(_ROW_COLUMNS)  # constants; the bounds are ints
    sql = f"SELECT {cols} FROM log_entries WHERE seq >= {int(lo)} AND seq < {int(hi)} ORDER BY seq"  # noqa: S608
    cur = conn.connection.cursor()  # a DBAPI cursor on the connection's own transaction
    try:
        cur.execute(sql)
        while batch := cur.fetchmany(5000):
            yield from batch
    finally:
        cur.close()


# worker state (set once per pool process by the initializer)
_W: dict[str, Any] = {}


def _worker_init(url: str, keys: dict[str, _KeyInfo]) -> None:
    _W["engine"] = make_engine(url)
    _W["keys"] = keys


def _worker_run(task: _Task) -> _ChunkResult:
    with _W["engine"].connect() as conn:
        return _check_rows(_range_rows(conn, task.lo, task.hi), task, _W["keys"])


def _tasks(lo: int, hi: int, n_rows: int, trusted: int, max_problems: int, chunk: int) -> list[_Task]:
    """Aligned chunks covering ``[lo, hi]``; sequence numbers below 0 or far beyond the row count (a
    tampered row) get one chunk each side, so a forged huge number cannot blow up the task list."""
    out: list[_Task] = []
    if lo < 0:
        out.append(_Task(lo, 0, trusted, max_problems))
    k = 0
    while k * chunk <= hi and k * chunk < n_rows:
        # never past the snapshot's last row: workers read later, and the log may have grown meanwhile
        out.append(_Task(k * chunk, min((k + 1) * chunk, hi + 1), trusted, max_problems))
        k += 1
    if k * chunk <= hi:
        out.append(_Task(k * chunk, hi + 1, trusted, max_problems))
    return out


@contextmanager
def _snapshot(ws: Workspace) -> Iterator[Connection]:
    """One read transaction for the whole verification (SQLite WAL: a snapshot; PostgreSQL: REPEATABLE READ),
    so entries appended meanwhile are not mistaken for entries inserted without a checkpoint."""
    with ws.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _rows_digest(chunks: list[_ChunkResult], attr: str, size: int) -> str:
    h = hashlib.sha256()
    for c in chunks:
        if c.lo >= 0 and c.lo < size:
            h.update(getattr(c, attr))
    return h.hexdigest()


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def verify_log(
    ws: Workspace,
    *,
    max_problems: int = 100,
    workers: int | None = 1,
    incremental: bool = False,
    remember: bool = False,
    witness_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    parallel_min_entries: int = PARALLEL_MIN_ENTRIES,
    chunk: int = CHUNK,
) -> LogVerification:
    """Verify the audit log of ``ws``.

    ``workers``: processes for the entry checks (None: every available core). ``incremental``: use this
    client's record of an earlier full verification (in the witness file) to skip signature checks of the
    entries it covered. ``remember``: after a successful verification, record it there for next time.
    ``progress(done, total)`` is called as chunks finish.
    """
    from dataward.log import witness

    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    n_workers = default_workers() if workers is None else workers
    problems: list[LogProblem] = []

    def problem(seq: int | None, kind: str, detail: str) -> None:
        if len(problems) < max_problems:
            problems.append(LogProblem(seq, kind, detail))

    if chunk < 1:
        raise InputError(f"chunk must be at least 1, got {chunk}")
    wpath = Path(witness_path) if witness_path is not None else None
    mark = witness.verified_mark(ws, wpath) if incremental else None
    if mark is not None and mark.get("chunk", CHUNK) != chunk:
        chunk = int(mark.get("chunk", CHUNK))  # the rows digest was taken in chunks of this size
    trusted = int(mark["size"]) if mark else 0
    with _snapshot(ws) as snap:
        conn = snap
        key_rows = ws.public_keys(conn)
        counts: Any = conn.execute(
            select(func.count(), func.min(schema.log_entries.c.seq), func.max(schema.log_entries.c.seq))
        ).one()
        n_rows, lo, hi = counts
        note = latest_checkpoint(conn)
        keys: dict[str, _KeyInfo] = {}
        for kid, r in key_rows.items():
            try:
                pub = public_key_from_hex(r.public_key)
            except (Error, ValueError):
                problem(None, "key", f"registered key {kid[:16]} of {r.principal} is not an Ed25519 public key")
                continue
            current, legacy = key_id(pub), legacy_key_id(pub)
            if not (hmac.compare_digest(current, kid) or hmac.compare_digest(legacy, kid)):
                problem(None, "key", f"registered key {kid[:16]} of {r.principal} was replaced (ID does not match)")
                continue
            info = _KeyInfo.of(r)
            # a key is the same key under either ID form: entries of workspaces created before keyrings name
            # it by the SHA-256 of the raw key (dsse.legacy_key_id); each such entry is flagged below
            keys[kid] = info
            for alias in (current, legacy):
                keys.setdefault(alias, info)
        n_rows = int(n_rows or 0)
        tasks = _tasks(int(lo or 0), int(hi if hi is not None else -1), n_rows, trusted, max_problems, chunk)
        chunks: list[_ChunkResult] = []
        total = len(tasks)
        early: TrustedState | None = None
        if n_workers > 1 and n_rows >= parallel_min_entries and total > 1:
            # fork is quick and safe while this process has no other thread; otherwise start clean interpreters
            single = threading.active_count() == 1 and sys.platform == "linux"
            ctx = get_context("fork" if single else "spawn")
            with ProcessPoolExecutor(
                min(n_workers, total), mp_context=ctx, initializer=_worker_init, initargs=(ws.catalog_url, keys)
            ) as pool:
                futures: list[Future[_ChunkResult]] = [pool.submit(_worker_run, t) for t in tasks]
                # while the workers check entries, this process replays the log (the evidence check), as if
                # every entry passes; if one does not, the replay runs again without it (below)
                try:
                    early = _replay(conn, frozenset())
                except Exception:  # a failed entry may be what breaks it: replayed again below, without it
                    early = None
                for i, f in enumerate(futures):
                    chunks.append(f.result())
                    if progress:
                        progress(i + 1, total)
        else:
            for i, t in enumerate(tasks):
                chunks.append(_check_rows(_range_rows(conn, t.lo, t.hi), t, keys))
                if progress:
                    progress(i + 1, total)

        # join the chunks: gaps between them, time order across their boundaries
        leaves: list[bytes] = []
        n_sigs = 0
        marked: list[str] = []
        marked_count = 0
        expected = 0
        last_time = ""
        for c in chunks:
            if c.first_seq is not None and c.first_seq >= 0 and c.last_seq is not None:
                if c.first_seq > expected:
                    problem(expected, "missing", f"entries {expected}..{c.first_seq - 1} are missing (deleted)")
                expected = c.last_seq + 1
                if c.first_time and c.first_time < last_time:
                    problem(c.first_seq, "order", "entry is older than the one before it (reordered)")
                last_time = max(last_time, c.last_time)
            for p in c.problems:
                problem(p.seq, p.kind, p.detail)
            leaves.extend(c.leaves)
            n_sigs += c.n_sigs
            marked_count += c.marked_count
            marked.extend(c.marked[: max(0, MAX_MARKED - len(marked))])
        tree = merkle.MerkleTree(leaves)  # every level, once: the root, the prefix root and the node check
        root = tree.root() if leaves else merkle.EMPTY_ROOT
        if mark and not _trusted_prefix_intact(mark, tree, chunks):
            # something below the verified size changed: verify everything, which names the entries
            full = verify_log(
                ws,
                max_problems=max_problems,
                workers=workers,
                incremental=False,
                remember=False,
                witness_path=witness_path,
                progress=progress,
                parallel_min_entries=parallel_min_entries,
                chunk=chunk,
            )
            note_problem = LogProblem(
                None, "witness", f"entries below {mark['size']} changed since this client verified them (rewritten)"
            )
            return LogVerification(
                full.entries,
                full.signatures_checked,
                full.checkpoint_size,
                full.root,
                (*full.problems, note_problem),
                full.marked,
                full.marked_count,
                "full",
                0,
                full.rows_digest,
                full.chunk,
            )
        _check_nodes(conn, tree, problem)
        _check_evidence(ws, conn, problems, problem, early)
    cp_size = None
    if note is None:
        if leaves:
            problem(None, "checkpoint", "the log has entries but no signed checkpoint")
    else:
        try:
            cp = parse_signed_checkpoint(note, {ws.origin: ws.log_public_key()}, origin=ws.origin)
            cp_size = cp.size
            end = expected  # one past the last entry present
            if end < cp.size:
                problem(
                    end,
                    "missing",
                    f"entries {end}..{cp.size - 1} are missing: the signed checkpoint covers {cp.size} "
                    f"entries, the log ends at {end} (deleted or truncated)",
                )
            elif end > cp.size:
                problem(
                    cp.size,
                    "checkpoint",
                    f"entries {cp.size}..{end - 1} are not covered by the signed checkpoint of size "
                    f"{cp.size} (inserted without a checkpoint)",
                )
            elif len(leaves) != cp.size:
                problem(
                    None,
                    "checkpoint",
                    f"the log has {len(leaves)} entries where the signed checkpoint covers {cp.size} "
                    "(see the missing entries above)",
                )
            elif not hmac.compare_digest(cp.root_hash, root):
                problem(None, "tree", "the entries do not hash to the signed checkpoint's root")
        except Error as exc:
            problem(None, "checkpoint", f"latest checkpoint does not verify: {exc.message}")
    result = LogVerification(
        len(leaves),
        n_sigs,
        cp_size,
        root.hex(),
        tuple(problems),
        tuple(marked),
        marked_count,
        "incremental" if mark else "full",
        trusted,
        _rows_digest(chunks, "digest_all", len(leaves)),
        chunk,
    )
    if remember and result.ok and cp_size == len(leaves):
        witness.record_verified(ws, result, wpath)
    return result


def _replay(conn: Connection, distrust: frozenset[int]) -> TrustedState:
    from dataward.evidence.load import replay_log

    return replay_log(conn, check_signatures=False, distrust=distrust)


def _check_evidence(
    ws: Workspace,
    conn: Connection,
    found: list[LogProblem],
    problem: Callable[[int | None, str, str], None],
    early: TrustedState | None = None,
) -> None:
    """Replay the log into the trusted state (keys over time and roles from the log, not the keys table)
    and compare the catalog's decision columns with it: every divergence is named (table, row, column).
    ``early``: the replay made in the same snapshot while the entries were checked, trusting every entry;
    used when the entry checks failed none (otherwise it is replayed again, distrusting the failures)."""
    from dataward.evidence.load import projection_divergences

    bad = frozenset(p.seq for p in found if p.seq is not None and p.kind in ("entry", "signature", "order"))
    st = early if early is not None and not bad else _replay(conn, bad)
    for rp in st.problems:
        problem(rp.seq, "evidence", rp.detail)
    for dv in projection_divergences(ws, conn, st):
        problem(None, "projection", dv.line())


def _trusted_prefix_intact(mark: dict[str, Any], tree: merkle.MerkleTree, chunks: list[_ChunkResult]) -> bool:
    """The entries below the verified size still give the verified root, and their columns the same digest."""
    size = int(mark["size"])
    if tree.size < size:
        return False
    root = (tree.root(size) if size else merkle.EMPTY_ROOT).hex()
    return hmac.compare_digest(root, str(mark["root"])) and hmac.compare_digest(
        _rows_digest(chunks, "digest_trusted", size), str(mark["rows_digest"])
    )


def _check_nodes(conn: Connection, tree: merkle.MerkleTree, problem: Callable[[int | None, str, str], None]) -> None:
    """The stored perfect-subtree nodes (used for proofs) must be exactly the tree's perfect nodes."""
    bad = 0
    good = 0
    cur = conn.connection.cursor()  # plain tuples from the driver, in the snapshot's transaction
    try:
        cur.execute("SELECT level, idx, hash FROM log_nodes ORDER BY level, idx")
        while batch := cur.fetchmany(20_000):
            for lv, ix, h in batch:
                try:
                    ok = lv >= 0 and ix >= 0 and hmac.compare_digest(bytes(h), tree.get_node(lv, ix))
                except IndexError:
                    ok = False
                if ok:
                    good += 1
                    continue
                bad += 1
                if bad <= 3:
                    problem(ix if lv == 0 else None, "node", f"stored tree node (level {lv}, index {ix}) is wrong")
    finally:
        cur.close()
    n = tree.size
    missing = sum(n >> lv for lv in range(n.bit_length())) - good
    if missing > 0:
        problem(None, "node", f"{missing} stored tree node(s) are missing")
    if bad > 3:
        problem(None, "node", f"{bad} stored tree nodes are wrong")
