"""Record segmentation and record digests: the ADR 0002 leaf encodings, public.

A record's digest is its RFC 6962 leaf hash, SHA-256(0x00 || canonical record bytes), so record digests
are directly the leaves of the batch's Merkle tree. Canonical record bytes per format:

- ``text``, ``csv``, ``tsv``, ``jsonl`` (line formats; TSV has no quoting, as in IANA
  text/tab-separated-values): the record's bytes as delivered, CRLF folded to LF,
  without the final line terminator; blank lines are not records; a CSV/TSV header is not a record.
  CSV records whose quoted fields span lines keep their inner newlines (encoding ``csv-records``).
- ``parquet``: canonical JSON of the row as an object of column name -> value.
- anything else (images, binaries): the whole file is one record whose canonical bytes are its raw
  SHA-256 digest (the file is hashed once, not twice).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as _dt
import decimal
import hashlib
import io
import json
import math
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from dataward.core import leafhash, merkle
from dataward.core.canonical import canonical_json
from dataward.errors import InputError
from dataward.records.limits import Limits, current
from dataward.records.sniff import format_of_name

LINE_FORMATS = ("text", "csv", "tsv", "jsonl")
FORMATS = (*LINE_FORMATS, "parquet", "file")
CHUNK = 16 << 20
#: the plain-CSV reader's block: its buffer (two blocks) stays in the last-level cache between the read and
#: the native pass over it, and is quicker to allocate than two 16 MiB blocks (ADR 0078)
PLAIN_CHUNK = 4 << 20
#: from this size a regular file is mapped instead of read: the copy into a buffer was a third of the
#: plain-CSV path's CPU, a mapping costs one page fault per 16 pages (ADR 0095)
MAPPED_MIN = 8 << 20


def detect_format(name: str) -> str:
    """The acquisition format of a file name: a line format, ``parquet``, or ``file`` (one opaque record)."""
    fmt = format_of_name(PurePosixPath(name).name)
    return fmt if fmt in FORMATS else "file"


def leaf_hashes(records: list[bytes]) -> bytes:
    """The concatenated RFC 6962 leaf hashes of canonical record bytes, in order (the one place records are
    hashed, so a batch hasher can replace it)."""
    return leafhash.leaf_hashes_concat(records)


@dataclass(frozen=True)
class RecordDigests:
    """The Merkle leaf hashes of one file's records, in record order, with how the file was split into records."""

    format: str
    encoding: str  # lines | csv-records | parquet-rows | file
    leaves: bytes  # concatenated 32-byte leaf hashes, in record order
    warnings: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        """Number of records (leaf hashes)."""
        return len(self.leaves) // 32

    def leaf(self, i: int) -> bytes:
        """Leaf hash of record ``i`` (32 bytes)."""
        return self.leaves[32 * i : 32 * i + 32]

    def leaf_list(self) -> list[bytes]:
        """Every leaf hash as its own 32-byte value."""
        b = self.leaves
        return [b[i : i + 32] for i in range(0, len(b), 32)]

    def root(self) -> bytes:
        """Merkle root over the records' leaf hashes."""
        return leafhash.merkle_root(self.leaves)


def iter_lines(f: IO[bytes], name: str = "input", limits: Limits | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (line number of the first line, lines) per chunk; lines keep empties, CRLF folded.

    Memory is bounded by the chunk size plus ``limits.max_record_bytes``: a longer line is refused."""
    lim = limits or current()
    rest = b""
    lineno = 1
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        buf = rest + chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            rest = buf
            if len(rest) > lim.max_record_bytes:
                raise lim.refuse("max_record_bytes", f"{name} line {lineno}", f"a line of over {len(rest):,} bytes")
            continue
        block, rest = buf[:cut], buf[cut + 1 :]
        if block.endswith(b"\r"):  # the CR of a CRLF that ends this chunk's last line
            block = block[:-1]
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        lines = block.split(b"\n")
        if len(block) > lim.max_record_bytes:
            for i, line in enumerate(lines):
                if len(line) > lim.max_record_bytes:
                    raise lim.refuse("max_record_bytes", f"{name} line {lineno + i}", f"a line of {len(line):,} bytes")
        yield lineno, lines
        lineno += len(lines)
        if len(rest) > lim.max_record_bytes:
            raise lim.refuse("max_record_bytes", f"{name} line {lineno}", f"a line of over {len(rest):,} bytes")
    if rest:
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        yield lineno, [rest]


def _check_utf8(name: str, first_line: int, lines: list[bytes]) -> None:
    try:
        b"\n".join(lines).decode("utf-8")
    except UnicodeDecodeError as exc:
        for i, line in enumerate(lines):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"{name} line {first_line + i}: invalid UTF-8 at byte {e.start}",
                    advice="Re-encode the file as UTF-8, or acquire it with --format file (one opaque record).",
                ) from None
        raise InputError(f"{name}: invalid UTF-8 ({exc.reason})") from None


def _iter_blocks(f: IO[bytes], name: str = "input") -> Iterator[tuple[int, bytes]]:
    """Yield (line number of the first line, block) per chunk; a block ends at a line end (without its LF).

    A line longer than ``max_record_bytes`` is refused, so memory stays bounded by the limit."""
    lim = current()
    rest = b""
    lineno = 1
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        buf = rest + chunk if rest else chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            rest = buf
            if len(rest) > lim.max_record_bytes:
                raise lim.refuse("max_record_bytes", f"{name} line {lineno}", f"a line of over {len(rest):,} bytes")
            continue
        block, rest = buf[:cut], buf[cut + 1 :]
        if len(block) > lim.max_record_bytes:
            for i, line in enumerate(block.split(b"\n")):
                if len(line) > lim.max_record_bytes:
                    raise lim.refuse("max_record_bytes", f"{name} line {lineno + i}", f"a line of {len(line):,} bytes")
        yield lineno, block
        lineno += block.count(b"\n") + 1
        if len(rest) > lim.max_record_bytes:
            raise lim.refuse("max_record_bytes", f"{name} line {lineno}", f"a line of over {len(rest):,} bytes")
    if rest:
        yield lineno, rest


class _BlockReader:
    """:func:`_iter_blocks` without copies: blocks are read into one reused buffer and yielded as views,
    each valid until the next is asked for (for a consumer that hands the block to native code). The
    consumer advances :attr:`lineno` past each block (it counts the block's lines anyway), which names the
    line of a refused over-long record."""

    def __init__(self, f: IO[bytes], name: str, *, bounded: bool = True) -> None:
        self._f = f
        self._name = name
        # unbounded: a mapped file in as few blocks as the record limit allows (a consumer that keeps every
        # block's leaves anyway saves their copies); bounded: CHUNK at most, for a consumer that streams them
        self._bounded = bounded
        self.lineno = 1  # of the next block's first line

    def _too_long(self, size: int, line: int, over: bool) -> Exception:
        lim = current()
        return lim.refuse("max_record_bytes", f"{self._name} line {line}", f"a line of {'over ' * over}{size:,} bytes")

    def _capacity(self) -> int:
        """A buffer for the rest of the file plus one byte (so a small file is read at once and costs no
        big buffer), at most two chunks."""
        f = self._f
        try:
            pos = f.tell()
            size = f.seek(0, os.SEEK_END)
            f.seek(pos)
        except (OSError, AttributeError, ValueError):
            return 2 * PLAIN_CHUNK
        return max(1, min(2 * PLAIN_CHUNK, size - pos + 1))

    def _mapping(self) -> mmap.mmap | None:
        """A read-only mapping of a regular file big enough to pay for it, or None (read it instead)."""
        try:
            fd = self._f.fileno()
            st = os.fstat(fd)
            pos = self._f.tell()
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size - pos < MAPPED_MIN or current().max_record_bytes < CHUNK:
            return None
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        if hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_SEQUENTIAL)
        return mapped

    def _mapped_blocks(self, mapped: mmap.mmap) -> Iterator[memoryview]:
        """The blocks as views of the mapping (no copy: the native pass reads the page cache). Every block
        but the last ends at an LF (not included). A window holds an LF unless a line is longer than it; then
        the line's end is searched for up to the record limit, and a line over the limit is refused."""
        lim = current()
        # lines of a window that ends at an LF are within the limit; a longer window holds longer lines
        window = CHUNK if self._bounded else max(CHUNK, lim.max_record_bytes + 1)
        start, end = self._f.tell(), len(mapped)
        with memoryview(mapped) as whole:
            while start < end:
                stop = min(start + window, end)
                cut = mapped.rfind(b"\n", start, stop)
                if cut < 0:  # a line longer than the window: searched no further than the limit allows
                    bound = min(end, start + lim.max_record_bytes + 1)
                    nl = mapped.find(b"\n", stop, bound)
                    cut = end if nl < 0 else nl
                    if cut - start > lim.max_record_bytes:
                        raise self._too_long(lim.max_record_bytes, self.lineno, True)
                    cut = min(cut, end)
                with whole[start:cut] as view:
                    yield view
                start = cut + 1
        self._f.seek(end)

    def __iter__(self) -> Iterator[memoryview]:
        mapped = self._mapping()
        if mapped is not None:
            try:
                yield from self._mapped_blocks(mapped)
            finally:
                with contextlib.suppress(BufferError):  # a consumer still holds a view: it goes with the last
                    mapped.close()
            return
        lim = current()
        buf = bytearray(self._capacity())
        have = 0  # a line carried over from the previous read, at buf[:have]
        while True:
            if have == len(buf):  # a long line: a larger buffer (earlier views stay valid on the old one)
                bigger = bytearray(have + 2 * PLAIN_CHUNK)
                bigger[:have] = buf[:have]
                buf = bigger
            n = self._f.readinto(memoryview(buf)[have:])  # type: ignore[attr-defined]
            if not n:
                break
            end = have + n
            cut = buf.rfind(b"\n", 0, end)
            if cut < 0:
                have = end
                if have > lim.max_record_bytes:
                    raise self._too_long(have, self.lineno, True)
                continue
            if cut > lim.max_record_bytes:
                for i, line in enumerate(bytes(buf[:cut]).split(b"\n")):
                    if len(line) > lim.max_record_bytes:
                        raise self._too_long(len(line), self.lineno + i, False)
            yield memoryview(buf)[:cut]
            have = end - cut - 1
            buf[:have] = buf[cut + 1 : end]
            if have > lim.max_record_bytes:
                raise self._too_long(have, self.lineno, True)
        if have:
            yield memoryview(buf)[:have]


def _check_utf8_block(name: str, first_line: int, block: bytes) -> None:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        _check_utf8(name, first_line, block.replace(b"\r\n", b"\n").split(b"\n"))


def line_leaves(f: IO[bytes], name: str, *, skip_header: bool, strict: bool) -> tuple[bytes, int]:
    """Leaf hashes of the non-blank lines of ``f``; returns (leaves, number of data lines).

    One :func:`dataward.core.leafhash.line_leaves` call per 16 MiB block (native code on all cores)."""
    out: list[bytes] = []
    count = 0
    header_pending = skip_header
    for first, block in _iter_blocks(f, name):
        if strict:
            _check_utf8_block(name, first, block)
        leaves, n, skipped = leafhash.line_leaves(block, skip_header=header_pending)
        header_pending = header_pending and not skipped
        out.append(leaves)
        count += n
    return b"".join(out), count


def _header_columns(text: str, delimiter: str, name: str) -> list[str]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        parsed = (
            csv.reader([text], delimiter=delimiter)
            if delimiter == ","
            else csv.reader([text], delimiter=delimiter, quoting=csv.QUOTE_NONE)
        )
        columns = next(parsed, [])
    except csv.Error as exc:
        raise InputError(f"{name} line 1: malformed {kind} header: {exc}".split(" - ")[0]) from None
    lim = current()
    if len(columns) > lim.max_columns:
        raise lim.refuse("max_columns", f"{name} line 1", f"a header of {len(columns):,} columns")
    seen: dict[str, int] = {}
    for i, col in enumerate(columns):
        if col in seen and col != "":
            raise InputError(
                f"{name} line 1: column {col!r} appears twice (columns {seen[col] + 1} and {i + 1})",
                advice="Give every column a distinct name, then deliver the file again.",
            )
        seen[col] = i
    return columns


def csv_row_count(f: Any, name: str, delimiter: str) -> int:
    """Rows of a CSV/TSV by Arrow's parser (validation of shape and UTF-8). Every column is read as a string:
    this validates structure, not types (a value unlike its column's first block is not malformed)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    kind = "TSV" if delimiter == "\t" else "CSV"
    header = b""
    while not header.strip():  # blank lines before the header are not records either
        header = f.readline(1 << 20)
        if not header:
            return 0  # an empty delivery is a recorded warning, not a parse error
    try:
        text = header.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputError(f"{name} line 1: invalid UTF-8 in the header") from None
    if "\r" in text and delimiter == ",":
        raise _cr_only(name)
    columns = _header_columns(text, delimiter, name)
    names = [f"c{i}" for i in range(max(1, len(columns)))]
    try:
        reader = pacsv.open_csv(
            f,
            # a block must hold the longest record (a straddling record is an error in Arrow)
            read_options=pacsv.ReadOptions(block_size=max(8 << 20, current().max_record_bytes + 1), column_names=names),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=delimiter == ",", quote_char='"' if delimiter == "," else False
            ),
            convert_options=pacsv.ConvertOptions(
                check_utf8=True, column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
        n = 0
        for rb in reader:
            n += rb.num_rows
        return n
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0]
        if msg.startswith("Empty CSV file"):
            return 0
        if "straddling" in msg:
            lim = current()
            raise lim.refuse("max_record_bytes", name, "a CSV record") from None
        raise InputError(f"{name}: malformed {kind}: {msg}") from None


def _plain_columns(open_file: Any, name: str, delimiter: str) -> int | None:
    """The header's column count when the file may be plain lines (a header free of quotes and CRs, the
    same line for both readings of the header); None: parse it as CSV."""
    with open_file() as f:
        for _ in range(1 << 16):
            raw = f.readline(1 << 20)
            if not raw or (len(raw) == 1 << 20 and not raw.endswith(b"\n")):
                return None  # empty, or a huge header: the CSV parser decides
            body = raw[:-1] if raw.endswith(b"\n") else raw
            line = body[:-1] if body.endswith(b"\r") else body  # a line as line_leaves reads it
            if line:
                break
        else:
            return None
    if not line.strip() or b"\r" in line or (delimiter == "," and b'"' in line):
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return len(_header_columns(text, delimiter, name))


def plain_line_leaves(
    open_file: Any, name: str, delimiter: str, sink: Callable[[bytes], object] | None = None
) -> tuple[bytes, int] | None:
    """Validated records of a CSV/TSV whose records are its lines, in one native pass per block.

    With ``sink``, each block's leaves are passed to it as they come (in order) and the leaves returned are
    empty: no buffer of the whole range's leaves is made. A caller must discard what the sink received when
    the result is None or an error is raised.

    When no line holds a quote (CSV) or a CR outside a CRLF, a CSV parser's records are exactly the
    non-blank lines after the header, so shape (a delimiter count per line equal to the header's) and
    UTF-8 are checked while the lines are hashed, without a CSV parser. Returns (leaves, count), or None
    when the file is not plain (the caller parses it as CSV). As on the parser's path, an invalid UTF-8
    line anywhere is reported before a line of the wrong shape."""
    ncols = _plain_columns(open_file, name, delimiter)
    if ncols is None:
        return None
    kind = "TSV" if delimiter == "\t" else "CSV"
    quote = ord('"') if delimiter == "," else None
    out: list[bytes] = []
    count = 0
    header_pending = True
    shape: tuple[int, int] | None = None
    with open_file() as f:
        reader = _BlockReader(f, name, bounded=sink is not None)
        for view in reader:
            first = reader.lineno
            leaves, n, skipped, chk = leafhash.line_leaves_checked(
                view, skip_header=header_pending, delimiter=ord(delimiter), ndelims=ncols - 1, quote=quote
            )
            if chk.not_plain >= 0:
                return None
            if chk.bad_utf8 >= 0:
                block = bytes(view)
                _check_utf8_block(name, first, block)
                line = first + block.count(b"\n", 0, chk.bad_utf8)
                raise InputError(f"{name} line {line}: invalid UTF-8")
            if chk.bad_shape >= 0 and shape is None:
                shape = (first + bytes(view[: chk.bad_shape]).count(b"\n"), chk.shape_got + 1)
            reader.lineno += chk.newlines + 1  # a block ends at a line end, without its LF
            header_pending = header_pending and not skipped
            if sink is None:
                out.append(leaves)
            else:
                sink(leaves)
            count += n
    if shape is not None:
        raise InputError(f"{name}: malformed {kind}: line {shape[0]}: expected {ncols} columns, got {shape[1]}")
    return b"".join(out), count


def _cr_only(name: str) -> InputError:
    return InputError(
        f"{name}: lines end in CR only (classic Mac OS line endings), which no line format reads as records",
        advice="Convert the line endings to LF (e.g. `tr '\\r' '\\n' < IN > OUT`) and deliver the file again.",
    )


def csv_record_leaves(f: IO[bytes], name: str, delimiter: str) -> bytes:
    """Records of a CSV whose quoted fields may span lines: exact raw bytes of each record."""
    lim = current()
    csv.field_size_limit(max(csv.field_size_limit(), lim.max_record_bytes))
    raw = f.read().replace(b"\r\n", b"\n")
    physical = raw.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: invalid UTF-8 at byte {exc.start}") from None
    text = io.StringIO(decoded, newline="")
    reader = csv.reader(text, delimiter=delimiter)
    records: list[bytes] = []
    prev = 0
    header = True
    try:
        for row in reader:
            start, prev = prev, reader.line_num
            if not row:
                continue
            if header:
                header = False
                continue
            records.append(b"\n".join(physical[start:prev]))
    except csv.Error as exc:
        raise InputError(f"{name} line {reader.line_num}: malformed CSV: {exc}".split(" - ")[0]) from None
    return leaf_hashes(records)


def jsonable(v: Any) -> Any:
    """A Parquet/Arrow value as a JSON value (ADR 0002: bytes as base64 objects, non-finite floats as strings)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, bytes):
        return {"$base64": base64.b64encode(v).decode("ascii")}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, (decimal.Decimal, _dt.timedelta)):
        return str(v)
    return v


def parquet_leaves(f: IO[bytes], name: str) -> bytes:
    """Concatenated leaf hashes of a Parquet file's rows, each row as canonical JSON; raises
    :class:`InputError` naming ``name`` if the file is unreadable or its column names are unusable.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: list[bytes] = []
    try:
        pf = pq.ParquetFile(f)
        check_column_names(pf.schema_arrow.names, name)
        for rb in pf.iter_batches(batch_size=65536):
            out.append(leaf_hashes([canonical_json(jsonable(row)) for row in rb.to_pylist()]))
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{name}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    return b"".join(out)


def check_column_names(names: list[str], name: str) -> None:
    """Refuse a table whose columns exceed the limit or repeat a name (a row would be ambiguous)."""
    lim = current()
    if len(names) > lim.max_columns:
        raise lim.refuse("max_columns", name, f"a table of {len(names):,} columns")
    seen: set[str] = set()
    for col in names:
        if col in seen:
            raise InputError(
                f"{name}: column {col!r} appears more than once",
                advice="Give every column a distinct name, then deliver the file again.",
            )
        seen.add(col)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(line: bytes) -> int:
    """Nesting depth of one JSON text (brackets outside strings), in linear time and without recursion."""
    if line.count(b"[") + line.count(b"{") == 0:
        return 0
    import numpy as np

    bare = _JSON_STRING.sub(b'""', line) if b'"' in line else line
    arr = np.frombuffer(bare, dtype=np.uint8)
    step = (np.isin(arr, (0x5B, 0x7B)).astype(np.int32)) - (np.isin(arr, (0x5D, 0x7D)).astype(np.int32))
    return int(np.cumsum(step).max(initial=0))


def loads_record(line: bytes | str, where: str, limits: Limits | None = None) -> Any:
    """Parse one JSON record, refusing nesting deeper than ``limits.max_depth`` before the parser recurses."""
    lim = limits or current()
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if raw.count(b"[") + raw.count(b"{") > lim.max_depth and json_depth(raw) > lim.max_depth:
        raise lim.refuse("max_depth", where, "JSON nesting")
    try:
        return json.loads(line)
    except RecursionError:
        raise lim.refuse("max_depth", where, "JSON nesting") from None


def check_jsonl(f: IO[bytes], name: str) -> None:
    """Refuse the first line of ``f`` that is not one JSON value (or nests deeper than the limit)."""
    lim = current()
    for first, lines in iter_lines(f, name, lim):
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                loads_record(line, f"{name} line {first + i}", lim)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{name} line {first + i}: malformed JSON: {exc}") from None


def file_leaf(sha256_hex: str) -> bytes:
    """The one leaf of an opaque file: the leaf hash of its raw SHA-256 digest."""
    return merkle.leaf_hash(bytes.fromhex(sha256_hex))


def implied_leaf_list(file_sha256: str, records_digest: str) -> bytes | None:
    """The record-digest list named ``records_digest`` when the file's own SHA-256 determines it (an opaque
    file: its one leaf is :func:`file_leaf`), else None: then the list is a stored ``meta`` object.

    Acquisition stores no object for such a list (ADR 0100); a reader takes it from here. It is returned only
    when its SHA-256 is ``records_digest``, the same check a reader makes of a stored list, so it is exactly
    the list the signed manifest names."""
    try:
        leaf = file_leaf(file_sha256)
    except (TypeError, ValueError):  # not a SHA-256 hex digest: nothing implied
        return None
    return leaf if hashlib.sha256(leaf).hexdigest() == records_digest else None


def leaf_list(objects: Any, file_sha256: str, records_digest: str, *, verify: bool = True) -> bytes:
    """A file's record-digest list: implied by its SHA-256 for an opaque file (:func:`implied_leaf_list`),
    else the ``meta`` object ``records_digest`` of the object store ``objects`` (re-hashed with ``verify``)."""
    implied = implied_leaf_list(file_sha256, records_digest)
    if implied is not None:
        return implied
    return bytes(objects.read_bytes("meta", records_digest, verify=verify))


def record_digests(
    open_file: Any, name: str, fmt: str, *, file_sha256: str, strict: bool = True, encoding: str | None = None
) -> RecordDigests:
    """Compute record leaves. ``open_file()`` returns a fresh binary file object each call.

    ``strict`` (acquisition) validates UTF-8, CSV shape and JSON; verification passes ``strict=False``
    with the ``encoding`` recorded in the manifest, so that tampered bytes still yield per-record results.
    """
    if fmt not in FORMATS:
        raise InputError(f"{name}: unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "file":
        return RecordDigests(fmt, "file", file_leaf(file_sha256))
    if fmt == "parquet":
        with open_file() as f:
            return RecordDigests(fmt, "parquet-rows", parquet_leaves(f, name))
    warnings: list[str] = []
    if strict:
        with open_file() as f:
            head = f.read(1 << 20)
        if b"\r" in head and b"\n" not in head and fmt in ("csv", "tsv", "jsonl"):
            raise _cr_only(name)
    if fmt == "jsonl" and strict:
        with open_file() as f:
            check_jsonl(f, name)
    skip_header = fmt in ("csv", "tsv")
    if encoding == "csv-records" and not strict:
        with open_file() as f:
            return RecordDigests(fmt, "csv-records", csv_record_leaves(f, name, "\t" if fmt == "tsv" else ","))
    plain = None
    if skip_header and strict:
        plain = plain_line_leaves(open_file, name, "\t" if fmt == "tsv" else ",")
    if plain is not None:
        leaves, n = plain
    elif skip_header and strict:
        # Arrow's CSV parse (validation and row count) releases the GIL: it runs in a thread beside the
        # line hashing; a line's error (invalid UTF-8) still takes precedence over a CSV parse error.
        delim = "\t" if fmt == "tsv" else ","

        def count_rows() -> int:
            with open_file() as f:
                return csv_row_count(f, name, delim)

        with ThreadPoolExecutor(1) as pool:
            counted = pool.submit(count_rows)
            try:
                with open_file() as f:
                    leaves, n = line_leaves(f, name, skip_header=skip_header, strict=strict)
            except BaseException:
                counted.cancel()
                raise
            rows = counted.result()
        if rows != n:
            # quoted fields span lines: segment by CSV records instead of physical lines
            with open_file() as f:
                leaves = csv_record_leaves(f, name, delim)
            if len(leaves) // 32 != rows:
                raise InputError(f"{name}: CSV record count is ambiguous ({rows} by Arrow, {len(leaves) // 32} by csv)")
            return RecordDigests(fmt, "csv-records", leaves, tuple(warnings))
    else:
        with open_file() as f:
            leaves, n = line_leaves(f, name, skip_header=skip_header, strict=strict)
    if n == 0:
        warnings.append(f"{name}: no records")
    return RecordDigests(fmt, "lines", leaves, tuple(warnings))
