"""Record leaves over partitions: large line files are split at newline boundaries, hashed in tasks, and
the leaves concatenated in order, so the per-file and batch Merkle roots are identical to a single pass.

The file's SHA-256 itself is computed once, in the streaming copy into quarantine (SHA-256 cannot be
split); the per-record hashing, UTF-8 and JSON checks are what the tasks share out. A partition that
finds bad input makes the whole file fall back to the single-process code, so errors name the same line.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

from dataward.errors import InputError
from dataward.records.leaves import (
    FORMATS,
    LINE_FORMATS,
    RecordDigests,
    check_jsonl,
    csv_record_leaves,
    csv_row_count,
    line_leaves,
    plain_line_leaves,
    record_digests,
)
from dataward.scale.interface import Executor
from dataward.store.objects import ObjectStore

PARTITION_BYTES = 64 << 20
MIN_PARTITION_BYTES = 1 << 20
TARGET_PARTITIONS = 16


def partition_target(size: int, partition_bytes: int | None = None, *, minimum: int = MIN_PARTITION_BYTES) -> int:
    """Partition size for a file of ``size`` bytes: about 16 partitions, each ``minimum``-64 MiB (data-dependent
    only, never executor-dependent, so every executor computes the same partitions)."""
    if partition_bytes is not None:
        return max(1, partition_bytes)
    return max(minimum, min(PARTITION_BYTES, -(-size // TARGET_PARTITIONS)))


_SCAN = 1 << 16


class RangeReader(io.RawIOBase):
    """A read-only view of ``length`` bytes of ``f`` from its current position."""

    def __init__(self, f: IO[bytes], length: int) -> None:
        self._f = f
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(want)
        self._left -= len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(b).cast("B")[: min(len(b), self._left)]
        readinto = getattr(self._f, "readinto", None)
        if readinto is None:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        n = int(readinto(view) or 0)  # straight into the caller's buffer: no copy of the range
        self._left -= n
        return n


def newline_cuts(f: IO[bytes], size: int, target: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``target`` bytes covering ``[0, size)``, each ending just after a newline
    (the last ends at ``size``). Depends only on the bytes and ``target``, never on the executor."""
    ranges: list[tuple[int, int]] = []
    start = 0
    target = max(1, target)
    while size - start > target:
        pos = start + target
        f.seek(pos)
        cut = -1
        while True:
            block = f.read(_SCAN)
            if not block:
                break
            i = block.find(b"\n")
            if i >= 0:
                cut = pos + i + 1
                break
            pos += len(block)
        if cut < 0 or cut >= size:
            break
        ranges.append((start, cut))
        start = cut
    ranges.append((start, size))
    return ranges


@dataclass(frozen=True)
class LeafTask:
    store_url: str
    area: str
    digest: str
    name: str
    fmt: str
    start: int
    end: int
    strict: bool


def leaf_task(t: LeafTask) -> tuple[bytes, str | None]:
    """The leaves of every non-blank line in one byte range (no header skipping), or an error message."""
    store = ObjectStore(t.store_url)
    try:
        with store.open(t.area, t.digest) as f:
            if t.fmt == "jsonl" and t.strict:
                f.seek(t.start)
                check_jsonl(io.BufferedReader(RangeReader(f, t.end - t.start)), t.name)
            f.seek(t.start)
            leaves, _n = line_leaves(
                io.BufferedReader(RangeReader(f, t.end - t.start)), t.name, skip_header=False, strict=t.strict
            )
    except InputError as exc:
        return b"", exc.message
    return leaves, None


# ---------------------------------------------------------------------------------------------- CSV
# CSV record boundaries without a serial pass: a newline ends a record iff an even number of quotes
# precede it (RFC 4180 quoting: quotes open a field, close it, or come doubled inside it). Workers count
# the quotes of raw ranges and offer the first newline of each parity; the driver picks each cut by the
# parity of the quotes before its range (prefix sums of the counts). Each partition then checks that its
# quotes are RFC 4180 ones (an opening quote follows a delimiter, a line start or a closing quote; a
# closing one precedes a delimiter, a quote or a line end) so that parity is the parsers' quoted state;
# if any is not, or a CR stands alone, the single-process code decides, exactly as before.


@dataclass(frozen=True)
class ScanTask:
    """A worker's task: count the quotes of one byte range of a stored object (to place CSV cuts)."""

    store_url: str  # an object of the store, or (store_url "") the file at ``digest``, a path
    area: str
    digest: str
    start: int
    end: int

    def open(self) -> IO[bytes]:
        """The object (or file) this task reads, opened for binary reading."""
        return ObjectStore(self.store_url).open(self.area, self.digest) if self.store_url else open(self.digest, "rb")


def scan_task(t: ScanTask) -> tuple[int, int, int]:
    """(quotes in ``[start, end)``, first cut after a newline with an even / odd number of quotes since
    ``start`` before it; -1 where the range has none)."""
    quotes = 0
    cut = [-1, -1]
    with t.open() as f:
        f.seek(t.start)
        pos = t.start
        left = t.end - t.start
        while left > 0:
            block = f.read(min(_SCAN_BLOCK, left))
            if not block:
                break
            left -= len(block)
            # between two quotes every newline has the same parity: one find per quote, not per line
            par, i = quotes & 1, 0
            while cut[0] < 0 or cut[1] < 0:
                q = block.find(b'"', i)
                if cut[par] < 0:
                    k = block.find(b"\n", i, len(block) if q < 0 else q)
                    if k >= 0:
                        cut[par] = pos + k + 1
                if q < 0:
                    break
                par, i = par ^ 1, q + 1
            quotes += block.count(b'"')
            pos += len(block)
    return quotes, cut[0], cut[1]


_SCAN_BLOCK = 8 << 20


def quote_parity_cuts(executor: Executor, base: ScanTask, size: int, target: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``target`` bytes covering ``[0, size)``, each ending after a newline that has an
    even number of quotes before it; the scan of the file is shared out as tasks (the driver reads nothing).
    Depends only on the bytes and ``target``, never on the executor."""
    target = max(1, target)
    raw = [(a, min(a + target, size)) for a in range(0, size, target)]
    if len(raw) <= 1:
        return [(0, size)]
    scans = executor.map(scan_task, [replace(base, start=a, end=b) for a, b in raw])
    cuts = [0]
    parity = 0
    for (a, _b), (quotes, even, odd) in zip(raw, scans, strict=True):
        # a cut in this range must have an even number of quotes since the file's start before it
        cut = even if parity == 0 else odd
        if a > 0 and cuts[-1] < cut < size:
            cuts.append(cut)
        parity ^= quotes & 1
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def plan_csv_cuts(executor: Executor, store: ObjectStore, area: str, fr: FileRef, target: int) -> list[tuple[int, int]]:
    """:func:`quote_parity_cuts` of a CSV object in the store."""
    return quote_parity_cuts(executor, ScanTask(store.url, area, fr.sha256, 0, 0), fr.size, target)


def _quoting_is_rfc4180(arr: Any, delimiter: int) -> tuple[bool, int]:
    """(every quote of the partition opens, closes or doubles a quoted field; newlines inside quotes)."""
    import numpy as np

    q = np.flatnonzero(arr == 0x22)
    n = len(arr)
    if len(q) & 1:
        return False, 0
    if len(q) == 0:
        return True, 0
    opening, closing = q[0::2], q[1::2]
    before = arr[np.maximum(opening - 1, 0)]
    ok_open = (opening == 0) | (before == delimiter) | (before == 0x0A) | (before == 0x22)
    after = arr[np.minimum(closing + 1, n - 1)]
    ok_close = (closing == n - 1) | (after == delimiter) | (after == 0x22) | (after == 0x0A) | (after == 0x0D)
    if not (bool(ok_open.all()) and bool(ok_close.all())):
        return False, 0
    # a quote after a quote opens only if the one before it closed (a doubled quote inside a field)
    nl = np.flatnonzero(arr == 0x0A)
    inside = int((np.searchsorted(q, nl) & 1).sum()) if len(nl) else 0
    return True, inside


class _Prefixed(io.RawIOBase):
    """``prefix`` followed by a :class:`RangeReader` (the header line before a partition of a CSV)."""

    def __init__(self, prefix: bytes, rest: io.RawIOBase) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._rest.readinto(b)


ODD_QUOTES = "an odd number of quotes"


@dataclass(frozen=True)
class CsvTask:
    """A worker's task: leaves, line and row counts of one partition of a CSV object, cut at a record boundary."""

    store_url: str
    area: str
    digest: str
    name: str
    delimiter: str
    start: int
    end: int
    header: bytes  # the header line (with its newline), put before every partition but the first
    records: bool = False  # also (or only) the csv-records leaves of the partition


@dataclass(frozen=True)
class CsvPart:
    """What a worker returns for one CSV partition: its leaves and counts, merged by the driver in order."""

    leaves: bytes  # line leaves (no header skipping), or csv-records leaves with ``records``
    lines: int  # non-empty lines (the header included in the first partition)
    rows: int  # Arrow's row count (the header excluded)
    quoted_newlines: int
    records: bytes | None = None  # csv-records leaves (header excluded), when asked or needed
    error: str | None = None  # bad input or quoting that parity cannot follow: the single process decides


def _open_part(t: CsvTask, f: IO[bytes]) -> IO[bytes]:
    f.seek(t.start)
    body = RangeReader(f, t.end - t.start)
    return io.BufferedReader(_Prefixed(t.header, body) if t.start > 0 else body)


def csv_task(t: CsvTask) -> CsvPart:
    """Line leaves, Arrow's row count and, where records span lines, the csv-records leaves of one partition."""
    import numpy as np

    try:
        with ObjectStore(t.store_url).open(t.area, t.digest) as f:
            if t.records:
                return CsvPart(b"", 0, 0, 0, records=csv_record_leaves(_open_part(t, f), t.name, t.delimiter))
            f.seek(t.start)
            data = f.read(t.end - t.start)
            # a plain partition (no quote, no CR outside a CRLF, the header's shape on every line) is hashed
            # and checked in one native pass, as record_digests does a plain file: its lines are its rows
            blob = t.header + data if t.start > 0 else data
            plain = plain_line_leaves(lambda: io.BytesIO(blob), t.name, t.delimiter)
            blob = b""  # the closure holds the cell: release the copy
            if plain is not None:
                return CsvPart(plain[0], plain[1], plain[1], 0)
            if data.count(b"\r") != data.count(b"\r\n"):
                return CsvPart(b"", 0, 0, 0, error="a lone CR")  # Arrow ends records there; lines do not
            quoted = t.delimiter == ","
            inside = 0
            if quoted and data.count(b'"') & 1:
                return CsvPart(b"", 0, 0, 0, error=ODD_QUOTES)  # the cut after it lies inside a quoted field
            if quoted:
                ok, inside = _quoting_is_rfc4180(np.frombuffer(data, dtype=np.uint8), ord(t.delimiter))
                if not ok:
                    return CsvPart(b"", 0, 0, 0, error="quotes outside RFC 4180 quoting")
            elif b'"' in data:
                inside = -1  # TSV: csv-records would read quotes that Arrow does not
            leaves, lines = line_leaves(io.BytesIO(data), t.name, skip_header=False, strict=True)
            # Arrow's count from the bytes already read (the header line first, as csv_row_count expects)
            rows = csv_row_count(io.BytesIO(t.header + data if t.start > 0 else data), t.name, t.delimiter)
            del data
            if t.start == 0:
                lines -= 1 if lines else 0  # the header line
                leaves = leaves[32:]
            records = None
            if inside or rows != lines:
                if inside < 0:
                    return CsvPart(b"", 0, 0, 0, error="quotes in a TSV whose records are not its lines")
                records = csv_record_leaves(_open_part(t, f), t.name, t.delimiter)
            return CsvPart(leaves, lines, rows, inside, records)
    except InputError as exc:
        return CsvPart(b"", 0, 0, 0, error=exc.message)


def _csv_digests(executor: Executor, store: ObjectStore, area: str, fr: FileRef, target: int) -> RecordDigests | None:
    """The file's record digests as :func:`record_digests` gives them, or None where it must decide."""
    delimiter = "\t" if fr.fmt == "tsv" else ","
    with store.open(area, fr.sha256) as f:  # the header line, found as csv_row_count finds it (short reads)
        header = b""
        while not header.strip():
            header = f.readline(1 << 20)
            if not header:
                return None
        header_end = f.tell()
        # optimistic: cuts at newlines; if every partition holds an even number of quotes, every cut has an
        # even number before it and the cuts stand; else the workers plan cuts by quote parity (one scan)
        ranges = newline_cuts(f, fr.size, target)
    if not header.endswith(b"\n") or b"\r" in header.rstrip(b"\r\n"):
        return None  # the header is not a whole line: the single process decides
    base = CsvTask(store.url, area, fr.sha256, fr.name, delimiter, 0, 0, header)
    for attempt in range(2):
        if attempt:
            ranges = plan_csv_cuts(executor, store, area, fr, target)
        if ranges[0][1] < header_end:
            return None  # the header is not within the first partition: the single process decides
        tasks = [replace(base, start=a, end=b) for a, b in ranges]
        parts = executor.map(csv_task, tasks)
        if not any(p.error == ODD_QUOTES for p in parts):
            break
    if any(p.error for p in parts):
        return None  # bad input, or quoting that parity cannot follow
    rows = sum(p.rows for p in parts)
    if rows == sum(p.lines for p in parts):
        leaves = b"".join(p.leaves for p in parts)
        warnings = (f"{fr.name}: no records",) if not leaves else ()
        return RecordDigests(fr.fmt, "lines", leaves, warnings)
    # quoted fields span lines: csv-records leaves of every partition (asked for where not yet computed)
    missing = [i for i, p in enumerate(parts) if p.records is None]
    extra = executor.map(csv_task, [replace(tasks[i], records=True) for i in missing]) if missing else []
    got = {i: p.records for i, p in zip(missing, extra, strict=True)}
    leaves = b"".join(got[i] if p.records is None else p.records for i, p in enumerate(parts))  # type: ignore[misc]
    if len(leaves) // 32 != rows:
        raise InputError(f"{fr.name}: CSV record count is ambiguous ({rows} by Arrow, {len(leaves) // 32} by csv)")
    return RecordDigests(fr.fmt, "csv-records", leaves)


def run_task(task: LeafTask) -> tuple[bytes, str | None]:
    return leaf_task(task)


@dataclass(frozen=True)
class FileRef:
    name: str
    sha256: str
    size: int
    fmt: str


def partitioned_record_digests(
    executor: Executor,
    store: ObjectStore,
    files: Sequence[FileRef],
    *,
    area: str = "quarantine",
    strict: bool = True,
    partition_bytes: int | None = None,
) -> list[RecordDigests]:
    """:func:`dataward.records.leaves.record_digests` for every file, the line files in partitions.

    Workers read their byte ranges from the object store; the driver reads only short blocks (the header,
    the bytes around a JSON Lines/text cut). CSV/TSV (strict) go through :func:`_csv_digests`."""
    tasks: list[LeafTask] = []
    owner: list[int] = []
    csv_done: dict[int, RecordDigests | None] = {}
    for i, fr in enumerate(files):
        if fr.fmt not in FORMATS:
            raise InputError(f"{fr.name}: unknown format {fr.fmt!r}; one of {', '.join(FORMATS)}")
        if fr.fmt not in LINE_FORMATS:
            continue
        target = partition_target(fr.size, partition_bytes)
        if fr.fmt in ("csv", "tsv") and strict:
            csv_done[i] = _csv_digests(executor, store, area, fr, target)
            continue
        with store.open(area, fr.sha256) as f:
            ranges = newline_cuts(f, fr.size, target)
        for start, end in ranges:
            tasks.append(LeafTask(store.url, area, fr.sha256, fr.name, fr.fmt, start, end, strict))
            owner.append(i)
    results = executor.map(run_task, tasks)
    parts: dict[int, list[tuple[bytes, str | None]]] = {}
    for i, res in zip(owner, results, strict=True):
        parts.setdefault(i, []).append(res)
    out: list[RecordDigests] = []
    for i, fr in enumerate(files):

        def opener(fr: FileRef = fr) -> IO[bytes]:
            return store.open(area, fr.sha256)

        done = csv_done.get(i)
        if done is not None:
            out.append(done)
            continue
        got = parts.get(i)
        if got is None or any(err for _, err in got):
            # not a line format, a CSV the partitions could not settle, or bad input: the single-process
            # code decides (and names the line)
            out.append(record_digests(opener, fr.name, fr.fmt, file_sha256=fr.sha256, strict=strict))
            continue
        leaves = b"".join(part for part, _ in got)
        if fr.fmt in ("csv", "tsv"):  # not strict (verification): lines, the header dropped
            leaves = leaves[32:]
        n = len(leaves) // 32
        warnings = (f"{fr.name}: no records",) if n == 0 else ()
        out.append(RecordDigests(fr.fmt, "lines", leaves, warnings))
    return out
