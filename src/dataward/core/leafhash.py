"""RFC 6962 leaf hashes and Merkle roots in bulk: one call per block of records, not one per record.

This is the batch API the record readers call (ADR 0029). Each function has two implementations with
byte-identical results:

- native: ``dataward.core._leafhash``, a small C extension with its own SHA-256 (x86 SHA extensions where
  the CPU has them) that releases the GIL and splits the work over the available cores (built by
  ``pip install``; optional);
- pure Python: hashlib, used when the extension is not built or ``DATAWARD_NATIVE_HASH=0`` is set.

``leaf = SHA-256(0x00 || record)``, ``node = SHA-256(0x01 || left || right)``; roots follow RFC 9162 2.1.1
exactly as :func:`dataward.core.merkle.root_from_leaf_hashes`. Pure: no file or network I/O.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from dataward.core import merkle

__all__ = [
    "NATIVE",
    "LineCheck",
    "available_threads",
    "entry_leaves",
    "leaf_hashes_concat",
    "leaf_hashes_offsets",
    "line_leaves",
    "line_leaves_checked",
    "merkle_root",
    "py_entry_leaves",
    "py_leaf_hashes_offsets",
    "py_line_leaves",
    "py_line_leaves_checked",
    "py_merkle_root",
]


def _load_native() -> ModuleType | None:
    if os.environ.get("DATAWARD_NATIVE_HASH", "1") == "0":
        return None
    try:
        from dataward.core import _leafhash  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _leafhash  # type: ignore[no-any-return]


_native = _load_native()
#: whether the native extension is in use (False: the pure-Python twin computes the same bytes)
NATIVE: bool = _native is not None


def available_threads() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _threads(threads: int | None) -> int:
    return available_threads() if threads is None else max(1, threads)


# ------------------------------------------------------------------------------------------ lines


def py_line_leaves(block: bytes, *, skip_header: bool = False) -> tuple[bytes, int, bool]:
    """Pure-Python :func:`line_leaves`."""
    sha = hashlib.sha256
    lines = block.split(b"\n")
    skipped = False
    start = 0
    if skip_header:
        for j, line in enumerate(lines):
            if line and line != b"\r":
                start, skipped = j + 1, True
                break
        else:
            return b"", 0, False
    out = []
    for line in lines[start:]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            out.append(sha(b"\x00" + line).digest())
    return b"".join(out), len(out), skipped


def line_leaves(block: bytes, *, skip_header: bool = False, threads: int | None = None) -> tuple[bytes, int, bool]:
    """Leaf hashes of the lines of ``block``, concatenated: ``(leaves, count, header_skipped)``.

    A line is the bytes up to ``\\n`` or the block's end with one trailing ``\\r`` dropped (CRLF folded to
    LF); empty lines are not records. With ``skip_header`` the first non-empty line is not a record either,
    and ``header_skipped`` says whether the block had one (an all-blank block leaves it for the next).
    A caller that streams a file passes blocks that end at a line end (without the ``\\n``).
    """
    if _native is None:
        return py_line_leaves(block, skip_header=skip_header)
    leaves, count, skipped = _native.line_leaves(block, skip_header, _threads(threads))
    return leaves, count, skipped


@dataclass(frozen=True)
class LineCheck:
    """What :func:`line_leaves_checked` found in a block of delimited lines: byte offsets into the block of the
    first record line (by line order) with invalid UTF-8, with another delimiter count than expected (and its
    count), and holding the quote byte or a CR that is not part of a CRLF (``-1``: none). Past a *not plain*
    line the leaves are partial: such a file is not read as plain lines."""

    bad_utf8: int
    bad_shape: int
    shape_got: int
    not_plain: int
    newlines: int  # LF bytes in the block (the caller's line numbering); partial past a not-plain line


def py_line_leaves_checked(
    block: bytes | memoryview, *, skip_header: bool, delimiter: int, ndelims: int, quote: int | None
) -> tuple[bytes, int, bool, LineCheck]:
    """Pure-Python :func:`line_leaves_checked`."""
    sha = hashlib.sha256
    lines = bytes(block).split(b"\n")
    pos = 0
    skipped = not skip_header
    header_skipped = False
    out: list[bytes] = []
    bad_utf8 = bad_shape = not_plain = -1
    shape_got = newlines = 0
    delim = bytes([delimiter])
    odd = (b"\r",) if quote is None else (b"\r", bytes([quote]))
    for raw in lines:
        at, pos = pos, pos + len(raw) + 1
        newlines += pos <= len(block)
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if not skipped:
            skipped = header_skipped = True
            continue
        if any(o in line for o in odd):
            not_plain = at
            newlines -= pos <= len(block)
            break
        if bad_utf8 < 0:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad_utf8 = at
        got = line.count(delim)
        if bad_shape < 0 and got != ndelims:
            bad_shape, shape_got = at, got
        out.append(sha(b"\x00" + line).digest())
    return b"".join(out), len(out), header_skipped, LineCheck(bad_utf8, bad_shape, shape_got, not_plain, newlines)


def line_leaves_checked(
    block: bytes | memoryview,
    *,
    skip_header: bool,
    delimiter: int,
    ndelims: int,
    quote: int | None,
    threads: int | None = None,
) -> tuple[bytes, int, bool, LineCheck]:
    """:func:`line_leaves` of a delimited file (CSV or TSV) that also checks, in the same pass, what makes
    its lines its records: every record line valid UTF-8, with ``ndelims`` delimiter bytes (the header's
    column count - 1), and free of the ``quote`` byte and of CRs other than a CRLF's (with neither, a CSV
    parser reads the same records as the lines). Returns ``(leaves, count, header_skipped, LineCheck)``."""
    if _native is None:
        return py_line_leaves_checked(block, skip_header=skip_header, delimiter=delimiter, ndelims=ndelims, quote=quote)
    leaves, count, skipped, bad_utf8, bad_shape, got, not_plain, newlines = _native.line_leaves_checked(
        block, skip_header, _threads(threads), delimiter, ndelims, -1 if quote is None else quote
    )
    return leaves, count, skipped, LineCheck(bad_utf8, bad_shape, got, not_plain, newlines)


# ------------------------------------------------------------------------------------- records


def py_leaf_hashes_offsets(data: bytes, offsets: Sequence[int]) -> bytes:
    """Pure-Python :func:`leaf_hashes_offsets`."""
    _check_offsets(len(data), offsets)
    cp = hashlib.sha256(b"\x00").copy
    view = memoryview(data)
    out = []
    for i in range(len(offsets) - 1):
        h = cp()
        h.update(view[offsets[i] : offsets[i + 1]])
        out.append(h.digest())
    return b"".join(out)


def _check_offsets(size: int, offsets: Sequence[int]) -> None:
    if len(offsets) < 1:
        raise ValueError("offsets must hold n + 1 int64 values")
    prev = offsets[0]
    if prev < 0:
        raise ValueError(f"offsets[0] = {prev} is negative")
    for i in range(1, len(offsets)):
        cur = offsets[i]
        if cur < prev or cur > size:
            raise ValueError(f"offsets[{i - 1}..{i}] = {prev}..{cur} is not a range of the {size}-byte buffer")
        prev = cur


def leaf_hashes_offsets(data: bytes, offsets: Sequence[int], *, threads: int | None = None) -> bytes:
    """Leaf hashes of the records ``data[offsets[i]:offsets[i + 1]]``, concatenated (32 bytes each).

    This is the layout of an Arrow binary array (values buffer and offsets), so a reader can hash a column
    of canonical record bytes without making a Python object per record. ``offsets`` is any sequence of
    ints; a NumPy int64 array (or ``array('q')``) is passed to the native code without copying.
    """
    if _native is None:
        return py_leaf_hashes_offsets(data, offsets)
    import numpy as np

    offs = np.ascontiguousarray(offsets, dtype=np.int64)
    leaves: bytes = _native.leaf_hashes_offsets(data, offs, _threads(threads))
    return leaves


def leaf_hashes_concat(records: Sequence[bytes], *, threads: int | None = None) -> bytes:
    """Leaf hashes of ``records``, concatenated: ``b"".join(merkle.leaf_hashes(records))`` in one call."""
    if _native is None:
        return b"".join(merkle.leaf_hashes(records))
    import numpy as np

    offsets = np.zeros(len(records) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, records), dtype=np.int64, count=len(records)), out=offsets[1:])
    leaves: bytes = _native.leaf_hashes_offsets(b"".join(records), offsets, _threads(threads))
    return leaves


# ------------------------------------------------------------------------------- audit log entries


def py_entry_leaves(bodies: list[bytes], signatures: list[bytes]) -> bytes:
    """Pure-Python :func:`entry_leaves`."""
    if len(bodies) != len(signatures):
        raise ValueError("bodies and signatures must have the same length")
    sha, b64 = hashlib.sha256, base64.b64encode
    out = []
    for i, (body, sig) in enumerate(zip(bodies, signatures, strict=True)):
        if type(body) is not bytes or type(sig) is not bytes:
            raise TypeError(f"entry {i}: bodies and signatures must be bytes")
        out.append(sha(b'\x00{"entry":' + body + b',"signature":"' + b64(sig) + b'"}').digest())
    return b"".join(out)


def entry_leaves(bodies: list[bytes], signatures: list[bytes]) -> bytes:
    """The leaf hashes of audit log entries, concatenated (32 bytes each): entry ``i`` is the RFC 6962 leaf
    of ``{"entry":<bodies[i]>,"signature":"<base64 of signatures[i]>"}``, exactly
    ``dataward.log.auditlog.entry_leaf_hash(bodies[i], signatures[i])``. Both are lists of bytes (anything
    else raises TypeError) of the same length (ValueError)."""
    if _native is None:
        return py_entry_leaves(bodies, signatures)
    leaves: bytes = _native.entry_leaves(bodies, signatures)
    return leaves


# ----------------------------------------------------------------------------------------- roots


def py_merkle_root(leaves: bytes) -> bytes:
    """Pure-Python :func:`merkle_root`."""
    if len(leaves) % 32:
        raise ValueError("leaf hashes must be a multiple of 32 bytes")
    return merkle.root_from_leaf_hashes([leaves[i : i + 32] for i in range(0, len(leaves), 32)])


def merkle_root(leaves: bytes, *, threads: int | None = None) -> bytes:
    """RFC 6962 root of the tree over the 32-byte leaf hashes concatenated in ``leaves`` (empty: SHA-256 of b"")."""
    if _native is None:
        return py_merkle_root(leaves)
    root: bytes = _native.merkle_root(leaves, _threads(threads))
    return root
