"""Small helpers shared by the screening checks."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.screen.interface import MAX_RECORDS, Severity


def share_severity(share: float, *, high: float = 0.01, medium: float = 0.001) -> Severity:
    if share >= high:
        return Severity.HIGH
    if share >= medium:
        return Severity.MEDIUM
    return Severity.LOW


class RecordSink:
    """Collects up to ``cap`` record positions and the full count."""

    __slots__ = ("cap", "count", "records")

    def __init__(self, cap: int = MAX_RECORDS) -> None:
        self.cap = cap
        self.count = 0
        self.records: list[int] = []

    def add_mask(self, mask: np.ndarray, offset: int) -> None:
        hits = int(np.count_nonzero(mask))
        if not hits:
            return
        self.count += hits
        room = self.cap - len(self.records)
        if room > 0:
            idx = np.flatnonzero(mask)[:room]
            self.records.extend(int(i) + offset for i in idx)

    def add(self, index: int) -> None:
        self.count += 1
        if len(self.records) < self.cap:
            self.records.append(index)

    def extend(self, indices: Iterable[int]) -> None:
        for i in indices:
            self.add(i)

    @property
    def tuple(self) -> tuple[int, ...]:
        return tuple(sorted(self.records))


def bool_mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean pyarrow array (nulls = False) as a numpy mask."""
    filled = pc.fill_null(arr, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def as_float(arr: pa.Array) -> np.ndarray:
    """A numeric array as float64 with nulls as NaN."""
    if pa.types.is_decimal(arr.type) or not pa.types.is_floating(arr.type):
        arr = pc.cast(arr, pa.float64(), safe=False)
    if not arr.null_count:  # a float64 array without nulls is viewed, not copied (read-only)
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def is_string(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


def is_numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ))


def binom_z(observed: int, n: int, p: float) -> float:
    """How many standard deviations ``observed`` of ``n`` lies above the expectation under share ``p``."""
    if n <= 0:
        return 0.0
    p = min(max(p, 1.0 / (n + 1)), 1.0)
    sd = math.sqrt(max(n * p * (1 - p), 1e-12))
    return (observed - n * p) / sd


def fmt_share(share: float) -> str:
    return f"{100 * share:.2f}%"


def short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Encoded:
    """A string array's distinct values (first-occurrence order, nulls excluded), each row's index into them
    (-1 for a null; a signed integer array, read-only when it is a Parquet column's own codes) and each
    distinct value's count."""

    __slots__ = ("counts", "dictionary", "indices")

    def __init__(self, dictionary: pa.Array, indices: np.ndarray) -> None:
        self.dictionary = dictionary
        self.indices = indices
        valid = indices[indices >= 0] if (indices < 0).any() else indices
        self.counts = np.bincount(valid, minlength=len(dictionary)).astype(np.int64)

    def gather(self, per_value: np.ndarray, null: Any) -> np.ndarray:
        """``per_value[index]`` for each row, ``null`` for the null rows."""
        if not len(per_value):
            return np.full(self.indices.size, null, dtype=per_value.dtype)
        out = per_value[np.maximum(self.indices, 0)]
        if self.indices.size and self.indices.min() < 0:
            out[self.indices < 0] = null
        return np.asarray(out)


# The checks of one batch (and the batch's profile) all look at the same string columns; each used to hash
# them again (value counts, format, PII, text signals, duplicates, never-seen values). One encoding per
# array, keyed by its buffers and held with the array (so the buffers cannot be reused while cached);
# bounded by the bytes of the arrays and encodings held (32 MiB), so memory stays a few batches' worth.
_ENCODED: dict[tuple[int, ...], tuple[pa.Array, Encoded]] = {}
_ENCODED_MAX_BYTES = 32 << 20
_ENCODED_MAX = 64
_ENCODED_LOCK = threading.Lock()


def _buffers_key(arr: pa.Array) -> tuple[int, ...] | None:
    bufs = arr.buffers()
    if len(bufs) < 3 or bufs[1] is None or bufs[2] is None:
        return None
    return (bufs[0].address if bufs[0] is not None else 0, bufs[1].address, bufs[2].address, arr.offset, len(arr))


def few_distinct(arr: pa.Array) -> bool:
    """Whether a string array of 4096 rows or more looks like few distinct values (under 256 in its first
    2048 rows): then work on its distinct values pays."""
    if len(arr) < 4096:
        return False
    key = _buffers_key(arr)
    hit = _ENCODED.get(key) if key is not None else None  # one look-up: another thread may evict meanwhile
    if hit is not None:
        return len(hit[1].dictionary) <= len(arr) // 8
    return bool(pc.count_distinct(arr.slice(0, 2048)).as_py() < 256)


def _held(arr: pa.Array, enc: Encoded) -> int:
    return int(arr.nbytes + enc.dictionary.nbytes + enc.indices.nbytes + enc.counts.nbytes)


def encoded(arr: pa.Array) -> Encoded:
    """The :class:`Encoded` form of a string array, computed once while the array is recent."""
    key = _buffers_key(arr)
    if key is not None:
        hit = _ENCODED.get(key)
        if hit is not None:
            return hit[1]
    enc = pc.dictionary_encode(arr)
    idx = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    out = Encoded(enc.dictionary, idx)
    if key is not None:
        _remember(arr, key, out)
    return out


def _remember(arr: pa.Array, key: tuple[int, ...], enc: Encoded) -> None:
    with _ENCODED_LOCK:
        _ENCODED[key] = (arr, enc)
        held = sum(_held(a, e) for a, e in _ENCODED.values())
        while _ENCODED and (held > _ENCODED_MAX_BYTES or len(_ENCODED) > _ENCODED_MAX):
            held -= _held(*_ENCODED.pop(next(iter(_ENCODED))))


def seed_encoded(arr: pa.Array, dictionary: pa.DictionaryArray) -> bool:
    """Remember the :class:`Encoded` form of the string array ``arr`` from ``dictionary``, the dictionary
    array it was decoded from (a Parquet column read as one), so that :func:`encoded` does not hash it again.

    The result must be what :func:`encoded` computes: the distinct values in first-occurrence order. The
    dictionary's codes are put in the order they first occur in the batch (Arrow's ``unique`` keeps first
    occurrences) and unused entries dropped; a dictionary with a null or a repeated value, or one not
    smaller than the batch, is not used (returns False) and the array is hashed when first asked for."""
    key = _buffers_key(arr)
    values, codes = dictionary.dictionary, dictionary.indices
    if key is None or len(arr) != len(codes) or len(values) > max(len(arr) // 4, 1) or values.null_count:
        return False
    first = pc.unique(codes)
    if first.null_count:
        first = pc.drop_null(first)
    perm = np.asarray(first.to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = values.take(pa.array(perm))
    if len(pc.unique(distinct)) != len(distinct):
        return False
    if (
        not codes.null_count
        and pa.types.is_signed_integer(codes.type)
        and perm.size == len(values)
        and np.array_equal(perm, np.arange(perm.size))
    ):
        # the usual Parquet dictionary: already in first-occurrence order, every entry used, no null; its
        # codes are the indices as they are (int32, read-only: no copy, held with the array)
        _remember(arr, key, Encoded(distinct, codes.to_numpy(zero_copy_only=False)))
        return True
    remap = np.full(len(values), -1, dtype=np.int64)
    remap[perm] = np.arange(perm.size, dtype=np.int64)
    raw = np.asarray(pc.fill_null(codes, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    idx = remap[raw] if raw.size else np.zeros(0, dtype=np.int64)
    if codes.null_count:
        idx[np.asarray(pc.is_null(codes).to_numpy(zero_copy_only=False), dtype=bool)] = -1
    _remember(arr, key, Encoded(distinct, idx))
    return True


def regex_mask(arr: pa.Array, pattern: str) -> np.ndarray:
    """Rows of a string array matching an RE2 ``pattern``; a column with few distinct values is matched
    through its dictionary (one regex run per distinct value instead of per row)."""
    n = len(arr)
    if few_distinct(arr):
        enc = encoded(arr)
        if len(enc.dictionary) <= n // 8:
            hits = bool_mask(pc.match_substring_regex(enc.dictionary, pattern))
            if not hits.any():
                return np.zeros(n, dtype=bool)
            return enc.gather(hits, False)
    return bool_mask(pc.match_substring_regex(arr, pattern))
