"""One reader per format, each a stream of Arrow record batches, over any fsspec filesystem.

Record numbers are stable: record ``i`` of a file is the ``i``-th record as acquisition counts it
(:mod:`dataward.records.leaves`, ADR 0002): blank lines are not records, a CSV/TSV header is not a record.
Every reader enforces :class:`~dataward.records.limits.Limits` while it streams, so memory is bounded by
the limits and the batch size, not by the file.

Decoding policy is the caller's: ``errors="strict"`` refuses invalid UTF-8 and invalid JSON with an
:class:`~dataward.errors.InputError` naming the file and line; ``errors="replace"`` (screening) replaces
invalid UTF-8 by U+FFFD, keeps an invalid JSON line as ``{"_invalid_json": ...}`` and counts both in
:class:`ReadStats`. Limits are never relaxed by ``errors="replace"``.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from dataward.errors import InputError
from dataward.records.leaves import check_column_names, iter_lines, loads_record
from dataward.records.limits import Limits, current
from dataward.records.sniff import IMAGE_SUFFIXES, SUFFIX_FORMAT, canonical_format, is_metadata, sniff
from dataward.records.sniff import filesystem as filesystem  # re-exported: readers.filesystem is the older home

#: rows per record batch a reader yields
BATCH_ROWS = 262_144
_JSONL_CHUNK_LINES = 65_536
_IMAGE_CHUNK = 4096


@dataclass
class ReadStats:
    """What a lenient (``errors="replace"``) read repaired, for the caller to report."""

    invalid_utf8: int = 0  # blocks or lines with invalid UTF-8 (replaced by U+FFFD)
    invalid_json_lines: list[int] = field(default_factory=list)  # 0-based record numbers
    truncated_cells: int = 0


# --- building batches from Python values ----------------------------------------------------------------


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
    """Python records (JSON values) to a record batch; mixed types become strings, scalars go to ``value``.

    Built value by value in Python, never by Arrow's JSON reader (it crashes on top-level non-objects)."""
    names: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for rec in records:
        row = rec if isinstance(rec, dict) else {"value": rec}
        rows.append(row)
        for k in row:
            names.setdefault(str(k), None)
    lim = current()
    if len(names) > lim.max_columns:
        raise lim.refuse("max_columns", "JSON records", f"{len(names):,} distinct keys")
    cols = {n: _python_column([r.get(n) for r in rows]) for n in names}
    if not cols:
        return pa.RecordBatch.from_pydict({"value": pa.nulls(len(records))})
    return pa.RecordBatch.from_pydict(cols)


def infer_from_strings(arr: pa.Array) -> pa.DataType:
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


def cast_strings(batch: pa.RecordBatch, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    """Cast string columns to ``types`` where every value fits (else the column stays strings)."""
    cols = []
    for i, name in enumerate(batch.schema.names):
        arr = batch.column(i)
        typ = types.get(name, pa.string())
        if typ == pa.bool_():
            lowered = pc.utf8_lower(arr)
            ok = pc.is_in(lowered, pa.array(["true", "false"]))
            if pc.all(pc.or_kleene(ok, pc.is_null(arr))).as_py():
                arr = pc.equal(lowered, "true")
        elif typ != pa.string():
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arr = pc.cast(arr, typ)  # if not, the caller sees strings (the conformer reports them)
        cols.append(arr)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


# --- decoding ---------------------------------------------------------------------------------------------


class Utf8Sanitizer(io.RawIOBase):
    """A read-only stream that passes valid UTF-8 through and replaces invalid sequences by U+FFFD."""

    def __init__(self, raw: IO[bytes], stats: ReadStats) -> None:
        self._raw = raw
        self._stats = stats
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        """Always True: this stream is read-only and readable."""
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
        """Fill ``b`` with up to ``len(b)`` sanitised bytes and return how many were written (0 at end of stream)."""
        view = memoryview(b)
        n = len(view)
        self._fill(n)
        chunk, self._pending = self._pending[:n], self._pending[n:]
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        """Close the underlying stream as well."""
        self._raw.close()
        super().close()


def _decode(line: bytes, where: str, errors: str, stats: ReadStats) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if errors == "strict":
            raise InputError(
                f"{where}: invalid UTF-8 at byte {exc.start}", advice="Re-encode the file as UTF-8."
            ) from None
        stats.invalid_utf8 += 1
        return line.decode("utf-8", "replace")


# --- the readers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """What every reader shares: the file, its filesystem, limits, decoding policy and repair counts."""

    path: str
    fs: Any
    limits: Limits
    errors: str
    stats: ReadStats
    #: called as ``on_dictionary(strings, dictionary_array)`` for each string column a reader had stored
    #: dictionary-encoded (Parquet), after it is decoded to the plain strings it yields
    on_dictionary: Callable[[pa.Array, pa.DictionaryArray], None] | None = None

    def open(self) -> IO[bytes]:
        """Open the file for binary reading; raises :class:`InputError` naming
        the path if it is missing, a directory, unreadable or not permitted.
        """
        try:
            f: IO[bytes] = self.fs.open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file", advice="Check the path.") from None
        except IsADirectoryError:
            raise InputError(f"{self.path}: is a directory, not a file") from None
        except PermissionError:
            raise InputError(f"{self.path}: permission denied", advice="Make the file readable.") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        return f

    def open_direct(self) -> IO[bytes]:
        """:meth:`open`, but a local file is opened by the operating system's file object rather than through
        the filesystem layer: Arrow's readers call ``read`` many times, and the layer's Python wrapper
        cost three times the CPU of the decoding itself on a 1M-row Parquet file."""
        from fsspec.implementations.local import LocalFileSystem  # loaded already: self.fs is one of fsspec's

        if not isinstance(self.fs, LocalFileSystem):
            return self.open()
        try:
            return open(self.path, "rb")  # closed by the caller, as open()'s result is
        except (OSError, ValueError):
            return self.open()  # the same one-line errors as open()

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(1-based line number, line) of every non-blank line (CRLF folded, terminator dropped)."""
        with self.open() as f:
            for first, lines in iter_lines(f, self.path, self.limits):
                for i, line in enumerate(lines):
                    if line.strip():
                        yield first + i, line


def read_text(r: Reader) -> Iterator[pa.RecordBatch]:
    """Plain text: one record per non-blank line, column ``text``."""
    texts: list[str] = []
    for number, line in r.lines():
        texts.append(_decode(line, f"{r.path} line {number}", r.errors, r.stats))
        if len(texts) >= BATCH_ROWS:
            yield pa.RecordBatch.from_pydict({"text": pa.array(texts, pa.string())})
            texts = []
    if texts:
        yield pa.RecordBatch.from_pydict({"text": pa.array(texts, pa.string())})


def parse_jsonl_lines(
    numbered: list[tuple[int, bytes]], where: str, errors: str, stats: ReadStats, limits: Limits, first_record: int
) -> pa.RecordBatch:
    """JSON Lines (already split, non-blank) to one record batch; a non-object record goes to ``value``."""
    records: list[Any] = []
    for k, (number, line) in enumerate(numbered):
        here = f"{where} line {number}"
        text = _decode(line, here, errors, stats)
        try:
            records.append(loads_record(text, here, limits))
        except json.JSONDecodeError as exc:
            if errors == "strict":
                raise InputError(f"{here}: not valid JSON ({exc.msg})", advice="Fix that line.") from None
            stats.invalid_json_lines.append(first_record + k)
            records.append({"_invalid_json": text[:200]})
    return records_to_batch(records)


def read_jsonl(r: Reader) -> Iterator[pa.RecordBatch]:
    """JSON Lines: one record per non-blank line; objects' keys are columns, other values column ``value``."""
    chunk: list[tuple[int, bytes]] = []
    done = 0
    for item in r.lines():
        chunk.append(item)
        if len(chunk) >= _JSONL_CHUNK_LINES:
            yield parse_jsonl_lines(chunk, r.path, r.errors, r.stats, r.limits, done)
            done += len(chunk)
            chunk = []
    if chunk:
        yield parse_jsonl_lines(chunk, r.path, r.errors, r.stats, r.limits, done)


def read_json(r: Reader) -> Iterator[pa.RecordBatch]:
    """A JSON document: an array of records, or an object holding one under data/records/rows/examples."""
    size = r.fs.size(r.path)
    if size is not None and size > r.limits.max_record_bytes:
        raise r.limits.refuse(
            "max_record_bytes", r.path, f"a JSON document of {size:,} bytes (read whole; use JSON Lines)"
        )
    with r.open() as f:
        raw = f.read(r.limits.max_record_bytes + 1)
    text = _decode(raw, r.path, r.errors, r.stats)
    try:
        data = loads_record(text, r.path, r.limits)
    except json.JSONDecodeError as exc:
        raise InputError(f"{r.path}: not valid JSON: {exc}".splitlines()[0], advice="Use JSON Lines.") from None
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


def _csv_options(delimiter: str, limits: Limits, names: list[str] | None, types: Any) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    return (
        # a block must hold the longest record: Arrow refuses a record that straddles two blocks
        pacsv.ReadOptions(block_size=max(16 << 20, limits.max_record_bytes + 1), column_names=names),
        pacsv.ParseOptions(
            delimiter=delimiter,
            newlines_in_values=delimiter == ",",
            quote_char='"' if delimiter == "," else False,
        ),
        pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, check_utf8=False),
    )


def _csv_header(r: Reader, delimiter: str) -> list[str]:
    import csv

    kind = "TSV" if delimiter == "\t" else "CSV"
    with r.open() as f:
        head = f.read(min(r.limits.max_record_bytes, 1 << 20))
        while head and b"\n" not in head and len(head) < r.limits.max_record_bytes:
            more = f.read(1 << 20)
            if not more:
                break
            head += more
    if b"\r" in head and b"\n" not in head:
        raise InputError(
            f"{r.path}: lines end in CR only (classic Mac OS line endings)",
            advice="Convert the line endings to LF and try again.",
        )
    lines = [ln for ln in head.replace(b"\r\n", b"\n").split(b"\n")]
    first = next((ln for ln in lines if ln.strip()), b"")
    if len(first) >= r.limits.max_record_bytes:
        raise r.limits.refuse("max_record_bytes", f"{r.path} line 1", f"a {kind} header")
    text = _decode(first, f"{r.path} line 1", r.errors, r.stats)
    try:
        reader = (
            csv.reader([text], delimiter=delimiter)
            if delimiter == ","
            else csv.reader([text], delimiter=delimiter, quoting=csv.QUOTE_NONE)
        )
        columns = next(reader, [])
    except csv.Error as exc:
        raise InputError(f"{r.path} line 1: malformed {kind} header: {str(exc).split(' - ')[0]}") from None
    check_column_names(columns, f"{r.path} line 1")
    return columns


def read_csv(r: Reader, delimiter: str = ",", *, infer_types: bool = True) -> Iterator[pa.RecordBatch]:
    """CSV (RFC 4180 quoting, fields may span lines) or TSV (no quoting): one record per row.

    Every column is parsed as strings; with ``infer_types`` the types of the first batch (int64, float64,
    bool, else string) are applied to every batch, so one odd value never fails a whole block."""
    import pyarrow.csv as pacsv

    kind = "TSV" if delimiter == "\t" else "CSV"
    columns = _csv_header(r, delimiter)
    if not columns:
        return
    stream: IO[bytes] = r.open()
    if r.errors != "strict":
        stream = io.BufferedReader(Utf8Sanitizer(stream, r.stats))
    read_o, parse_o, convert_o = _csv_options(delimiter, r.limits, None, dict.fromkeys(columns, pa.string()))
    if r.errors == "strict":
        convert_o.check_utf8 = True
    done = 0
    try:
        with contextlib.closing(stream):
            reader = pacsv.open_csv(stream, read_options=read_o, parse_options=parse_o, convert_options=convert_o)
            types: dict[str, pa.DataType] | None = None
            for batch in reader:
                if types is None:
                    types = (
                        {n: infer_from_strings(batch.column(i)) for i, n in enumerate(columns)} if infer_types else {}
                    )
                out = cast_strings(batch, types) if infer_types else batch
                done += batch.num_rows
                yield out
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if msg.startswith("Empty CSV file"):
            return
        if "straddling" in msg:
            raise r.limits.refuse("max_record_bytes", f"{r.path} after record {done}", f"a {kind} record") from None
        raise InputError(f"{r.path} after record {done}: malformed {kind}: {msg}") from None


def read_parquet(r: Reader) -> Iterator[pa.RecordBatch]:
    """Parquet: one record per row, streamed a row group at a time."""
    import pyarrow.parquet as pq

    f = r.open_direct()
    try:
        with contextlib.closing(f):
            # buffered column reads without pre-buffering: the default reads whole files ahead
            pf = pq.ParquetFile(f, buffer_size=1 << 20, pre_buffer=False)
            check_column_names(pf.schema_arrow.names, r.path)
            dict_cols = _dictionary_strings(pf) if r.on_dictionary is not None else []
            if dict_cols:  # reopened: read_dictionary is an option of the file object
                pf = pq.ParquetFile(f, buffer_size=1 << 20, pre_buffer=False, read_dictionary=dict_cols)
            # one thread: the records layer streams batch by batch and its callers spread work over cores;
            # Arrow's thread pool costs more to start (~0.4 CPU s on a cold process) than it saves here
            batches = pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
            if not dict_cols:
                yield from batches
                return
            assert r.on_dictionary is not None
            yield from _rebatch(_decode_dictionaries(b, dict_cols, r.on_dictionary) for b in batches)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{r.path}: unreadable Parquet file: {str(exc).splitlines()[0]}") from None


def _dictionary_strings(pf: Any) -> list[str]:
    """The top-level string columns that every row group of the file stores with a dictionary page; none
    unless every row group but the last holds a multiple of ``BATCH_ROWS`` rows (a reader of dictionaries
    ends its batches at row-group ends, where a plain one carries on: see :func:`_rebatch`)."""
    schema = pf.schema_arrow
    strings = {f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
    meta = pf.metadata
    if not strings or meta.num_row_groups == 0:
        return []
    if any(meta.row_group(g).num_rows % BATCH_ROWS for g in range(meta.num_row_groups - 1)):
        return []
    out = []
    first = meta.row_group(0)
    for j in range(first.num_columns):
        name = first.column(j).path_in_schema
        groups = range(meta.num_row_groups)
        if name in strings and all(meta.row_group(g).column(j).has_dictionary_page for g in groups):
            out.append(name)
    return out


def _rebatch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of ``BATCH_ROWS`` rows (the last one shorter), as a plain Parquet read cuts them, from batches
    that may end early; one that already has the size passes through as it is."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows == BATCH_ROWS:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= BATCH_ROWS:
            table = pa.Table.from_batches(pending)
            yield from table.slice(0, BATCH_ROWS).combine_chunks().to_batches(max_chunksize=BATCH_ROWS)
            rest = table.slice(BATCH_ROWS)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            held = rest.num_rows
    if held:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches(max_chunksize=BATCH_ROWS)


def _decode_dictionaries(
    batch: pa.RecordBatch, names: list[str], on_dictionary: Callable[[pa.Array, pa.DictionaryArray], None]
) -> pa.RecordBatch:
    """The batch with each dictionary column read for ``names`` decoded to its plain strings (the same
    values a plain read gives), each pair handed to ``on_dictionary``."""
    arrays = list(batch.columns)
    for i, col in enumerate(batch.schema):
        if col.name in names and pa.types.is_dictionary(col.type):
            d = arrays[i]
            plain = d.cast(col.type.value_type)
            on_dictionary(plain, d)
            arrays[i] = plain
    fields = [pa.field(f.name, a.type, f.nullable, f.metadata) for f, a in zip(batch.schema, arrays, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))


def read_arrow(r: Reader) -> Iterator[pa.RecordBatch]:
    """Arrow IPC, file or stream format."""
    try:
        with r.open() as f:
            data = f.read()
        try:
            reader: Any = pa.ipc.open_file(pa.py_buffer(data))
            check_column_names(reader.schema.names, r.path)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
        except pa.ArrowInvalid:
            stream = pa.ipc.open_stream(pa.py_buffer(data))
            check_column_names(stream.schema.names, r.path)
            yield from stream
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{r.path}: unreadable Arrow IPC file: {str(exc).splitlines()[0]}") from None


def image_files(r: Reader) -> list[str]:
    """Relative POSIX paths of the image files under a folder, sorted (hidden files skipped)."""
    root = r.path.rstrip("/")
    out = []
    for p in r.fs.find(root):
        rel = str(p)[len(root) :].lstrip("/")
        if PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES and not any(
            part.startswith(".") for part in rel.split("/")
        ):
            out.append(rel)
    return sorted(out)


def read_images(r: Reader) -> Iterator[pa.RecordBatch]:
    """A folder of images, ``ROOT/<label>/<file>``: columns ``path`` (relative), ``image`` (encoded bytes,
    null when unreadable) and ``label`` (the first folder, null for files directly under ROOT)."""
    files = image_files(r)
    root = r.path.rstrip("/")
    for start in range(0, len(files), _IMAGE_CHUNK):
        chunk = files[start : start + _IMAGE_CHUNK]
        blobs: list[bytes | None] = []
        for rel in chunk:
            try:
                with r.fs.open(f"{root}/{rel}", "rb") as f:
                    blob = f.read(r.limits.max_record_bytes + 1)
            except OSError:
                blob = None
            if blob is not None and len(blob) > r.limits.max_record_bytes:
                raise r.limits.refuse("max_record_bytes", f"{root}/{rel}", "an image file")
            blobs.append(blob)
        labels = [rel.split("/")[0] if "/" in rel else None for rel in chunk]
        yield pa.RecordBatch.from_pydict(
            {"path": pa.array(chunk, pa.string()), "image": pa.array(blobs, pa.binary()), "label": pa.array(labels)}
        )


# --- .npy -------------------------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"
_NPY_KINDS = frozenset("biufcSUV?")  # no objects: allow_pickle is never an option here


@dataclass(frozen=True)
class NpyHeader:
    """A validated .npy header: dtype, shape and where the data starts."""

    dtype: Any
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int


def read_npy_header(data_head: bytes, size: int, where: str, limits: Limits) -> NpyHeader:
    """Parse and validate a .npy header without numpy's loader: bounded header, literal dict, no object
    dtype, a shape of non-negative ints whose data fits the limit and the file."""
    import numpy as np

    def bad(why: str) -> InputError:
        return InputError(f"{where}: not a valid .npy file: {why}", advice="Write it with numpy.save.")

    if not data_head.startswith(_NPY_MAGIC) or len(data_head) < 10:
        raise bad("no .npy magic")
    major = data_head[6]
    if major == 1:
        hlen, start = int.from_bytes(data_head[8:10], "little"), 10
    elif major in (2, 3):
        if len(data_head) < 12:
            raise bad("truncated header")
        hlen, start = int.from_bytes(data_head[8:12], "little"), 12
    else:
        raise bad(f"unknown version {major}")
    if hlen > limits.max_npy_header_bytes:
        raise limits.refuse("max_npy_header_bytes", where, f"a .npy header of {hlen:,} bytes")
    raw = data_head[start : start + hlen]
    if len(raw) < hlen:
        raise bad("truncated header")
    try:
        header = ast.literal_eval(raw.decode("latin-1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise bad("the header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise bad("the header must be a dict of descr, fortran_order and shape")
    descr, order, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not isinstance(order, bool) or not isinstance(shape, tuple):
        raise bad("descr must be a string, fortran_order a bool, shape a tuple")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise bad("the shape must be non-negative integers")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, MemoryError):
        raise bad(f"unknown dtype {descr[:40]!r}") from None
    if dtype.kind not in _NPY_KINDS or dtype.hasobject or dtype.fields is not None:
        raise bad(f"dtype {descr[:40]!r} is not a plain numeric or string type")
    if dtype.itemsize > limits.max_record_bytes:
        raise limits.refuse("max_record_bytes", where, f"a .npy item of {dtype.itemsize:,} bytes")
    count = math.prod(shape)
    declared = count * dtype.itemsize
    if declared > limits.max_npy_bytes:
        raise limits.refuse("max_npy_bytes", where, f"a .npy array of {declared:,} bytes")
    if len(shape) >= 2 and math.prod(shape[1:]) > limits.max_columns:
        raise limits.refuse("max_columns", where, f"a .npy row of {math.prod(shape[1:]):,} values")
    offset = start + hlen
    if size - offset < declared:
        raise bad(f"the header declares {declared:,} bytes of data, the file holds {max(0, size - offset):,}")
    return NpyHeader(dtype, tuple(shape), order, offset)


def load_npy(path: str, fs: Any = None, limits: Limits | None = None) -> Any:
    """A .npy file as a numpy array, validated first (never pickles; bounded by the limits). A 0-d array
    is one record: it comes back with shape ``(1,)``."""
    import numpy as np

    fs = filesystem(fs)
    lim = limits or current()
    r = Reader(path, fs, lim, "strict", ReadStats())
    with r.open() as f:
        head = f.read(16 + lim.max_npy_header_bytes)
        size = fs.size(path)
        hdr = read_npy_header(head, int(size), path, lim)
        f.seek(hdr.offset)
        count = math.prod(hdr.shape)
        body = f.read(count * hdr.dtype.itemsize)
    arr = np.frombuffer(body, dtype=hdr.dtype, count=count)
    arr = arr.reshape(hdr.shape, order="F" if hdr.fortran_order else "C")
    return arr.reshape(1) if arr.ndim == 0 else arr


def read_npy(r: Reader) -> Iterator[pa.RecordBatch]:
    """A .npy array: one record per row of the first axis; 1-d is column ``value``, higher dimensions
    are columns ``c0..cN`` of the flattened row."""
    import numpy as np

    arr = load_npy(r.path, r.fs, r.limits)
    rows = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr
    for start in range(0, max(1, len(rows)), BATCH_ROWS):
        part = np.ascontiguousarray(rows[start : start + BATCH_ROWS])
        if len(part) == 0:
            return
        if part.ndim == 1:
            yield pa.RecordBatch.from_arrays([pa.array(part)], names=["value"])
        else:
            yield pa.RecordBatch.from_arrays(
                [pa.array(part[:, j]) for j in range(part.shape[1])], names=[f"c{j}" for j in range(part.shape[1])]
            )


_READERS: dict[str, Callable[[Reader], Iterator[pa.RecordBatch]]] = {
    "csv": read_csv,
    "tsv": lambda r: read_csv(r, "\t"),
    "jsonl": read_jsonl,
    "json": read_json,
    "parquet": read_parquet,
    "arrow": read_arrow,
    "text": read_text,
    "images": read_images,
    "npy": read_npy,
}


def data_files(path: str, fmt: str | None = None, fs: Any = None) -> list[str]:
    """Data files under a directory, in name order (metadata and text files excluded), of ``fmt`` if given."""
    fs = filesystem(fs)
    out = []
    for p in sorted(str(x) for x in fs.find(path)):
        if is_metadata(p):
            continue
        found = SUFFIX_FORMAT.get(PurePosixPath(p).suffix.lower())
        if found is None or found == "text":
            continue
        if fmt is None or found == fmt:
            out.append(p)
    return out


def read(
    path: str,
    fmt: str | None = None,
    *,
    fs: Any = None,
    limits: Limits | None = None,
    errors: str = "strict",
    stats: ReadStats | None = None,
    max_rows: int = BATCH_ROWS,
    on_dictionary: Callable[[pa.Array, pa.DictionaryArray], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches of the file (or data directory, or image folder) at ``path``, in record order.

    ``fmt`` defaults to :func:`~dataward.records.sniff.sniff`; ``errors`` is ``"strict"`` or ``"replace"``
    (see the module docstring); no batch holds more than ``max_rows`` rows. With ``on_dictionary``, string
    columns a Parquet file stores dictionary-encoded are read as dictionaries and decoded to the same plain
    strings, and the hook gets each (plain, dictionary) pair, so a caller can reuse the encoding."""
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors={errors!r}")
    fs = filesystem(fs)
    path = str(path)
    fmt = canonical_format(fmt) if fmt else sniff(path, fs)
    lim = limits or current()
    st = stats if stats is not None else ReadStats()
    if fmt != "images" and fs.isdir(path):
        files = data_files(path, fmt, fs)
        if not files:
            raise InputError(f"{path}: no {fmt} files in this directory")
    elif not fs.exists(path):
        raise InputError(f"{path}: no such file or directory", advice="Check the path.")
    else:
        files = [path]
    for one in files:
        for batch in _READERS[fmt](Reader(one, fs, lim, errors, st, on_dictionary)):
            if batch.num_columns > lim.max_columns:
                raise lim.refuse("max_columns", one, f"{batch.num_columns:,} columns")
            if batch.num_rows > max_rows:
                for start in range(0, batch.num_rows, max_rows):
                    yield batch.slice(start, max_rows)
            else:
                yield batch


def read_table(path: str, fmt: str | None = None, **kwargs: Any) -> pa.Table:
    """All record batches of :func:`read` as one table (for callers that need the whole file)."""
    batches = list(read(path, fmt, **kwargs))
    if not batches:
        return pa.table({})
    try:
        return (
            pa.Table.from_batches(batches).combine_chunks()
            if len({b.schema for b in batches}) == 1
            else (pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive"))
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{path}: records do not share one schema: {str(exc).splitlines()[0]}") from None
