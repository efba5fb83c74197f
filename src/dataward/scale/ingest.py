"""Acquisition of one large line file by byte ranges: the workers copy, hash and check, the driver combines.

The driver reads only short blocks (the header line, the bytes around each cut). Phase 1: each worker
reads its byte range of the delivered file, writes it at the same offset of a preallocated temporary object
(through a shared mapping of the range, :class:`_RangeOut`) and, for a CSV/TSV whose records are its lines,
hashes and checks the range in the native plain pass (:func:`~dataward.records.leaves.plain_line_leaves`),
writing the leaves to a scratch file. Phase 2,
once the leaf counts give every range its first leaf index: each worker takes a contiguous run of ranges,
reads each range's leaf file once (and removes it), writes its leaves at their place in the leaf-list object
and computes the RFC 6962 perfect nodes that exactly cover the range
(:func:`dataward.core.merkle.range_nodes`). Phase 3, side by side: one task streams the SHA-256 of the
stored bytes (it names the object and is what suppliers sign; SHA-256 cannot be split), another the SHA-256
of the written leaf list (which names the ``records_digest`` object). The driver folds those nodes
into the root, which is the single pass's root by construction: every node of the tree over ``n`` leaves is
a perfect aligned subtree or lies on the right edge above them, and aligned subtrees nest.

A file that is not plain (quotes, a lone CR, bad UTF-8, a wrong shape) is still copied this way; its records
then go through :mod:`dataward.scale.records`, which settles quoting or hands the file to the single-process
code (which names the line).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import mmap
import os
import stat
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from dataward.core import leafhash, merkle
from dataward.errors import InputError, storage_error
from dataward.records.leaves import plain_line_leaves
from dataward.scale.dask import chunks
from dataward.scale.interface import Executor
from dataward.scale.records import newline_cuts, partition_target
from dataward.store.objects import ObjectStore, PreallocatedObject

#: a worker's read and write size (bounded memory for the hashing tasks)
BLOCK = 8 << 20
CHANGED = "changed while it was read"
#: Linux's madvise(2) advice that faults a mapping's pages in writable, in one call (0: not this platform)
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else 0)
#: a worker cannot open the delivered file or the temporary object (not on a file system it shares)
UNREACHABLE = "not reachable from the worker"


@dataclass(frozen=True)
class IngestTask:
    """Phase 1: copy ``[start, end)`` of ``source`` into ``dest`` and, with a ``header``, hash its lines."""

    source: str  # the delivered file, a path the workers reach
    dest: str  # the preallocated temporary object (a local path)
    start: int
    end: int
    size: int  # the file as the driver saw it: a worker seeing another size or mtime reports a change
    mtime_ns: int
    name: str
    delimiter: str
    header: bytes | None  # the header line (with its newline); None: copy only
    leaves_path: str = ""


@dataclass(frozen=True)
class IngestPart:
    """What a phase-1 task returns: its leaf count if its range is plain lines, else why not."""

    count: int
    plain: bool
    error: str | None = None  # the file changed or could not be read: the acquisition is refused


class _Short(Exception):
    """The delivered file ended before the range did (it shrank while it was read)."""


class _TeeRange(io.RawIOBase):
    """``prefix``, then bytes ``[start, end)`` of ``src`` (``pread``); every byte read from ``src`` is also
    written at the same offset of ``dst``, so one pass over the range copies it and feeds the
    hasher, in the hasher's own buffer (no copy of the range is held). Rereading a part writes the same bytes
    again; ``copied`` is how far the range has been copied from ``start``. Seekable, so that a reader can
    size its buffer to what is left."""

    def __init__(self, prefix: bytes, src: int, dst: _RangeOut, start: int, end: int, copied: list[int]) -> None:
        self._prefix = prefix
        self._src, self._dst = src, dst
        self._start, self._end = start, end
        self._pos = 0  # in the prefix followed by the range
        self._copied = copied

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        size = len(self._prefix) + self._end - self._start
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        k = len(self._prefix)
        if self._pos < k:
            n = min(len(view), k - self._pos)
            view[:n] = self._prefix[self._pos : self._pos + n]
            self._pos += n
            return n
        at = self._start + self._pos - k
        want = min(len(view), self._end - at)
        if want <= 0:
            return 0
        n = os.preadv(self._src, [view[:want]], at)
        if n == 0:
            raise _Short
        self._dst.write(view[:n], at)
        self._pos += n
        if at <= self._copied[0]:
            self._copied[0] = max(self._copied[0], at + n)
        return n


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


class _RangeOut:
    """Writes into bytes ``[start, end)`` of a preallocated object, through a shared mapping of that range.

    Workers fill disjoint ranges of one file at once: ``pwrite`` to one file holds its inode's lock for the
    whole copy (ext4, XFS), page allocation included, so two writers take turns (measured: two processes
    writing 256 MB each into one file, 2.5-5.6 s wall and 1.5-2.7 s blocked each, against 2.5-2.9 s and
    0.3-0.4 s for two files or a shared mapping of one). A page fault in a mapping takes no such lock.
    The range's blocks are allocated first (``posix_fallocate``), so a full disk is an ``OSError`` here, not
    a ``SIGBUS`` at a page fault; where that or the mapping is not available the writes are ``pwrite``. The
    mapping's pages are made writable in one call (``MADV_POPULATE_WRITE``) rather than a fault per page."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._map: mmap.mmap | None = None
        self._base = start - start % mmap.ALLOCATIONGRANULARITY
        if end <= start:
            return
        try:
            os.posix_fallocate(fd, start, end - start)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
                raise
            return  # the file system does not allocate ahead (EOPNOTSUPP, EINVAL): plain writes
        with contextlib.suppress(OSError, ValueError):
            self._map = mmap.mmap(fd, end - self._base, offset=self._base)
        if self._map is not None and MADV_POPULATE_WRITE:
            with contextlib.suppress(OSError):  # before Linux 5.14: the pages fault in one by one as written
                self._map.madvise(MADV_POPULATE_WRITE)

    def write(self, data: bytes | memoryview, at: int) -> None:
        if self._map is None:
            _pwrite_all(self._fd, data, at)
            return
        i = at - self._base
        self._map[i : i + len(data)] = data

    def close(self) -> None:
        if self._map is not None:
            self._map.close()  # the dirty pages stay in the page cache for the commit's fsync
            self._map = None

    def __enter__(self) -> _RangeOut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_rest(src: int, dst: _RangeOut, start: int, end: int) -> None:
    """Copy ``[start, end)`` of ``src`` to the same offsets of ``dst`` through one reused buffer."""
    buf = bytearray(min(BLOCK, max(0, end - start)))
    view = memoryview(buf)
    pos = start
    while pos < end:
        n = os.preadv(src, [view[: end - pos]], pos)
        if n == 0:
            raise _Short
        dst.write(view[:n], pos)
        pos += n


def ingest_task(t: IngestTask) -> IngestPart:
    """Copy one byte range into the temporary object and, for a plain CSV/TSV range, write its leaves."""
    try:
        src = os.open(t.source, os.O_RDONLY)
    except (FileNotFoundError, PermissionError):
        return IngestPart(0, False, UNREACHABLE)  # the driver opened it: this worker does not see it
    except OSError as exc:
        return IngestPart(0, False, f"cannot read ({exc.strerror})")
    try:
        st = os.fstat(src)
        if (st.st_size, st.st_mtime_ns) != (t.size, t.mtime_ns):
            return IngestPart(0, False, CHANGED)
        try:
            dst = os.open(t.dest, os.O_RDWR)  # another OSError here (disk full later) is the store's
        except (FileNotFoundError, PermissionError):
            return IngestPart(0, False, UNREACHABLE)
        try:
            with _RangeOut(dst, t.start, t.end) as out:
                return _copy_and_hash(t, src, out)
        except _Short:
            return IngestPart(0, False, CHANGED)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_and_hash(t: IngestTask, src: int, dst: _RangeOut) -> IngestPart:
    copied = [t.start]
    result = IngestPart(0, False)
    if t.header is not None:
        # the header line before every range but the first, as csv_task hashes a plain partition
        prefix = t.header if t.start > 0 else b""

        def opener() -> IO[bytes]:
            return io.BufferedReader(_TeeRange(prefix, src, dst, t.start, t.end, copied))

        # each block's leaves go to the leaf file as they come: no buffer of the range's leaves (fresh memory
        # per range); what a range that is not plain wrote there is removed with the other scratch files
        with open(t.leaves_path, "wb") as f:  # buffered: large writes go straight through, whole
            try:
                plain = plain_line_leaves(opener, t.name, t.delimiter, sink=f.write)
            except InputError:
                plain = None  # bad input: the partitioned or single-process code names the line
        if plain is not None:
            result = IngestPart(plain[1], True)
    _copy_rest(src, dst, copied[0], t.end)  # what the hasher did not read (not plain, or no header)
    return result


@dataclass(frozen=True)
class HashTask:
    """Phase 3 (phase 2 when the records are not plain lines): the SHA-256 of a whole local file (the stored
    object)."""

    path: str


@dataclass(frozen=True)
class LeafListTask:
    """The SHA-256 of files read in order as one stream: the leaf list (phase 3 reads the object the nodes
    tasks wrote); only reads, so that the serial hash is cheap wherever it runs."""

    parts: tuple[str, ...]


@dataclass(frozen=True)
class NodesTask:
    """Phase 2: the perfect RFC 6962 nodes covering each range's leaves, given its first leaf index; each
    range's leaves are also written at ``32 * first`` of the leaf-list object ``dest``. With ``consume`` each
    leaf file is removed once read, before its leaves are written: the page cache it held is free again for
    the leaf list's new pages (new pages, not reused ones, are what costs on a shared VM)."""

    parts: tuple[tuple[str, int], ...]  # (leaf file, index of its first leaf)
    dest: str
    consume: bool = False


Node = tuple[int, int, bytes]  # (level, index, hash) of a perfect subtree


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def range_nodes_of(leaves: bytes | memoryview, first: int) -> list[Node]:
    """The perfect nodes that exactly cover leaves ``[first, first + n)`` of a tree, from those ``n`` leaves."""
    view = memoryview(leaves)
    out: list[Node] = []
    pos = 0
    for level, index in merkle.range_nodes(first, first + len(leaves) // 32):
        width = 32 << level
        chunk = view[pos : pos + width]
        # a perfect subtree's root is the RFC 6962 root of its 2**level leaves
        blob = cast(bytes, chunk) if leafhash.NATIVE else bytes(chunk)  # the native root takes any buffer
        out.append((level, index, leafhash.merkle_root(blob)))
        pos += width
    return out


def finish_task(t: HashTask | LeafListTask | NodesTask) -> str | list[Node]:
    """Run one phase-2 task: a file's SHA-256 hex, the leaf list's SHA-256 hex, or the ranges' nodes."""
    if isinstance(t, HashTask):
        return _sha256_file(t.path)
    if isinstance(t, LeafListTask):
        h = hashlib.sha256()
        buf = bytearray(BLOCK)  # one buffer for every part: no fresh memory per part
        view = memoryview(buf)
        for part in t.parts:
            with open(part, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    h.update(view[:n])
        return h.hexdigest()
    nodes: list[Node] = []
    room = bytearray(max((os.path.getsize(part) for part, _ in t.parts), default=0))
    out = os.open(t.dest, os.O_RDWR)
    try:
        for part, first in t.parts:
            with open(part, "rb", buffering=0) as f:
                n = f.readinto(room)
                while (m := f.readinto(memoryview(room)[n:])) and n < len(room):
                    n += m
            if t.consume:
                with contextlib.suppress(OSError):  # the driver removes what is left in any case
                    os.remove(part)
            leaves = memoryview(room)[:n]
            with _RangeOut(out, 32 * first, 32 * first + n) as dst:  # the leaf list, written by both workers
                dst.write(leaves, 32 * first)
            nodes.extend(range_nodes_of(leaves, first))
    finally:
        os.close(out)
    return nodes


def root_from_nodes(size: int, nodes: Sequence[Node]) -> bytes:
    """The RFC 6962 root over ``size`` leaves from perfect nodes that exactly cover ``[0, size)``."""
    table = {(level, index): h for level, index, h in nodes}
    if sum(1 << level for level, _i, _h in nodes) != size or len(table) != len(nodes):
        raise ValueError(f"the nodes do not cover {size} leaves exactly once")

    def get(level: int, index: int) -> bytes:
        h = table.get((level, index))
        if h is None:
            if level == 0:
                raise ValueError(f"leaf {index} is not covered")
            # a node above the ranges' own nodes: aligned subtrees nest, so its halves are covered
            h = merkle.node_hash(get(level - 1, 2 * index), get(level - 1, 2 * index + 1))
        return h

    return merkle.subtree_root(0, size, get)


@dataclass(frozen=True)
class IngestedDigests:
    """A file's record digests as the workers left them: the count, the root and the stored leaf list."""

    format: str
    encoding: str
    count: int
    root: bytes
    records_digest: str  # the leaf-list object in the ``meta`` area
    records_created: bool  # this acquisition created that object
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Ingested:
    """One file stored in quarantine by byte ranges, with its record digests when its ranges were plain."""

    sha256: str
    size: int
    created: bool  # this acquisition created the quarantine object
    digests: IngestedDigests | None


def _header(f: IO[bytes], fmt: str) -> tuple[bytes, int] | None:
    """The header line of a CSV/TSV and the offset after it, as ``_csv_digests`` finds them (None: none)."""
    if fmt not in ("csv", "tsv"):
        return None
    f.seek(0)
    header = b""
    while not header.strip():
        header = f.readline(1 << 20)
        if not header:
            return None
    if not header.endswith(b"\n") or b"\r" in header.rstrip(b"\r\n"):
        return None
    return header, f.tell()


def ingest_file(
    executor: Executor,
    store: ObjectStore,
    path: str | os.PathLike[str],
    name: str,
    fmt: str,
    *,
    partition_bytes: int | None = None,
) -> Ingested | None:
    """Store ``path`` in quarantine by byte ranges on ``executor``; its record digests too when its records
    are plain lines (CSV/TSV). Refuses a file that changes meanwhile. The store must be local. None: the
    workers cannot reach the file or the store (a cluster without a shared file system); stream it here."""
    p = Path(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below; fstat needs the descriptor
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    with f:
        before = os.fstat(f.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise InputError(f"{p}: not a regular file")
        size = before.st_size
        target = partition_target(size, partition_bytes)
        head = _header(f, fmt)
        ranges = newline_cuts(f, size, target)
        if head is not None and ranges[0][1] < head[1]:
            head = None  # the header is not within the first range: the partitioned code decides
        obj = store.preallocate(size)
        scratch: list[str] = []
        meta: PreallocatedObject | None = None
        try:
            delimiter = "\t" if fmt == "tsv" else ","
            tasks = []
            for a, b in ranges:
                leaves_path = store.scratch_path() if head is not None else ""
                if leaves_path:
                    scratch.append(leaves_path)
                header = None if head is None else head[0]
                tasks.append(
                    IngestTask(str(p), obj.path, a, b, size, before.st_mtime_ns, name, delimiter, header, leaves_path)
                )
            try:
                parts = executor.map(ingest_task, tasks)
            except OSError as exc:
                raise storage_error(obj.path.rsplit("/", 1)[0], exc, "write to the object store at") from None
            errors = [e for e in (q.error for q in parts) if e]
            if UNREACHABLE in errors:
                return None
            after = os.fstat(f.fileno())
            if CHANGED in errors or (after.st_size, after.st_mtime_ns) != (size, before.st_mtime_ns):
                raise InputError(
                    f"{p}: changed while it was read ({size} -> {after.st_size} bytes)",
                    advice="Acquire deliveries only after the supplier has finished writing them.",
                )
            if errors:
                raise InputError(f"{p}: {errors[0]}")
            plain = head is not None and all(q.plain for q in parts)
            finish: list[HashTask | LeafListTask | NodesTask] = [HashTask(obj.path)]
            count = sum(q.count for q in parts) if plain else 0
            if plain:
                meta = store.preallocate(32 * count)  # the nodes tasks fill it, each with its ranges' leaves
                firsts = [0]
                for q in parts[:-1]:
                    firsts.append(firsts[-1] + q.count)
                with_first = list(zip(scratch, firsts, strict=True))
                # phase 2: the nodes, each worker a contiguous run of ranges, reading each leaf file once and
                # removing it before writing its leaves into the leaf list (its freed page cache is reused);
                # phase 3, both serial hashes side by side: the file's and the leaf list's, read back from the
                # written object. Measured in one process at 10M rows: file hash 0.33 CPU s, leaf-list hash
                # 0.2, all nodes 0.71 plus writing the 320 MB leaf list, 0.3-2 s depending on the page cache.
                finish = [
                    NodesTask(tuple(with_first[r.start : r.stop]), meta.path, consume=True)
                    for r in chunks(len(with_first), executor.workers)
                ]
            with ThreadPoolExecutor(1) as io_thread:
                synced = io_thread.submit(obj.sync)  # the disk writes the copy back while the workers hash it
                done = executor.map(finish_task, finish)
                if plain and meta is not None:
                    serial: list[HashTask | LeafListTask | NodesTask] = [HashTask(obj.path), LeafListTask((meta.path,))]
                    hashes = executor.map(finish_task, serial)
                    done = [hashes[0], *done, hashes[1]]
                synced.result()
            sha = done[0]
            assert isinstance(sha, str)
            obj.commit("quarantine", sha)
            digests = None
            if plain and meta is not None:
                nodes = [n for r in done if isinstance(r, list) for n in r]
                leaves_sha = done[-1]
                assert isinstance(leaves_sha, str)
                meta.commit("meta", leaves_sha)
                warnings = (f"{name}: no records",) if count == 0 else ()
                digests = IngestedDigests(
                    fmt, "lines", count, root_from_nodes(count, nodes), leaves_sha, meta.created, warnings
                )
            return Ingested(sha, size, obj.created, digests)
        finally:
            obj.abort()
            if meta is not None:
                meta.abort()
            for s in scratch:
                with contextlib.suppress(OSError):
                    os.remove(s)
