"""Small helpers shared by the screening checks."""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def regex_mask(arr: pa.Array, pattern: str) -> np.ndarray:
    """Rows of a string array matching an RE2 ``pattern``; a column with few distinct values is matched
    through its dictionary (one regex run per distinct value instead of per row)."""
    n = len(arr)
    if n >= 4096:
        prefix = arr.slice(0, 2048)
        if pc.count_distinct(prefix).as_py() < 256:
            enc = pc.dictionary_encode(arr)
            if len(enc.dictionary) <= n // 8:
                hits = bool_mask(pc.match_substring_regex(enc.dictionary, pattern))
                if not hits.any():
                    return np.zeros(n, dtype=bool)
                idx = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
                return np.where(idx >= 0, hits[np.maximum(idx, 0)], False)
    return bool_mask(pc.match_substring_regex(arr, pattern))
