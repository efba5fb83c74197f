"""Screening's view of the records layer: record batches of a path or table, conformed to one schema.

Reading is :mod:`dataward.records` (one reader per format, limits enforced) with ``errors="replace"``:
invalid UTF-8 is replaced (and counted), invalid JSON lines are kept as ``_invalid_json`` (and counted).
Here, values that do not fit a column's type become null and are reported with their records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.errors import InputError
from dataward.records import readers
from dataward.records.readers import BATCH_ROWS, ReadStats, records_to_batch
from dataward.records.sniff import READ_FORMATS, canonical_format, sniff
from dataward.screen._util import seed_encoded
from dataward.screen.interface import ScreenError

__all__ = ["BATCH_ROWS", "FORMATS", "Conformer", "ReadStats", "detect_format", "raw_batches", "records_to_batch"]

FORMATS = tuple(f for f in READ_FORMATS if f != "npy")
_MAX_CELL_CHARS = 1 << 20  # longer string cells are truncated for screening (reported)


def detect_format(path: Path) -> str:
    """The records layer's format of ``path`` (a ScreenError when it cannot tell)."""
    try:
        return sniff(str(path))
    except InputError as exc:
        raise ScreenError(exc.message, advice=exc.advice) from None


def raw_batches(
    path: Path, fmt: str | None, stats: ReadStats
) -> tuple[str, list[Path], Callable[[], Iterator[pa.RecordBatch]]]:
    """The format, the files, and a factory of record-batch iterators (each re-reads from the start)."""
    if not path.exists():
        raise ScreenError(f"{path}: no such file or directory")
    try:
        fmt = canonical_format(fmt) if fmt else detect_format(path)
    except InputError as exc:
        raise ScreenError(exc.message, advice=exc.advice) from None
    if fmt not in FORMATS:
        raise ScreenError(f"unknown format {fmt!r}", advice=f"Use one of: {', '.join(FORMATS)}.")
    if fmt == "images" or not path.is_dir():
        files = [path]
    else:
        files = [Path(p) for p in readers.data_files(str(path), fmt)]
        if not files:
            raise ScreenError(f"{path}: no {fmt} files in this directory")

    def factory() -> Iterator[pa.RecordBatch]:
        try:
            for f in files:
                # string columns stored as dictionaries hand their encoding to the checks (_util.encoded)
                yield from readers.read(str(f), fmt, errors="replace", stats=stats, on_dictionary=_seed)
        except ScreenError:
            raise
        except InputError as exc:  # screening's callers see one error type for input it cannot screen
            raise ScreenError(exc.message, advice=exc.advice) from None

    return fmt, files, factory


def _seed(plain: pa.Array, dictionary: pa.DictionaryArray) -> None:
    seed_encoded(plain, dictionary)


def table_batches(table: pa.Table | pa.RecordBatch) -> Callable[[], Iterator[pa.RecordBatch]]:
    """A factory of record-batch iterators over an in-memory table."""
    def factory() -> Iterator[pa.RecordBatch]:
        t = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
        yield from t.to_batches(max_chunksize=BATCH_ROWS)

    return factory


# --- conforming batches to one schema -------------------------------------------------------------------


@dataclass
class TypeViolation:
    """Cells of one column that do not fit the expected type: how many, some record numbers and redacted examples."""

    column: str
    expected: str
    count: int = 0
    records: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def _convert_value(value: Any, typ: pa.DataType) -> Any:
    """Convert one Python value to ``typ`` or raise ValueError."""
    if value is None:
        return None
    if pa.types.is_boolean(typ):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(value)
    if pa.types.is_integer(typ):
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError(value)
    if pa.types.is_floating(typ):
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError(value)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        if isinstance(value, str):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return json.dumps(value, ensure_ascii=False, default=str)
    raise ValueError(value)


class Conformer:
    """Casts every batch to one schema: the baseline's, or the first batch's (widened as batches come)."""

    def __init__(self, target: pa.Schema | None) -> None:
        self.fixed = target is not None
        self.target: dict[str, pa.DataType] = {f.name: f.type for f in target} if target is not None else {}
        self.seen_types: dict[str, set[str]] = {}
        self.missing: set[str] = set()
        self.violations: dict[str, TypeViolation] = {}
        self.truncated_cells = 0

    @property
    def schema(self) -> pa.Schema:
        """The target schema as it stands (fixed by the baseline, or widened from the batches seen)."""
        return pa.schema([(n, t) for n, t in self.target.items()])

    def conform(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        """The batch cast to the target schema, columns in target order; missing columns
        become nulls, over-long strings are truncated and cells that do not fit their
        type are recorded as violations (``offset`` numbers their records).
        """
        n = batch.num_rows
        names = batch.schema.names
        arrays: dict[str, pa.Array] = {}
        for name in names:
            arr = batch.column(name)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
            self.seen_types.setdefault(name, set()).add(str(arr.type))
            arr = self._truncate(arr)
            if name not in self.target or pa.types.is_null(self.target[name]):
                self.target[name] = arr.type
                arrays[name] = arr
                continue
            arrays[name] = self._cast(name, arr, offset)
        for name, typ in self.target.items():
            if name not in arrays:
                self.missing.add(name)
                arrays[name] = pa.nulls(n, typ)
        ordered = list(self.target)
        return pa.RecordBatch.from_arrays([arrays[c] for c in ordered], names=ordered)

    def _truncate(self, arr: pa.Array) -> pa.Array:
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or len(arr) == 0:
            return arr
        offsets = arr.buffers()[1]
        if offsets is not None:  # no cell has more bytes than the limit: none has more characters
            wide = np.int64 if pa.types.is_large_string(arr.type) else np.int32
            ends = np.frombuffer(offsets, dtype=wide)[arr.offset : arr.offset + len(arr) + 1]
            if ends.size > 1 and int(np.diff(ends).max()) <= _MAX_CELL_CHARS:
                return arr
        lengths = pc.utf8_length(arr)
        longest = pc.max(lengths).as_py()
        if longest is None or longest <= _MAX_CELL_CHARS:
            return arr
        too_long = pc.greater(lengths, _MAX_CELL_CHARS)
        self.truncated_cells += int(pc.sum(too_long).as_py() or 0)
        return pc.if_else(too_long, pc.utf8_slice_codeunits(arr, 0, _MAX_CELL_CHARS), arr)

    def _cast(self, name: str, arr: pa.Array, offset: int) -> pa.Array:
        typ = self.target[name]
        if arr.type == typ:
            return arr
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), typ)
        if not self.fixed and pa.types.is_integer(typ) and pa.types.is_floating(arr.type):
            self.target[name] = arr.type  # widen int -> float when no baseline fixes the type
            return arr
        try:
            if pa.types.is_boolean(typ) and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                raise pa.ArrowInvalid("strings to bool go value by value")
            return pc.cast(arr, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        if not self.fixed and pa.types.is_integer(typ):
            try:
                out = pc.cast(arr, pa.float64())
                self.target[name] = pa.float64()
                return out
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass
        values = arr.to_pylist()
        converted: list[Any] = []
        violation = self.violations.setdefault(name, TypeViolation(name, str(typ)))
        for i, v in enumerate(values):
            try:
                c = _convert_value(v, typ)
                if isinstance(c, float) and not math.isfinite(c) and isinstance(v, str):
                    pass  # "nan"/"inf" strings are accepted as floats; range checks see them
                converted.append(c)
            except (ValueError, TypeError, OverflowError):
                converted.append(None)
                violation.count += 1
                if len(violation.records) < 1000:
                    violation.records.append(offset + i)
                if len(violation.examples) < 5:
                    violation.examples.append(repr(v)[:40])
        try:
            return pa.array(converted, type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            violation.count += len(values)
            return pa.nulls(len(values), typ)
