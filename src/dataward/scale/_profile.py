"""Screening baselines over partitions: each task profiles one byte range of a line-format file
(CSV/TSV, JSON Lines, text) with its own :class:`~dataward.screen.baseline.ProfileBuilder`, and the
profiles are merged in partition order with :meth:`Profile.merge` (counts, value sets, min/max exact;
mean/variance by Chan's formula; the row sample by bottom-k priorities).

The partition plan (byte ranges, column types taken from the file's first block as the single-process
reader does) depends only on the data, so every executor returns the same profile, byte for byte.
CSV cuts fall only at newlines outside quoted fields (an even number of quotes before them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from dataward.records import readers
from dataward.records.limits import current
from dataward.records.readers import BATCH_ROWS, ReadStats, cast_strings, parse_jsonl_lines
from dataward.records.sniff import canonical_format
from dataward.scale.interface import Executor
from dataward.scale.records import ScanTask, newline_cuts, partition_target, quote_parity_cuts
from dataward.screen.baseline import Baseline, Profile, ProfileBuilder
from dataward.screen.conform import Conformer, detect_format
from dataward.screen.interface import ScreenError

PROFILE_FORMATS = ("csv", "tsv", "jsonl", "text")
MIN_PROFILE_PARTITION = 16 << 20  # profiling has a per-batch cost: fewer, larger partitions
_SCAN = 8 << 20
_BLOCK = 16 << 20


def quoted_safe_cuts(path: Path, target: int, start_at: int = 0) -> list[tuple[int, int]]:
    """Byte ranges of ``[start_at, size)`` of about ``target`` bytes, each ending after a newline that
    lies outside any quoted CSV field (an even number of ``"`` between ``start_at`` and it)."""
    size = path.stat().st_size
    ranges: list[tuple[int, int]] = []
    start, want, pos, parity = start_at, start_at + max(1, target), start_at, 0
    with open(path, "rb") as f:
        f.seek(start_at)
        while block := f.read(_SCAN):
            i = 0  # parity counts the quotes before block[i]
            while pos + len(block) > want:
                j = max(i, want - pos)
                parity ^= block.count(b'"', i, j) & 1
                i = j
                k = block.find(b"\n", i)
                while k >= 0:
                    parity ^= block.count(b'"', i, k) & 1
                    i = k
                    if parity == 0:
                        break
                    k = block.find(b"\n", k + 1)
                if k < 0:
                    break
                cut = pos + k + 1
                i = k + 1
                if cut < size:
                    ranges.append((start, cut))
                    start = cut
                want = cut + max(1, target)
            parity ^= block.count(b'"', i) & 1
            pos += len(block)
    ranges.append((start, size))
    return ranges


@dataclass(frozen=True)
class ProfileTask:
    path: str
    fmt: str
    start: int
    end: int
    index: int
    header: bytes
    types: dict[str, str]  # CSV column types from the first block
    schema: bytes  # the target schema (Arrow IPC), as the single-process conformer would fix it
    options: dict[str, Any] = field(default_factory=dict)


def _read_range(t: ProfileTask) -> bytes:
    with open(t.path, "rb") as f:
        f.seek(t.start)
        return f.read(t.end - t.start)


def _batches(t: ProfileTask, stats: ReadStats) -> list[pa.RecordBatch]:
    data = _read_range(t)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        data = data.decode("utf-8", "replace").encode("utf-8")
    if t.fmt in ("csv", "tsv"):
        names = list(t.types)
        if not data.strip():
            return []
        table = pacsv.read_csv(
            io.BytesIO(t.header + data),
            read_options=pacsv.ReadOptions(block_size=max(_BLOCK, current().max_record_bytes + 1)),
            parse_options=pacsv.ParseOptions(
                delimiter="\t" if t.fmt == "tsv" else ",",
                newlines_in_values=t.fmt == "csv",
                quote_char='"' if t.fmt == "csv" else False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True, check_utf8=False
            ),
        )
        types = {n: _type(s) for n, s in t.types.items()}
        return [cast_strings(b, types) for b in table.combine_chunks().to_batches(max_chunksize=BATCH_ROWS)]
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in data.split(b"\n") if ln.strip()]
    if t.fmt == "text":
        text = [ln.decode("utf-8") for ln in lines]
        return [pa.RecordBatch.from_pydict({"text": pa.array(text, pa.string())})] if text else []
    if not lines:
        return []
    # Python's JSON parser via the records layer (depth-limited), never Arrow's JSON reader on untrusted lines
    numbered = list(enumerate(lines, start=1))
    return [parse_jsonl_lines(numbered, f"{t.path}#{t.index}", "replace", stats, current(), 0)]


def _type(text: str) -> pa.DataType:
    return {"int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}.get(text, pa.string())


def profile_task(t: ProfileTask) -> tuple[Profile, int, int]:
    """(profile of the range, invalid UTF-8 blocks, type violations)."""
    stats = ReadStats()
    schema = pa.ipc.read_schema(pa.py_buffer(t.schema))
    conformer = Conformer(schema if len(schema) else None)
    builder = ProfileBuilder(partition=f"{t.path}#{t.index}", **t.options)
    offset = 0
    for raw in _batches(t, stats):
        batch = conformer.conform(raw, offset)
        builder.update(batch, offset)
        offset += batch.num_rows
    return builder.result(), stats.invalid_utf8, sum(v.count for v in conformer.violations.values())


def _plan(
    path: Path, fmt: str, partition_bytes: int, executor: Executor | None = None
) -> tuple[list[tuple[int, int]], bytes, dict[str, str], bytes]:
    """Ranges, the CSV header line, CSV column types and the target schema, from the file's first block.

    With an ``executor`` the CSV's quotes are counted by its workers (:func:`quote_parity_cuts`): the
    driver reads only the first block; without one, :func:`quoted_safe_cuts` scans the file here."""
    stats = ReadStats()
    first = next(iter(readers.read(str(path), fmt, errors="replace", stats=stats)), None)
    conformer = Conformer(None)
    if first is not None:
        conformer.conform(first, 0)
    schema = conformer.schema.serialize().to_pybytes()
    header = b""
    types: dict[str, str] = {}
    size = path.stat().st_size
    if fmt in ("csv", "tsv"):
        with open(path, "rb") as f:
            while (line := f.readline()) and not line.strip():
                pass
            header_end = f.tell()
        header = line if line.endswith(b"\n") else line + b"\n"
        if first is not None:
            types = {n: str(first.schema.field(n).type) for n in first.schema.names}
            for n in types:
                if types[n] not in ("int64", "double", "bool"):
                    types[n] = "string"
        else:
            types = {}
        if executor is None:
            return quoted_safe_cuts(path, partition_bytes, header_end), header, types, schema
        cuts = quote_parity_cuts(executor, ScanTask("", "", str(path), 0, 0), size, partition_bytes)
        ends = [b for _a, b in cuts if b > header_end] or [size]
        starts = [header_end, *ends[:-1]]
        return list(zip(starts, ends, strict=True)), header, types, schema
    with open(path, "rb") as f:
        ranges = newline_cuts(f, size, partition_bytes)
    return ranges, header, types, schema


def partitioned_baseline(
    executor: Executor,
    path: str | Path,
    *,
    format: str | None = None,
    label: str | None = None,
    text: tuple[str, ...] = (),
    group: tuple[str, ...] = (),
    sample_size: int = 10_000,
    max_values: int = 1000,
    max_tokens: int = 20_000,
    seed: int = 0,
    partition_bytes: int | None = None,
) -> Baseline:
    """A baseline of one file, profiled in partitions on ``executor`` and merged in order."""
    p = Path(path)
    if not p.is_file():
        raise ScreenError(f"{p}: not a file", advice="Profile one CSV/TSV/JSON Lines/text file at a time.")
    fmt = canonical_format(format) if format else detect_format(p)
    if fmt not in PROFILE_FORMATS:
        raise ScreenError(f"{p}: format {fmt!r} cannot be partitioned", advice="Use create_baseline() for it.")
    target = partition_target(p.stat().st_size, partition_bytes, minimum=MIN_PROFILE_PARTITION)
    ranges, header, types, schema = _plan(p, fmt, target, executor)
    options = {
        "label": label,
        "text": tuple(text),
        "group": tuple(group),
        "sample_size": sample_size,
        "max_values": max_values,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    tasks = [ProfileTask(str(p), fmt, a, b, i, header, types, schema, options) for i, (a, b) in enumerate(ranges)]
    if fmt in ("csv", "tsv") and not types:
        tasks = []
    parts = executor.map(profile_task, tasks)
    if not parts:
        prof = ProfileBuilder(**options).result()  # type: ignore[arg-type]
        invalid = violations = 0
    else:
        prof = reduce(lambda a, b: a.merge(b), [pr for pr, _, _ in parts])
        invalid = sum(x for _, x, _ in parts)
        violations = sum(x for _, _, x in parts)
    if label and label not in prof.columns:
        raise ScreenError(f"{p}: label column {label!r} not found", advice=f"Columns: {', '.join(prof.columns)}.")
    return Baseline(
        prof,
        source=str(p),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        meta={"invalid_utf8_blocks": invalid, "type_violations": violations, "partitions": len(tasks)},
    )
