"""Reading batches for screening: streamed record batches from files, conformed to one schema.

Formats: CSV/TSV, JSON Lines, JSON (an array of objects), Parquet, Arrow IPC (file or stream), plain text
(one record per line, column ``text``), a directory of images (columns ``path`` and ``image``), and a
directory of data files of one format (read in name order). Memory stays bounded: every format except a
JSON array is read a block at a time.

Bad input never raises anything but :class:`ScreenError`: invalid UTF-8 is replaced (and counted), values
that do not fit a column's type become null (and are reported with their records), mixed JSON types fall
back to strings.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from dataward.screen.interface import ScreenError

BATCH_ROWS = 262_144
_CSV_BLOCK = 16 << 20
_JSONL_CHUNK_LINES = 65_536
_MAX_CELL_CHARS = 1 << 20  # longer string cells are truncated for screening (reported)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
_EXT_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".txt": "txt",
}
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "arrow", "txt", "images")


@dataclass
class ReadStats:
    invalid_utf8: int = 0  # blocks or lines with invalid UTF-8 (replaced by U+FFFD)
    invalid_json_lines: list[int] = field(default_factory=list)
    truncated_cells: int = 0


def detect_format(path: Path) -> str:
    if path.is_dir():
        files = data_files(path)
        if files:
            return detect_format(files[0])
        if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*") if p.is_file()):
            return "images"
        raise ScreenError(f"{path}: no data files or images found in this directory")
    fmt = _EXT_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise ScreenError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}",
            advice=f"Pass --format, one of: {', '.join(FORMATS)}.",
        )
    return fmt


def data_files(path: Path) -> list[Path]:
    """Data files under a directory (metadata such as README.md and croissant JSON-LD excluded)."""
    out = []
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() in (".md", ".yaml", ".yml") or "croissant" in p.name.lower():
            continue
        if p.name.lower() in ("dataset_info.json", "metadata.json", "dataset_infos.json", "state.json"):
            continue
        if p.suffix.lower() in _EXT_FORMAT and p.suffix.lower() != ".txt":
            out.append(p)
    return out


class _Utf8Sanitizer(io.RawIOBase):
    """A read-only stream that passes valid UTF-8 through and replaces invalid sequences by U+FFFD."""

    def __init__(self, raw: io.BufferedReader, stats: ReadStats) -> None:
        self._raw = raw
        self._stats = stats
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self, n: int) -> None:
        while len(self._pending) < n and not self._eof:
            block = self._raw.read(max(n, 1 << 20))
            final = not block
            if final:
                self._eof = True
            try:
                text = self._decoder.decode(block, final=final)
            except UnicodeDecodeError:
                self._stats.invalid_utf8 += 1
                state = self._decoder.getstate()
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
                self._decoder.setstate(state)
                text = self._decoder.decode(block, final=final)
                self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
            self._pending += text.encode("utf-8")

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        n = len(view)
        self._fill(n)
        chunk, self._pending = self._pending[:n], self._pending[n:]
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _infer_from_strings(arr: pa.Array) -> pa.DataType:
    """The narrowest of int64, float64, bool that every non-null string in ``arr`` casts to, else string."""
    non_null = pc.drop_null(arr)
    if len(non_null) == 0:
        return pa.string()
    for typ in (pa.int64(), pa.float64()):
        try:
            pc.cast(non_null, typ)
            return typ
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    lowered = pc.utf8_lower(non_null)
    if pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py():
        return pa.bool_()
    return pa.string()


def _csv_batches(path: Path, delimiter: str, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    def open_reader(column_types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
        stream = _Utf8Sanitizer(open(path, "rb"), stats)  # noqa: SIM115 - closed by the reader
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True, check_utf8=False),
        )

    try:
        probe = open_reader(None)
        names = probe.schema.names
        probe.close()
        reader = open_reader(dict.fromkeys(names, pa.string()))
        first_types: dict[str, pa.DataType] | None = None
        for batch in reader:
            if first_types is None:
                first_types = {n: _infer_from_strings(batch.column(n)) for n in names}
            yield _cast_strings(batch, first_types)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ScreenError(f"{path}: unreadable CSV: {str(exc).splitlines()[0]}") from None


def _cast_strings(batch: pa.RecordBatch, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    cols = []
    for name in batch.schema.names:
        arr = batch.column(name)
        typ = types.get(name, pa.string())
        if typ == pa.bool_():
            lowered = pc.utf8_lower(arr)
            ok = pc.is_in(lowered, pa.array(["true", "false"]))
            if pc.all(pc.or_kleene(ok, pc.is_null(arr))).as_py():
                arr = pc.equal(lowered, "true")
        elif typ != pa.string():
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arr = pc.cast(arr, typ)  # if not, the conformer reports the values that do not fit
        cols.append(arr)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _python_column(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return pa.array(values, type=pa.bool_())
    if kinds <= {int}:
        try:
            return pa.array(values, type=pa.int64())
        except (pa.ArrowInvalid, OverflowError):
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if kinds <= {int, float}:
        try:
            return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        except OverflowError:
            pass
    if kinds <= {str}:
        return pa.array(values, type=pa.string())
    return pa.array(
        [
            None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            for v in values
        ],
        type=pa.string(),
    )


def records_to_batch(records: list[Any]) -> pa.RecordBatch:
    """Python records (JSON values) to a record batch; mixed types become strings, scalars go to ``value``."""
    names: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for rec in records:
        row = rec if isinstance(rec, dict) else {"value": rec}
        rows.append(row)
        for k in row:
            names.setdefault(str(k), None)
    cols = {n: _python_column([r.get(n) for r in rows]) for n in names}
    if not cols:
        return pa.RecordBatch.from_pydict({"value": pa.nulls(len(records))})
    return pa.RecordBatch.from_pydict(cols)


def _jsonl_batches(path: Path, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ScreenError(f"{path}: unreadable: {exc}") from None
    line_no = 0
    with fh:
        while True:
            lines = []
            for raw in fh:
                if raw.strip():
                    lines.append(raw)
                if len(lines) >= _JSONL_CHUNK_LINES:
                    break
            if not lines:
                return
            blob = b"".join(x if x.endswith(b"\n") else x + b"\n" for x in lines)
            try:
                blob.decode("utf-8")
            except UnicodeDecodeError:
                stats.invalid_utf8 += 1
                blob = blob.decode("utf-8", "replace").encode("utf-8")
            table = None
            try:
                table = pajson.read_json(io.BytesIO(blob))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = None
            if table is not None and table.num_rows == len(lines):
                yield from table.combine_chunks().to_batches()
            else:
                records: list[Any] = []
                for i, line in enumerate(blob.decode("utf-8").split("\n")[: len(lines)]):
                    try:
                        records.append(json.loads(line))
                    except (json.JSONDecodeError, RecursionError):
                        stats.invalid_json_lines.append(line_no + i)
                        records.append({"_invalid_json": line[:200]})
                yield records_to_batch(records)
            line_no += len(lines)


def _json_batches(path: Path, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScreenError(f"{path}: unreadable: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ScreenError(f"{path}: not valid JSON: {exc}".splitlines()[0], advice="Use JSON Lines.") from None
    if isinstance(data, dict):
        for key in ("data", "records", "rows", "examples"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            data = [data]
    if not isinstance(data, list):
        data = [data]
    for start in range(0, len(data), _JSONL_CHUNK_LINES):
        yield records_to_batch(data[start : start + _JSONL_CHUNK_LINES])


def _txt_batches(path: Path, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ScreenError(f"{path}: unreadable: {exc}") from None
    with fh:
        lines: list[str] = []
        for raw in fh:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                stats.invalid_utf8 += 1
                line = raw.decode("utf-8", "replace")
            lines.append(line.rstrip("\r\n"))
            if len(lines) >= BATCH_ROWS:
                yield pa.RecordBatch.from_pydict({"text": pa.array(lines, pa.string())})
                lines = []
        if lines:
            yield pa.RecordBatch.from_pydict({"text": pa.array(lines, pa.string())})


def _image_batches(path: Path) -> Iterator[pa.RecordBatch]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    step = 4096
    for start in range(0, len(files), step):
        chunk = files[start : start + step]
        rels: list[str] = []
        blobs: list[bytes | None] = []
        for p in chunk:
            rels.append(str(p.relative_to(path)))
            try:
                blobs.append(p.read_bytes())
            except OSError:
                blobs.append(None)
        label = [p.parent.name if p.parent != path else None for p in chunk]
        yield pa.RecordBatch.from_pydict(
            {"path": pa.array(rels), "image": pa.array(blobs, pa.binary()), "label": pa.array(label, pa.string())}
        )


def _arrow_batches(path: Path) -> Iterator[pa.RecordBatch]:
    try:
        source = pa.memory_map(str(path), "r")
        try:
            reader: Any = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
        except pa.ArrowInvalid:
            source = pa.memory_map(str(path), "r")
            yield from pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ScreenError(f"{path}: unreadable Arrow IPC file: {str(exc).splitlines()[0]}") from None


def _parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    try:
        # buffered column reads without pre-buffering: the default reads whole files ahead (700+ MB at 10M rows)
        pf = pq.ParquetFile(str(path), buffer_size=1 << 20, pre_buffer=False)
        yield from pf.iter_batches(batch_size=BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ScreenError(f"{path}: unreadable Parquet file: {str(exc).splitlines()[0]}") from None


def _file_batches(path: Path, fmt: str, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    if fmt == "csv":
        return _csv_batches(path, ",", stats)
    if fmt == "tsv":
        return _csv_batches(path, "\t", stats)
    if fmt == "jsonl":
        return _jsonl_batches(path, stats)
    if fmt == "json":
        return _json_batches(path, stats)
    if fmt == "parquet":
        return _parquet_batches(path)
    if fmt == "arrow":
        return _arrow_batches(path)
    if fmt == "txt":
        return _txt_batches(path, stats)
    if fmt == "images":
        return _image_batches(path)
    raise ScreenError(f"unknown format {fmt!r}", advice=f"Use one of: {', '.join(FORMATS)}.")


def raw_batches(
    path: Path, fmt: str | None, stats: ReadStats
) -> tuple[str, list[Path], Callable[[], Iterator[pa.RecordBatch]]]:
    """The format, the files, and a factory of record-batch iterators (each re-reads from the start)."""
    if not path.exists():
        raise ScreenError(f"{path}: no such file or directory")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ScreenError(f"unknown format {fmt!r}", advice=f"Use one of: {', '.join(FORMATS)}.")
    if fmt == "images":
        files = [path]
    elif path.is_dir():
        files = [p for p in data_files(path) if _EXT_FORMAT.get(p.suffix.lower()) == fmt]
        if not files:
            raise ScreenError(f"{path}: no {fmt} files in this directory")
    else:
        files = [path]

    def factory() -> Iterator[pa.RecordBatch]:
        for f in files:
            for batch in _file_batches(f, fmt, stats):
                if batch.num_rows > BATCH_ROWS:
                    for start in range(0, batch.num_rows, BATCH_ROWS):
                        yield batch.slice(start, BATCH_ROWS)
                else:
                    yield batch

    return fmt, files, factory


def table_batches(table: pa.Table | pa.RecordBatch) -> Callable[[], Iterator[pa.RecordBatch]]:
    def factory() -> Iterator[pa.RecordBatch]:
        t = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
        yield from t.to_batches(max_chunksize=BATCH_ROWS)

    return factory


# --- conforming batches to one schema -------------------------------------------------------------------


@dataclass
class TypeViolation:
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
        return pa.schema([(n, t) for n, t in self.target.items()])

    def conform(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
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
