"""Record leaves over partitions: large line files are split at newline boundaries, hashed in tasks, and
the leaves concatenated in order, so the per-file and batch Merkle roots are identical to a single pass.

The file's SHA-256 itself is computed once, in the streaming copy into quarantine (SHA-256 cannot be
split); the per-record hashing, UTF-8 and JSON checks are what the tasks share out. A partition that
finds bad input makes the whole file fall back to the single-process code, so errors name the same line.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, cast

from dataward.errors import InputError
from dataward.records.leaves import (
    FORMATS,
    LINE_FORMATS,
    RecordDigests,
    check_jsonl,
    csv_record_leaves,
    csv_row_count,
    line_leaves,
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
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


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


RowTask = tuple[str, str, str, str, str]  # store URL, area, digest, name, delimiter


def csv_rows_task(args: RowTask) -> tuple[int, str | None]:
    store_url, area, digest, name, delimiter = args
    try:
        with ObjectStore(store_url).open(area, digest) as f:
            return csv_row_count(f, name, delimiter), None
    except InputError as exc:
        return -1, exc.message


def run_task(task: LeafTask | RowTask) -> tuple[bytes, str | None] | tuple[int, str | None]:
    return leaf_task(task) if isinstance(task, LeafTask) else csv_rows_task(task)


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
    """:func:`dataward.records.leaves.record_digests` for every file, the line files in partitions."""
    tasks: list[LeafTask] = []
    owner: list[int] = []
    row_tasks: list[RowTask] = []
    row_owner: list[int] = []
    for i, fr in enumerate(files):
        if fr.fmt not in FORMATS:
            raise InputError(f"{fr.name}: unknown format {fr.fmt!r}; one of {', '.join(FORMATS)}")
        if fr.fmt not in LINE_FORMATS:
            continue
        with store.open(area, fr.sha256) as f:
            ranges = newline_cuts(f, fr.size, partition_target(fr.size, partition_bytes))
        for start, end in ranges:
            tasks.append(LeafTask(store.url, area, fr.sha256, fr.name, fr.fmt, start, end, strict))
            owner.append(i)
        if fr.fmt in ("csv", "tsv") and strict:
            row_tasks.append((store.url, area, fr.sha256, fr.name, "\t" if fr.fmt == "tsv" else ","))
            row_owner.append(i)
    # one map for both kinds of task, so the whole-file CSV row counts run alongside the leaves
    all_tasks: list[LeafTask | RowTask] = [*tasks, *row_tasks]
    done = executor.map(run_task, all_tasks)
    results = cast(list[tuple[bytes, str | None]], done[: len(tasks)])
    rows = dict(zip(row_owner, cast(list[tuple[int, str | None]], done[len(tasks) :]), strict=True))
    parts: dict[int, list[tuple[bytes, str | None]]] = {}
    for i, res in zip(owner, results, strict=True):
        parts.setdefault(i, []).append(res)
    out: list[RecordDigests] = []
    for i, fr in enumerate(files):

        def opener(fr: FileRef = fr) -> IO[bytes]:
            return store.open(area, fr.sha256)

        got = parts.get(i)
        if got is None or any(err for _, err in got) or rows.get(i, (0, None))[1]:
            # not a line format, or bad input: the single-process code decides (and names the line)
            out.append(record_digests(opener, fr.name, fr.fmt, file_sha256=fr.sha256, strict=strict))
            continue
        leaves = b"".join(part for part, _ in got)
        skip_header = fr.fmt in ("csv", "tsv")
        if skip_header:
            leaves = leaves[32:]
        n = len(leaves) // 32
        if i in rows and rows[i][0] != n:
            # quoted fields span lines: segment by CSV records, as the single-process code does
            with opener() as f:
                leaves = csv_record_leaves(f, fr.name, "\t" if fr.fmt == "tsv" else ",")
            if len(leaves) // 32 != rows[i][0]:
                raise InputError(
                    f"{fr.name}: CSV record count is ambiguous ({rows[i][0]} by Arrow, {len(leaves) // 32} by csv)"
                )
            out.append(RecordDigests(fr.fmt, "csv-records", leaves))
            continue
        warnings = (f"{fr.name}: no records",) if n == 0 else ()
        out.append(RecordDigests(fr.fmt, "lines", leaves, warnings))
    return out
