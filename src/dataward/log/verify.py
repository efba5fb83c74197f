"""Verify the whole audit log: entries, signatures, keys over time, the tree, stored nodes, the checkpoint.

Full mode checks every entry: canonical JSON, the indexed columns against the signed body, the sequence
number, time order, the signature (Ed25519, the dominant cost), and that the key was valid when the entry
was signed. The rows are cut into aligned chunks of :data:`CHUNK` sequence numbers (smaller when a pool
would otherwise get too few to share out evenly, :func:`balanced_chunk`); with ``workers > 1``
the chunks are checked in a process pool (each worker reads its own rows), the parent only joins the leaf
hashes and builds the tree.

Incremental mode (docs/adr/0045-incremental-witness-and-log-speed.md) starts from what an earlier
successful verification proved, as this client recorded it in its witness: the size N, the compact range
(frontier) of the first N leaves bound to the signed checkpoint of size N, the replayed evidence state,
and a digest of each key. It reads only the entries from N on: they get the full check, their leaves
extend the frontier to the current root (which must be the signed checkpoint's), the stored frontier
nodes must be the recorded ones, and the evidence replay continues from the recorded state. A key changed
since re-judges the verified entries it signed. Cost: O(new entries) + O(log n) (+ the entries of a
changed key); anything that does not fit falls back to a full verification, which names the entries.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import itertools
import json
import json.scanner
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

from dataward.core import ed25519, leafhash, merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.core.dsse import key_id, legacy_key_id, public_key_from_hex
from dataward.errors import Error, InputError
from dataward.log import _gc, witness
from dataward.log.auditlog import NodeReader, canonical_bytes, canonical_text, entry_leaf_hash, latest_checkpoint
from dataward.log.witness import StateBase, VerifiedMark
from dataward.store import log_entries as store
from dataward.store.catalog import Transaction, make_engine
from dataward.timeutil import parse_iso, to_iso

if TYPE_CHECKING:
    from dataward.evidence.replay import TrustedState
    from dataward.workspace import Workspace

#: sequence numbers per chunk at most (the unit of parallel work)
CHUNK = 1 << 15
#: a parallel verification cuts the entries into at least this many chunks per worker (smaller chunks, down
#: to :data:`_ROW_BATCH`): four chunks of 32k over two workers left one worker idle for a third of the time
TASKS_PER_WORKER = 4
#: below this many entries the pool's start-up costs more than it saves
PARALLEL_MIN_ENTRIES = 50_000
#: most "marked" lines kept (their total is counted)
MAX_MARKED = 1000
#: rows checked per pass of the hashing and the signatures (a chunk is read and checked in such batches)
_ROW_BATCH = 4096


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with the log, naming the entry when there is one."""

    seq: int | None
    kind: str  # entry | signature | key | missing | order | tree | checkpoint | node | witness | evidence | projection
    detail: str

    def line(self) -> str:
        """The problem as one line of text."""
        return (f"entry {self.seq}: " if self.seq is not None else "log: ") + self.detail

    def to_json(self) -> dict[str, Any]:
        """The problem as a JSON object."""
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class LogVerification:
    """The outcome of :func:`verify_log`: what was checked, the root, every problem and the marked entries."""

    entries: int
    signatures_checked: int
    checkpoint_size: int | None
    root: str
    problems: tuple[LogProblem, ...] = field(default=())
    marked: tuple[str, ...] = field(default=())  # valid but noteworthy (signed before a later revocation)
    marked_count: int = 0
    mode: str = "full"  # full | incremental
    trusted_prefix: int = 0  # incremental: entries below this were verified earlier (not read again)
    chunk: int = CHUNK
    fallback: str = ""  # incremental asked for, full done: why this client's earlier record was not used

    @property
    def ok(self) -> bool:
        """Whether the verification found no problem."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object (``log verify --json``)."""
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
            **({"fallback": self.fallback} if self.fallback else {}),
        }


#: the indexed columns a row repeats from its signed body, and their place in a row of _ROW_COLUMNS
_COLUMNS = (("time", 1), ("principal", 2), ("action", 3), ("subject", 4), ("keyid", 6))
_ROW_COLUMNS = store.ENTRY_COLUMNS


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
    """Check the rows with ``lo <= seq < hi``."""

    lo: int
    hi: int
    max_problems: int


@dataclass
class _ChunkResult:
    lo: int
    hi: int
    leaves: list[bytes] = field(default_factory=list)
    problems: list[LogProblem] = field(default_factory=list)
    n_sigs: int = 0
    marked: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, keyid, line)
    marked_count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_time: str = ""
    last_time: str = ""


def _cell_bytes(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def _revocation_mark(seq: int, krow: _KeyInfo) -> tuple[int, str, str]:
    line = f"entry {seq}: signed by key {krow.keyid[:16]} before its revocation at {krow.revoked_at}"
    return (seq, krow.keyid, line)


#: the C scanner ``json.loads`` ends in, called directly on the decoded text (json.loads of bytes first
#: guesses the encoding, then strips whitespace around the document: a third of the parse of a log entry)
_scan_json: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


#: what :func:`_parse_body` returns for a body that is not JSON at all
_NOT_JSON: Any = object()


def _parse_body(body: bytes) -> tuple[Any, bool]:
    """(the JSON value of ``body``, whether it is a dict and ``body`` its canonical JSON); (_NOT_JSON, False)
    when ``body`` is no JSON."""
    try:
        text = body.decode("utf-8")
        obj, end = _scan_json(text, 0)
        if end == len(text) and type(obj) is dict:
            return obj, canonical_text(obj) == text  # the same as comparing the bytes (canonical_text)
    except (UnicodeError, ValueError, StopIteration, RecursionError):
        pass
    # anything else (another encoding, whitespace around it, not JSON): json.loads says what it is
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _NOT_JSON, False
    try:
        return obj, isinstance(obj, dict) and canonical_bytes(obj) == body
    except (UnicodeError, ValueError):  # lone surrogates (json.loads lets them through), NaN
        return obj, False


def _check_rows(rows: Iterable[Any], task: _Task, keys: dict[str, _KeyInfo]) -> _ChunkResult:
    """The per-entry checks over ``rows`` (ordered by seq, all within the task's range).

    The rows are taken :data:`_ROW_BATCH` at a time. For each batch the hashing and the signatures are done
    first, each in one tight pass: the leaf hashes
    in one call (:func:`dataward.core.leafhash.entry_leaves`, native when built), compared with the stored
    ones at once; each signature verified with the key its row's ``keyid`` column names. The entry loop
    then uses those results, and verifies again itself whenever the signed body names another key than
    the column (the column is reported as changed; the verdict is the body's key's), so every entry gets
    exactly the checks and the reports of one entry at a time."""
    res = _ChunkResult(task.lo, task.hi)
    legacy_ids = {hashlib.sha256(k.public_key).hexdigest() for k in keys.values()}
    expected = task.lo
    last_time = ""
    problems = res.problems
    compare = hmac.compare_digest
    scan, ctext = _scan_json, canonical_text
    pubs: dict[str, ed25519.Verifier] = {}
    leaves = res.leaves
    it = iter(rows)

    def problem(seq: int | None, kind: str, detail: str) -> None:
        if len(problems) < task.max_problems:
            problems.append(LogProblem(seq, kind, detail))

    def mark(m: tuple[int, str, str]) -> None:
        res.marked_count += 1
        if len(res.marked) < MAX_MARKED:
            res.marked.append(m)

    # the rows a few thousand at a time (the lists of a batch stay in the caches)
    while rows_b := list(itertools.islice(it, _ROW_BATCH)):
        # a cell rewritten as another type (TEXT, a number) becomes bytes that fail the checks, never a crash
        bodies = [r[5] if type(r[5]) is bytes else _cell_bytes(r[5]) for r in rows_b]
        sigs = [r[7] if type(r[7]) is bytes else _cell_bytes(r[7]) for r in rows_b]
        blob = leafhash.entry_leaves(bodies, sigs)
        at = len(leaves)
        leaves.extend(blob[i : i + 32] for i in range(0, len(blob), 32))
        stored = [r[8] for r in rows_b]
        # every stored leaf hash at once when each is 32 bytes (otherwise, or on a difference, entry by entry)
        leaves_ok = all(type(h) is bytes and len(h) == 32 for h in stored) and compare(b"".join(stored), blob)
        # the signatures, each with the key its keyid column names (None: no such key; the loop judges it)
        col_kids = [r[6] for r in rows_b]
        kinds = set(col_kids)
        for kid in kinds:
            if type(kid) is str and kid in keys and kid not in pubs:
                pubs[kid] = ed25519.verifier(keys[kid].public_key)
        sig_ok: list[bool | None]
        if len(kinds) == 1 and (one := pubs.get(next(iter(kinds)))) is not None:
            sig_ok = list(map(one, sigs, bodies))
        else:
            get_pub = pubs.get
            sig_ok = [
                None if (c := get_pub(k) if type(k) is str else None) is None else c(s, b)
                for k, s, b in zip(col_kids, sigs, bodies, strict=True)
            ]
        for i, r in enumerate(rows_b):
            seq = r[0] if type(r[0]) is int else int(r[0])
            if res.first_seq is None:
                res.first_seq = seq  # a gap before a chunk's first row is found when the chunks are joined
            elif seq != expected:
                problem(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
            if seq < 0:
                problem(seq, "order", "entry has a negative sequence number (inserted)")
            res.last_seq = seq
            expected = seq + 1
            body = bodies[i]
            if not leaves_ok and not compare(r[8] if type(r[8]) is bytes else _cell_bytes(r[8]), leaves[at + i]):
                problem(seq, "entry", "stored leaf hash differs from the entry's")
            # _parse_body inlined for the usual body (UTF-8, one JSON object, nothing around it); anything else
            # goes through _parse_body itself, which gives the json.loads verdict
            obj: Any = None
            try:
                text = body.decode("utf-8")
                obj, end = scan(text, 0)
                canonical = end == len(text) and type(obj) is dict and ctext(obj) == text
            except (UnicodeError, ValueError, StopIteration, RecursionError):
                canonical = False
            if not canonical:
                obj, canonical = _parse_body(body)
                if obj is _NOT_JSON:
                    problem(seq, "entry", "entry is not valid JSON (altered)")
                    continue
                if not canonical:
                    problem(seq, "entry", "entry is not canonical JSON (altered)")
                    continue
            get = obj.get
            t = get("time")
            kid = get("keyid")
            # the sequence number and the five columns at once; an entry failing any is checked again one by one
            if not (
                get("seq") == seq
                and t == r[1]
                and get("principal") == r[2]
                and get("action") == r[3]
                and get("subject") == r[4]
                and kid == r[6]
            ):
                if get("seq") != seq:
                    problem(seq, "order", f"entry says it is number {get('seq')} (rows swapped or renumbered)")
                for col, ci in _COLUMNS:
                    if get(col) != r[ci]:
                        problem(seq, "entry", f"column {col!r} was changed ({r[ci]!r}, signed {get(col)!r})")
            t = t if type(t) is str else str(get("time", ""))
            if not res.first_time:
                res.first_time = t
            if t < last_time:
                problem(seq, "order", "entry is older than the one before it (reordered)")
            else:
                last_time = t
            kid = kid if type(kid) is str else str(kid)
            krow = keys.get(kid)
            if krow is None:
                problem(seq, "signature", f"signed by unknown key {kid[:16]} (forged entry)")
                continue
            # the signature verified above with the column's key when the body names that same key
            ok = sig_ok[i] if kid == col_kids[i] and type(col_kids[i]) is str else None
            if ok is None:
                check = pubs.get(kid)
                if check is None:
                    check = pubs[kid] = ed25519.verifier(krow.public_key)
                ok = check(sigs[i], body)
            if not ok:
                problem(seq, "signature", f"signature by {krow.principal} does not verify (entry forged or altered)")
                continue
            res.n_sigs += 1
            if kid in legacy_ids:
                mark(
                    (
                        seq,
                        krow.keyid,
                        f"entry {seq}: names its key by the legacy key ID {kid[:16]} (a workspace from before "
                        f"keyrings); accepted as key {key_id(public_key_from_hex(krow.public_key.hex()))[:16]}",
                    )
                )
            if krow.principal != get("principal"):
                problem(seq, "signature", f"signed by {krow.principal}'s key but claims principal {get('principal')!r}")
            why = krow.invalid_at(t)
            if why:
                problem(seq, "key", f"signature made when {why}")
            elif krow.revoked_at:
                mark(_revocation_mark(seq, krow))
    res.last_time = last_time
    return res


def _range_rows(conn: Transaction, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    """The rows with ``lo <= seq < hi`` as plain tuples in :data:`_ROW_COLUMNS` order."""
    return store.entry_range(conn, lo, hi)


# worker state (set once per pool process by the initializer)
_W: dict[str, Any] = {}


def _worker_init(url: str, keys: dict[str, _KeyInfo]) -> None:
    gc.disable()  # a pool process only checks rows until the pool ends (see dataward.log._gc)
    _W["engine"] = make_engine(url)
    _W["keys"] = keys


def _worker_run(task: _Task) -> _ChunkResult:
    with _W["engine"].connect() as conn:
        return _check_rows(_range_rows(conn, task.lo, task.hi), task, _W["keys"])


def balanced_chunk(chunk: int, entries: int, workers: int) -> int:
    """``chunk`` halved (not below :data:`_ROW_BATCH`) until ``entries`` make at least
    :data:`TASKS_PER_WORKER` chunks per worker, so the pool's workers finish at about the same time."""
    while chunk > _ROW_BATCH and -(-entries // chunk) < TASKS_PER_WORKER * workers:
        chunk //= 2
    return chunk


def _tasks(lo: int, hi: int, n_rows: int, max_problems: int, chunk: int, start: int = 0) -> list[_Task]:
    """Aligned chunks covering ``[max(lo, start), hi]``; sequence numbers below 0 or far beyond the row count
    (a tampered row) get one chunk each side, so a forged huge number cannot blow up the task list."""
    out: list[_Task] = []
    if lo < 0:
        out.append(_Task(lo, 0, max_problems))
    k = start // chunk
    while k * chunk <= hi and k * chunk < n_rows:
        # never past the snapshot's last row: workers read later, and the log may have grown meanwhile
        out.append(_Task(max(start, k * chunk), min((k + 1) * chunk, hi + 1), max_problems))
        k += 1
    if k * chunk <= hi:
        out.append(_Task(max(start, k * chunk), hi + 1, max_problems))
    return out


@contextmanager
def _snapshot(ws: Workspace) -> Iterator[Transaction]:
    """One read transaction for the whole verification (SQLite WAL: a snapshot; PostgreSQL: REPEATABLE READ),
    so entries appended meanwhile are not mistaken for entries inserted without a checkpoint."""
    with ws.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def default_workers() -> int:
    """The processes a verification uses by default: the cores this process may run on (at most 8)."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


Problem = Callable[[int | None, str, str], None]


def _keys(ws: Workspace, conn: Transaction, problem: Problem) -> tuple[dict[str, _KeyInfo], dict[str, str]]:
    """The registered keys by ID (and by their other ID form), and a digest of each as it is now."""
    keys: dict[str, _KeyInfo] = {}
    digests: dict[str, str] = {}
    for kid, r in ws.public_keys(conn).items():
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
        # it by the SHA-256 of the raw key (dsse.legacy_key_id); each such entry is flagged
        keys[kid] = info
        for alias in (current, legacy):
            keys.setdefault(alias, info)
        fields = [info.keyid, info.principal, info.public_key.hex(), info.created_at]
        fields += [info.expires_at or "", info.retired_at or "", info.revoked_at or ""]
        digests[kid] = hashlib.sha256(canonical_json(fields)).hexdigest()
    return keys, digests


def _run_chunks(
    ws: Workspace,
    conn: Transaction,
    tasks: list[_Task],
    keys: dict[str, _KeyInfo],
    n_workers: int,
    parallel: bool,
    progress: Callable[[int, int], None] | None,
    replay_meanwhile: Callable[[], TrustedState | None],
) -> tuple[list[_ChunkResult], TrustedState | None]:
    """The entry checks of ``tasks``, in a process pool when ``parallel``; while the workers check entries this
    process replays the evidence (``replay_meanwhile``, trusting every entry), whose result is returned."""
    chunks: list[_ChunkResult] = []
    total = len(tasks)
    early: TrustedState | None = None
    if parallel:
        # fork is quick and safe while this process has no other thread; otherwise start clean interpreters
        single = threading.active_count() == 1 and sys.platform == "linux"
        ctx = get_context("fork" if single else "spawn")
        with ProcessPoolExecutor(
            min(n_workers, total), mp_context=ctx, initializer=_worker_init, initargs=(ws.catalog_url, keys)
        ) as pool:
            futures: list[Future[_ChunkResult]] = [pool.submit(_worker_run, t) for t in tasks]
            try:
                early = replay_meanwhile()
            except Exception:  # a failed entry may be what breaks it: replayed again later, without it
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
    return chunks, early


@dataclass
class _Joined:
    leaves: list[bytes] = field(default_factory=list)
    n_sigs: int = 0
    marked: list[tuple[int, str, str]] = field(default_factory=list)
    marked_count: int = 0
    end: int = 0  # one past the last entry present
    last_time: str = ""


def _join(chunks: list[_ChunkResult], problem: Problem, start: int = 0, last_time: str = "") -> _Joined:
    """Join the chunks: gaps between them, time order across their boundaries."""
    j = _Joined(end=start, last_time=last_time)
    for c in chunks:
        if c.first_seq is not None and c.first_seq >= 0 and c.last_seq is not None:
            if c.first_seq > j.end:
                problem(j.end, "missing", f"entries {j.end}..{c.first_seq - 1} are missing (deleted)")
            j.end = c.last_seq + 1
            if c.first_time and c.first_time < j.last_time:
                problem(c.first_seq, "order", "entry is older than the one before it (reordered)")
            j.last_time = max(j.last_time, c.last_time)
        for p in c.problems:
            problem(p.seq, p.kind, p.detail)
        j.leaves.extend(c.leaves)
        j.n_sigs += c.n_sigs
        j.marked_count += c.marked_count
        j.marked.extend(c.marked[: max(0, MAX_MARKED - len(j.marked))])
    return j


def _check_checkpoint(
    ws: Workspace, note: bytes | None, size: int, end: int, root: bytes, problem: Problem
) -> int | None:
    """The latest signed checkpoint against the entries (``size`` leaves, ``end`` one past the last seq);
    returns its size."""
    if note is None:
        if size:
            problem(None, "checkpoint", "the log has entries but no signed checkpoint")
        return None
    try:
        cp = parse_signed_checkpoint(note, {ws.origin: ws.log_public_key()}, origin=ws.origin)
    except Error as exc:
        problem(None, "checkpoint", f"latest checkpoint does not verify: {exc.message}")
        return None
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
    elif size != cp.size:
        problem(
            None,
            "checkpoint",
            f"the log has {size} entries where the signed checkpoint covers {cp.size} (see the missing entries above)",
        )
    elif not hmac.compare_digest(cp.root_hash, root):
        problem(None, "tree", "the entries do not hash to the signed checkpoint's root")
    return cp.size


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

    ``workers``: processes for the entry checks (None: every available core). ``incremental``: start from
    this client's record of an earlier verification (in the witness file) and check only the entries
    appended since (falls back to a full verification when the record is unusable or the log no longer
    extends it). ``remember``: after a successful verification, record it there for next time.
    ``progress(done, total)`` is called as chunks finish.
    """
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if chunk < 1:
        raise InputError(f"chunk must be at least 1, got {chunk}")
    with _gc.paused():
        return _verify_log(
            ws, max_problems, workers, incremental, remember, witness_path, progress, parallel_min_entries, chunk
        )


def _verify_log(
    ws: Workspace,
    max_problems: int,
    workers: int | None,
    incremental: bool,
    remember: bool,
    witness_path: str | os.PathLike[str] | None,
    progress: Callable[[int, int], None] | None,
    parallel_min_entries: int,
    chunk: int,
) -> LogVerification:
    n_workers = default_workers() if workers is None else workers
    wpath = Path(witness_path) if witness_path is not None else None
    opts = _Options(max_problems, n_workers, progress, parallel_min_entries, chunk)
    fallback = ""
    if incremental:
        mark, fallback = witness.read_verified_mark(ws, wpath)
        if mark is not None:
            done = _verify_incremental(ws, mark, opts)
            if isinstance(done, str):
                # something the earlier verification covered changed: verify everything, which names it
                result, proof = _verify_full(ws, opts)
                note = LogProblem(
                    None, "witness", f"entries below {mark.size} changed since this client verified them ({done})"
                )
                return _replace(result, problems=(*result.problems, note))
            result, proof = done
            if remember and proof is not None:
                witness.record_verified(ws, result, proof, wpath)
            return result
    result, proof = _verify_full(ws, opts)
    if fallback:
        result = _replace(result, fallback=fallback)
    if remember and proof is not None:
        witness.record_verified(ws, result, proof, wpath)
    return result


def _replace(result: LogVerification, **changes: Any) -> LogVerification:
    import dataclasses

    return dataclasses.replace(result, **changes)


@dataclass(frozen=True)
class _Options:
    max_problems: int
    workers: int
    progress: Callable[[int, int], None] | None
    parallel_min_entries: int
    chunk: int


def _collector(max_problems: int) -> tuple[list[LogProblem], Problem]:
    problems: list[LogProblem] = []

    def problem(seq: int | None, kind: str, detail: str) -> None:
        if len(problems) < max_problems:
            problems.append(LogProblem(seq, kind, detail))

    return problems, problem


def _verify_full(ws: Workspace, o: _Options) -> tuple[LogVerification, VerifiedMark | None]:
    """Every entry, every stored node, the checkpoint and the evidence; with what it proved when all is well."""
    problems, problem = _collector(o.max_problems)
    with _snapshot(ws) as conn:
        keys, key_digests = _keys(ws, conn, problem)
        n_rows, lo, hi = _counts(conn)
        note = latest_checkpoint(conn)
        pool = o.workers > 1 and n_rows >= o.parallel_min_entries
        chunk = balanced_chunk(o.chunk, n_rows, o.workers) if pool else o.chunk
        tasks = _tasks(lo, hi, n_rows, o.max_problems, chunk)
        parallel = pool and len(tasks) > 1
        chunks, early = _run_chunks(
            ws, conn, tasks, keys, o.workers, parallel, o.progress, lambda: _replay(conn, frozenset())
        )
        j = _join(chunks, problem)
        tree = merkle.MerkleTree(j.leaves)  # every level, once: the root and the node check
        root = tree.root() if j.leaves else merkle.EMPTY_ROOT
        _check_nodes(conn, tree, problem)
        state = _check_evidence(ws, conn, problems, problem, early)
    cp_size = _check_checkpoint(ws, note, len(j.leaves), j.end, root, problem)
    result = LogVerification(
        len(j.leaves),
        j.n_sigs,
        cp_size,
        root.hex(),
        tuple(problems),
        tuple(m[2] for m in j.marked),
        j.marked_count,
        "full",
        0,
        chunk,
    )
    proof = None
    if result.ok and cp_size == len(j.leaves):
        frontier = merkle.MerkleFrontier.from_get_node(tree.size, tree.get_node)
        proof = VerifiedMark(
            tree.size, root, frontier.hashes, j.last_time, key_digests, tuple(j.marked), j.marked_count, state
        )
    return result, proof


def _counts(conn: Transaction) -> tuple[int, int, int]:
    """(row count, lowest seq, highest seq) of the log: (0, 0, -1) when empty."""
    return store.entry_counts(conn)


def _verify_incremental(
    ws: Workspace, mark: VerifiedMark, o: _Options
) -> tuple[LogVerification, VerifiedMark | None] | str:
    """The entries from ``mark.size`` on, on top of what ``mark`` proved; a reason (str) when the log no longer
    extends it (the caller then verifies in full)."""
    problems, problem = _collector(o.max_problems)
    n = mark.size
    with _snapshot(ws) as conn:
        n_rows, lo, hi = _counts(conn)
        if n and (lo != 0 or n_rows != hi + 1 or hi + 1 < n):
            return "rows were deleted, inserted or renumbered"
        nodes = NodeReader(conn)
        frontier_at = merkle.range_nodes(0, n)
        nodes.prefetch(frontier_at)
        try:
            stored = tuple(nodes(lv, ix) for lv, ix in frontier_at)
        except LookupError:
            return "a stored tree node of the verified entries is missing"
        if len(stored) != len(mark.frontier) or not all(
            hmac.compare_digest(a, b) for a, b in zip(stored, mark.frontier, strict=True)
        ):
            return "the stored tree nodes of the verified entries differ from the ones verified"
        base = mark.base
        if base is not None and base.size < n and not _journal_folds(conn, base, n, mark.frontier):
            return "the verified entries past the recorded evidence state differ from the ones verified"
        keys, key_digests = _keys(ws, conn, problem)
        note = latest_checkpoint(conn)
        pool = o.workers > 1 and n_rows - n >= o.parallel_min_entries
        chunk = balanced_chunk(o.chunk, n_rows - n, o.workers) if pool else o.chunk
        tasks = _tasks(lo, hi, n_rows, o.max_problems, chunk, start=n)
        parallel = pool and len(tasks) > 1
        state = mark.state
        chunks, early = _run_chunks(
            ws, conn, tasks, keys, o.workers, parallel, o.progress, lambda: _replay(conn, frozenset(), state.fork())
        )
        j = _join(chunks, problem, start=n, last_time=mark.last_time)
        frontier = merkle.MerkleFrontier(n, mark.frontier)
        new_nodes = frontier.extend(j.leaves)
        root = frontier.root()
        _check_new_nodes(conn, n, frontier.size, new_nodes, problem)
        marked = [m for m in mark.marked if key_digests.get(m[1]) == mark.keys.get(m[1])]
        marked_count = mark.marked_count - (len(mark.marked) - len(marked))
        extra_marks = _rejudge_changed_keys(conn, n, keys, key_digests, mark.keys, problem)
        marked += extra_marks
        marked_count += len(extra_marks)
        marked += j.marked
        marked_count += j.marked_count
        new_state = _check_evidence(ws, conn, problems, problem, early, start=state)
        cp_size = _check_checkpoint(ws, note, frontier.size, j.end, root, problem)
        if cp_size is not None and not _extends(conn, note, n, mark.root, ws):
            return "the signed checkpoint does not extend them (rewritten)"
    marked = marked[:MAX_MARKED]
    result = LogVerification(
        frontier.size,
        j.n_sigs,
        cp_size,
        root.hex(),
        tuple(problems),
        tuple(m[2] for m in marked),
        marked_count,
        "incremental",
        n,
        chunk,
    )
    proof = None
    if result.ok and cp_size == frontier.size:
        proof = VerifiedMark(
            frontier.size, root, frontier.hashes, j.last_time, key_digests, tuple(marked), marked_count, new_state, base
        )
    return result, proof


def _journal_folds(conn: Transaction, base: StateBase, size: int, frontier: tuple[bytes, ...]) -> bool:
    """Whether the stored entries ``base.size .. size-1`` (their signed bodies and signatures, as the evidence
    replay reads them) are the ones verified: their leaves, appended to the recorded frontier of the state's
    entries, must give the recorded frontier of all ``size`` (bound to the signed checkpoint of that size)."""
    leaves: list[bytes] = []
    for row in store.entry_range(conn, base.size, size):
        body, sig = row[5], row[7]
        if not isinstance(body, bytes | bytearray | memoryview) or not isinstance(sig, bytes | bytearray | memoryview):
            return False  # a cell rewritten as another type (the replay would read its text form)
        leaves.append(entry_leaf_hash(bytes(body), bytes(sig)))
    if len(leaves) != size - base.size:
        return False
    folded = merkle.MerkleFrontier(base.size, base.frontier)
    folded.extend(leaves)
    return len(folded.hashes) == len(frontier) and all(
        hmac.compare_digest(a, b) for a, b in zip(folded.hashes, frontier, strict=True)
    )


def _extends(conn: Transaction, note: bytes | None, size: int, root: bytes, ws: Workspace) -> bool:
    """Whether the latest signed checkpoint extends the tree of ``size`` leaves with ``root``: a consistency
    proof from the stored nodes (what a rewrite of the verified entries cannot keep)."""
    if note is None or size == 0:
        return True
    try:
        cp = parse_signed_checkpoint(note, {ws.origin: ws.log_public_key()}, origin=ws.origin)
        if cp.size == size:
            return hmac.compare_digest(cp.root_hash, root)
        if cp.size < size:
            return False
        proof = merkle.consistency_proof(size, cp.size, NodeReader(conn))
        merkle.verify_consistency(size, cp.size, root, cp.root_hash, proof)
    except (Error, LookupError):
        return False
    return True


def _rejudge_changed_keys(
    conn: Transaction,
    size: int,
    keys: dict[str, _KeyInfo],
    now: dict[str, str],
    then: dict[str, str],
    problem: Problem,
) -> list[tuple[int, str, str]]:
    """Entries below ``size`` signed by a key that changed since they were verified (revoked, even back-dated,
    expired, removed), judged again against the key as it is now. Returns their new marks."""
    changed = {kid for kid in set(now) | set(then) if now.get(kid) != then.get(kid)}
    if not changed:
        return []
    ids = sorted({alias for kid in changed for alias, info in keys.items() if info.keyid == kid} | changed)
    marks: list[tuple[int, str, str]] = []
    for seq, time, principal, kid in store.signed_by(conn, size, ids):
        krow = keys.get(kid)
        if krow is None:
            problem(seq, "key", "signature made when its key is no longer registered")
            continue
        if krow.principal != principal:
            problem(seq, "key", f"key {krow.keyid[:16]} now belongs to {krow.principal}, not {principal}")
            continue
        why = krow.invalid_at(time)
        if why:
            problem(seq, "key", f"signature made when {why}")
        elif krow.revoked_at:
            marks.append(_revocation_mark(seq, krow))
    return marks


def _check_new_nodes(
    conn: Transaction, old: int, size: int, new_nodes: list[tuple[int, int, bytes]], problem: Problem
) -> None:
    """The stored perfect nodes over the new entries must be exactly the ones their leaves give, and the
    table must hold as many nodes as the tree has (a node deleted or added among the verified ones)."""
    want = {(lv, ix): h for lv, ix, h in new_nodes}
    bad = 0
    for level in range(max(1, size.bit_length())):
        for ix, h in store.nodes_from(conn, level, old >> level):
            w = want.pop((level, ix), None)
            if w is None or not hmac.compare_digest(h, w):
                bad += 1
                if bad <= 3:
                    problem(
                        ix if level == 0 else None,
                        "node",
                        f"stored tree node (level {level}, index {ix}) is wrong",
                    )
    if want:
        problem(None, "node", f"{len(want)} stored tree node(s) are missing")
    if bad > 3:
        problem(None, "node", f"{bad} stored tree nodes are wrong")
    n_stored = store.node_count(conn)
    expected = sum(size >> lv for lv in range(size.bit_length()))
    if not want and not bad and n_stored != expected:
        problem(None, "node", f"the log has {n_stored} stored tree nodes where its tree has {expected}")


def _replay(conn: Transaction, distrust: frozenset[int], state: TrustedState | None = None) -> TrustedState:
    from dataward.evidence.load import replay_log

    # the bodies kept for the state snapshot a remembering verification writes (encode_state)
    return replay_log(conn, state=state, check_signatures=False, distrust=distrust, keep_bodies=True)


def _check_evidence(
    ws: Workspace,
    conn: Transaction,
    found: list[LogProblem],
    problem: Problem,
    early: TrustedState | None = None,
    start: TrustedState | None = None,
) -> TrustedState:
    """Replay the log into the trusted state (keys over time and roles from the log, not the keys table)
    and compare the catalog's decision columns with it: every divergence is named (table, row, column).
    ``early``: the replay made in the same snapshot while the entries were checked, trusting every entry;
    used when the entry checks failed none (otherwise it is replayed again, distrusting the failures).
    ``start``: the state of the entries verified earlier (incremental), replayed on from its size."""
    from dataward.evidence.load import projection_divergences

    bad = frozenset(p.seq for p in found if p.seq is not None and p.kind in ("entry", "signature", "order"))
    # ``start`` is the caller's own decoded copy (the early replay worked on a fork of it): replayed on in place
    st = early if early is not None and not bad else _replay(conn, bad, start)
    for rp in st.problems:
        problem(rp.seq, "evidence", rp.detail)
    for dv in projection_divergences(ws, conn, st):
        problem(None, "projection", dv.line())
    return st


def _check_nodes(conn: Transaction, tree: merkle.MerkleTree, problem: Problem) -> None:
    """The stored perfect-subtree nodes (used for proofs) must be exactly the tree's perfect nodes."""
    bad = 0
    good = 0
    for lv, ix, h in store.iter_nodes(conn):
        try:  # a cell rewritten as another type (TEXT, a number) is a wrong node, never a crash
            ok = lv >= 0 and ix >= 0 and hmac.compare_digest(_cell_bytes(h), tree.get_node(lv, ix))
        except (IndexError, TypeError):
            ok = False
        if ok:
            good += 1
            continue
        bad += 1
        if bad <= 3:
            problem(ix if lv == 0 else None, "node", f"stored tree node (level {lv}, index {ix}) is wrong")
    n = tree.size
    missing = sum(n >> lv for lv in range(n.bit_length())) - good
    if missing > 0:
        problem(None, "node", f"{missing} stored tree node(s) are missing")
    if bad > 3:
        problem(None, "node", f"{bad} stored tree nodes are wrong")
