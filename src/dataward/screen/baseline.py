"""Baselines: mergeable profiles of trusted data.

A :class:`Profile` is built by streaming record batches through a :class:`ProfileBuilder`. Every part of
it merges exactly or with a stated bound, so profiles can be computed per partition (e.g. on Dask) and
combined with :meth:`Profile.merge`:

* counts, nulls, NaN/inf counts, min/max: exact; mean and variance: Chan's parallel formula;
* quantiles: a bottom-k row sample (each row gets a pseudo-random priority from the partition key and its
  position; the k smallest priorities are kept; the bottom-k of a union is the bottom-k of the parts);
* value sets and frequencies, string lengths, character classes, string shapes, label and group x label
  counts: exact counts while a column has at most ``max_values`` distinct values, then flagged overflowing
  (rules that need an exact value set are not applied to overflowing columns);
* text tokens: the most frequent ``max_tokens`` tokens with an upper bound on the count of any dropped one.

A :class:`Baseline` wraps a finalised profile with where it came from; it serialises to canonical JSON.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.core.canonical import canonical_json, sha256_hex
from dataward.screen._util import encoded
from dataward.screen.interface import ScreenError

FORMAT = "dataward.baseline/v1"
DEFAULT_SAMPLE = 10_000
DEFAULT_MAX_VALUES = 1000
DEFAULT_MAX_TOKENS = 20_000
MAX_SHAPES = 200
TOKEN_SPLIT = r"[^\pL\pN_]+"  # noqa: S105 - a regex, not a secret
CHAR_CLASSES = {
    "upper": r"[A-Z]",
    "lower": r"[a-z]",
    "digit": r"[0-9]",
    "space": r"\s",
    "punct": r"[!-/:-@\[-`{-~]",
    "non_ascii": r"[^\x00-\x7f]",
    "control": r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",
}
_SHAPE_STEPS = ((r"[a-z]+", "a"), (r"[A-Z]+", "A"), (r"[0-9]+", "9"), (r"[^\x00-\x7f]+", "U"), (r"\s+", " "))
_SHAPE_REGEX = {"a": "[a-z]+", "A": "[A-Z]+", "9": "[0-9]+", "U": "[^\\x00-\\x7f]+", " ": "\\s+"}


def value_key(v: Any) -> str:
    """The string key a value is counted under (the same for a CSV "5" read as int and a Parquet 5)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def length_bucket(n: int) -> int:
    """Exact lengths up to 64, then powers of two (the bucket is its upper bound)."""
    return n if n <= 64 else 1 << (n - 1).bit_length()


def kind_of(typ: pa.DataType) -> str:
    """Profile kind of an Arrow type: boolean, integer, numeric,
    string, binary, image (a struct with ``bytes``) or other.
    """
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return "binary"
    if pa.types.is_struct(typ) and any(typ.field(i).name == "bytes" for i in range(typ.num_fields)):
        return "image"
    return "other"


def _add_counts(into: dict[str, int], items: Iterable[tuple[str, int]]) -> None:
    for k, c in items:
        into[k] = into.get(k, 0) + c


def _top(counts: dict[str, int], cap: int) -> tuple[dict[str, int], int]:
    """Keep the ``cap`` largest counts; return them and the largest dropped count."""
    if len(counts) <= cap:
        return counts, 0
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:cap]), ranked[cap][1]


def value_counts(arr: pa.Array, cap: int | None = None) -> list[tuple[str, int]]:
    """Value counts of ``arr`` (nulls dropped) as (key, count); only the ``cap`` largest when given."""
    vc = pc.value_counts(pc.drop_null(arr))
    if cap is not None and len(vc) > cap:
        top = pc.select_k_unstable(vc.field("counts"), cap, sort_keys=[("dummy", "descending")])
        vc = pc.take(vc, top)
    values = vc.field("values").to_pylist()
    counts = vc.field("counts").to_pylist()
    return [(value_key(v), int(c)) for v, c in zip(values, counts, strict=True)]


def _string_counts(arr: pa.Array, cap: int) -> list[tuple[str, int]] | None:
    """:func:`value_counts` of a string array from its shared encoding; None when it has more than ``cap``
    distinct values (then only the largest count, which :func:`value_counts` picks)."""
    enc = encoded(arr)
    if len(enc.dictionary) > cap:
        return None
    return [(value_key(v), int(c)) for v, c in zip(enc.dictionary.to_pylist(), enc.counts.tolist(), strict=True)]


def bool_np(arr: pa.Array) -> np.ndarray:
    """Boolean Arrow array as a NumPy bool array, nulls counted as False."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def tokenize(arr: pa.Array) -> pa.Array:
    """Lower-cased word tokens of a string array (a list array; empty tokens dropped later)."""
    return pc.split_pattern_regex(pc.utf8_lower(arr), TOKEN_SPLIT)


@dataclass
class ColumnProfile:
    """Mergeable statistics of one column: counts, moments, value set, string shapes and token counts."""

    name: str
    type: str
    kind: str
    n: int = 0
    n_null: int = 0
    # numeric
    n_nan: int = 0
    n_inf: int = 0
    n_finite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float = 0.0
    m2: float = 0.0
    # value set
    values: dict[str, int] = field(default_factory=dict)
    values_overflow: bool = False
    # strings
    lengths: dict[str, int] = field(default_factory=dict)
    charclass: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, int] = field(default_factory=dict)
    shapes_overflow: bool = False
    # text
    tokens: dict[str, int] = field(default_factory=dict)
    tokens_dropped_max: int = 0
    n_tokens: int = 0
    tokens_per_record: dict[str, int] = field(default_factory=dict)
    role: str = ""

    # --- derived ------------------------------------------------------------------------------------
    @property
    def std(self) -> float:
        """Population standard deviation of the finite values; 0.0 with fewer than two."""
        return math.sqrt(self.m2 / self.n_finite) if self.n_finite > 1 else 0.0

    @property
    def null_rate(self) -> float:
        """Fraction of null values; 0.0 for an empty column."""
        return self.n_null / self.n if self.n else 0.0

    @property
    def is_categorical(self) -> bool:
        """True when the exact value set is known and small enough to treat the column
        as categorical (strings and booleans always, integers up to 50 values).
        """
        if self.values_overflow or not self.values:
            return False
        if self.kind in ("string", "boolean"):
            return True
        return self.kind == "integer" and len(self.values) <= 50

    @property
    def n_values(self) -> int:
        """Number of non-null values."""
        return self.n - self.n_null

    def regex(self) -> str | None:
        """A regex class every value matched (if at most 5 shapes cover 99.5% of the values), else None."""
        if self.kind != "string" or self.role == "text" or self.shapes_overflow or not self.shapes:
            return None
        total = sum(self.shapes.values())
        ranked = sorted(self.shapes.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen, covered = [], 0
        for shape, count in ranked[:5]:
            chosen.append(shape)
            covered += count
            if covered >= 0.995 * total:
                break
        if covered < 0.995 * total or total < 20:
            return None
        alts = ["".join(_SHAPE_REGEX.get(ch, re.escape(ch)) for ch in shape) for shape in sorted(chosen)]
        return "^(?:" + "|".join(alts) + ")$"

    def mean_tokens(self) -> float:
        """Mean number of tokens per non-null value; 0.0 for an empty column."""
        return self.n_tokens / self.n_values if self.n_values else 0.0

    def mean_length(self) -> float:
        """Mean string length over the length histogram; 0.0 when there are no strings."""
        total = sum(int(k) * c for k, c in self.lengths.items())
        count = sum(self.lengths.values())
        return total / count if count else 0.0

    # --- (de)serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The column profile as a JSON-ready dict; non-finite moments become ``None``."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("min", "max", "mean", "m2"):
            v = d[k]
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnProfile:
        """Column profile from its serialised dict; raises
        :class:`ScreenError` if fields are missing or of the wrong type.
        """
        d = {**d, "mean": d.get("mean") or 0.0, "m2": d.get("m2") or 0.0}
        try:
            col = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except TypeError as exc:
            raise ScreenError(f"baseline column is malformed: {exc}") from None
        if not isinstance(col.name, str) or not isinstance(col.values, dict):
            raise ScreenError("baseline column is malformed")
        return col

    def merge(self, other: ColumnProfile, *, max_values: int, max_tokens: int) -> ColumnProfile:
        """Profile of both columns' data; raises :class:`ScreenError` if the column kinds
        differ. Value sets and tokens are capped at ``max_values`` and ``max_tokens``.
        """
        if self.kind != other.kind:
            raise ScreenError(
                f"cannot merge profiles: column {self.name!r} is {self.kind} in one and {other.kind} in the other",
                advice="Profile partitions of the same data set with the same schema.",
            )
        out = ColumnProfile(self.name, self.type, self.kind)
        out.n, out.n_null = self.n + other.n, self.n_null + other.n_null
        out.n_nan, out.n_inf = self.n_nan + other.n_nan, self.n_inf + other.n_inf
        out.n_finite = self.n_finite + other.n_finite
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        out.min, out.max = (min(mins) if mins else None), (max(maxs) if maxs else None)
        if out.n_finite:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * other.n_finite / out.n_finite
            out.m2 = self.m2 + other.m2 + delta * delta * self.n_finite * other.n_finite / out.n_finite
        out.values = dict(self.values)
        _add_counts(out.values, other.values.items())
        out.values_overflow = self.values_overflow or other.values_overflow or len(out.values) > max_values
        if out.values_overflow:
            out.values = {} if out.kind == "numeric" else _top(out.values, max_values)[0]
        for attr in ("lengths", "charclass", "tokens_per_record"):
            merged = dict(getattr(self, attr))
            _add_counts(merged, getattr(other, attr).items())
            setattr(out, attr, merged)
        out.shapes = dict(self.shapes)
        _add_counts(out.shapes, other.shapes.items())
        out.shapes_overflow = self.shapes_overflow or other.shapes_overflow or len(out.shapes) > MAX_SHAPES
        if out.shapes_overflow:
            out.shapes = {}
        tokens = dict(self.tokens)
        _add_counts(tokens, other.tokens.items())
        out.tokens, dropped = _top(tokens, max_tokens)
        out.tokens_dropped_max = max(dropped, self.tokens_dropped_max + other.tokens_dropped_max)
        out.n_tokens = self.n_tokens + other.n_tokens
        out.role = self.role or other.role
        return out


@dataclass
class Profile:
    """A mergeable profile of a table (see the module docstring)."""

    n_records: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    sample_size: int = DEFAULT_SAMPLE
    max_values: int = DEFAULT_MAX_VALUES
    max_tokens: int = DEFAULT_MAX_TOKENS
    sample_priority: list[float] = field(default_factory=list)
    sample: dict[str, list[float | None]] = field(default_factory=dict)
    label: str | None = None
    text: list[str] = field(default_factory=list)
    groups: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    groups_overflow: list[str] = field(default_factory=list)

    # --- queries ------------------------------------------------------------------------------------
    def finite_sample(self, column: str) -> np.ndarray:
        """Sorted finite values of ``column`` in the row sample (empty if the column is not sampled)."""
        vals = np.array(self.sample.get(column, []), dtype=np.float64)  # None becomes NaN
        vals = vals[np.isfinite(vals)]
        return np.sort(vals)

    def quantiles(self, column: str, qs: Iterable[float]) -> list[float] | None:
        """Sample quantiles ``qs`` of ``column``, or ``None`` when it has no finite sampled values."""
        s = self.finite_sample(column)
        if s.size == 0:
            return None
        return [float(x) for x in np.quantile(s, list(qs))]

    def label_counts(self) -> dict[str, int]:
        """Records per label value, or an empty dict when no label column is profiled."""
        if self.label and self.label in self.columns:
            return dict(self.columns[self.label].values)
        return {}

    # --- merge / finalise ---------------------------------------------------------------------------
    def merge(self, other: Profile) -> Profile:
        """The profile of the union of the two inputs (partitions must have distinct partition keys)."""
        out = Profile(
            n_records=self.n_records + other.n_records,
            sample_size=min(self.sample_size, other.sample_size),
            max_values=min(self.max_values, other.max_values),
            max_tokens=min(self.max_tokens, other.max_tokens),
            label=self.label or other.label,
            text=sorted(set(self.text) | set(other.text)),
        )
        for name in [*self.columns, *[c for c in other.columns if c not in self.columns]]:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is not None and b is not None:
                out.columns[name] = a.merge(b, max_values=out.max_values, max_tokens=out.max_tokens)
            else:
                src = a if a is not None else b
                assert src is not None
                empty = ColumnProfile(src.name, src.type, src.kind)
                missing_n = other.n_records if a is not None else self.n_records
                empty.n, empty.n_null = missing_n, missing_n
                out.columns[name] = (src if a is not None else empty).merge(
                    empty if a is not None else src, max_values=out.max_values, max_tokens=out.max_tokens
                )
        prio = list(self.sample_priority) + list(other.sample_priority)
        order = sorted(range(len(prio)), key=lambda i: prio[i])[: out.sample_size]
        out.sample_priority = [prio[i] for i in order]
        na, nb = len(self.sample_priority), len(other.sample_priority)
        for name in out.columns:
            if name not in self.sample and name not in other.sample:
                continue
            joined = list(self.sample.get(name, [None] * na)) + list(other.sample.get(name, [None] * nb))
            out.sample[name] = [joined[i] for i in order]
        groups: dict[str, dict[str, dict[str, int]]] = {}
        for part in (self.groups, other.groups):
            for g, table in part.items():
                gt = groups.setdefault(g, {})
                for gv, labels in table.items():
                    _add_counts(gt.setdefault(gv, {}), labels.items())
        out.groups = groups
        out.groups_overflow = sorted(set(self.groups_overflow) | set(other.groups_overflow))
        for g in list(out.groups):
            if len(out.groups[g]) > out.max_values:
                del out.groups[g]
                out.groups_overflow = sorted({*out.groups_overflow, g})
        out.finalise()
        return out

    def finalise(self) -> None:
        """Assign column roles (label, group, text, categorical, numeric, string, image, other)."""
        for col in self.columns.values():
            if col.name == self.label:
                col.role = "label"
            elif col.name in self.groups or col.name in self.groups_overflow:
                col.role = "group"
            elif col.kind == "string" and (
                col.name in self.text or (col.mean_tokens() >= 4 and col.mean_length() >= 20 and not self.text)
            ):
                col.role = "text"
            elif col.kind == "image":
                col.role = "image"
            elif col.is_categorical and col.kind != "integer":
                col.role = "categorical"
            elif col.kind in ("numeric", "integer"):
                col.role = "numeric"
            elif col.kind == "string":
                col.role = "string"
            else:
                col.role = "other"

    # --- (de)serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The profile as a JSON-ready dict, the inverse of :meth:`from_dict`."""
        return {
            "n_records": self.n_records,
            "sample_size": self.sample_size,
            "max_values": self.max_values,
            "max_tokens": self.max_tokens,
            "label": self.label,
            "text": list(self.text),
            "columns": [c.to_dict() for c in self.columns.values()],
            "sample_priority": self.sample_priority,
            "sample": self.sample,
            "groups": self.groups,
            "groups_overflow": self.groups_overflow,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Profile from its serialised dict; raises :class:`ScreenError` if it is malformed."""
        try:
            cols = [ColumnProfile.from_dict(c) for c in d["columns"]]
            prof = cls(
                n_records=int(d["n_records"]),
                columns={c.name: c for c in cols},
                sample_size=int(d["sample_size"]),
                max_values=int(d["max_values"]),
                max_tokens=int(d["max_tokens"]),
                sample_priority=[float(x) for x in d["sample_priority"]],
                sample={str(k): list(v) for k, v in d["sample"].items()},
                label=d.get("label"),
                text=list(d.get("text", [])),
                groups=dict(d.get("groups", {})),
                groups_overflow=list(d.get("groups_overflow", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScreenError(f"baseline profile is malformed: {exc!r}") from None
        return prof


class ProfileBuilder:
    """Streams record batches into a :class:`Profile`.

    ``partition`` names this part of the data; builders of different partitions of one data set must use
    different partition keys, so their row samples draw independent priorities and merge correctly.
    """

    def __init__(
        self,
        *,
        label: str | None = None,
        text: Iterable[str] = (),
        group: Iterable[str] = (),
        sample_size: int = DEFAULT_SAMPLE,
        max_values: int = DEFAULT_MAX_VALUES,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        partition: str = "",
        seed: int = 0,
    ) -> None:
        self.profile = Profile(
            sample_size=sample_size, max_values=max_values, max_tokens=max_tokens, label=label, text=list(text)
        )
        self.group = [g for g in group if g != label]
        for g in self.group:
            self.profile.groups[g] = {}
        self._seed = [seed, zlib.crc32(partition.encode("utf-8"))]
        self._prio = np.empty(0)
        self._sample: dict[str, np.ndarray] = {}
        self._skip_shapes: set[str] = set()
        self._text_like: dict[str, bool] = {}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Add a record batch whose first row is row ``offset`` of
        the partition; the offset seeds the row-sample priorities.
        """
        n = batch.num_rows
        prof = self.profile
        prof.n_records += n
        for name in batch.schema.names:
            arr = batch.column(name)
            col = prof.columns.get(name)
            if col is None:
                col = ColumnProfile(name, str(arr.type), kind_of(arr.type))
                col.n = col.n_null = prof.n_records - n  # absent from earlier batches
                prof.columns[name] = col
            col.n += n
            col.n_null += arr.null_count
            if n == 0:
                continue
            self._update_column(col, arr)
        for name, col in prof.columns.items():
            if name not in batch.schema.names:
                col.n += n
                col.n_null += n
        self._update_sample(batch, offset)
        self._update_groups(batch)

    def _update_column(self, col: ColumnProfile, arr: pa.Array) -> None:
        kind = kind_of(arr.type)
        if kind != col.kind:
            return  # type drift within one input is reported by the schema check
        if kind in ("numeric", "integer"):
            self._update_numeric(col, arr)
        if kind in ("string", "boolean", "integer", "numeric") and not col.values_overflow:
            cap = self.profile.max_values
            if kind == "numeric" and not col.values and col.n > len(arr):
                col.values_overflow = True  # a float column is counted only if its first batch is categorical
            elif len(arr) > 8 * cap and len(pc.unique(arr.slice(0, 4 * cap))) > cap:
                col.values_overflow = True  # high cardinality shows in a prefix: skip the full count
                col.values = {} if kind == "numeric" else _top(col.values, cap)[0]
            else:
                counts = _string_counts(arr, cap + 1) if kind == "string" else None
                if counts is None:
                    counts = value_counts(arr, cap + 1)
                _add_counts(col.values, counts)
                if len(counts) > cap or len(col.values) > cap:
                    col.values_overflow = True
                    col.values = {} if kind == "numeric" else _top(col.values, cap)[0]
        if kind == "string":
            self._update_string(col, arr)

    def _update_numeric(self, col: ColumnProfile, arr: pa.Array) -> None:
        x = pc.drop_null(arr)
        if pa.types.is_decimal(x.type):
            x = pc.cast(x, pa.float64(), safe=False)
        v = np.asarray(x.to_numpy(zero_copy_only=False), dtype=np.float64)
        if pa.types.is_floating(arr.type):
            finite = np.isfinite(v)
            if not finite.all():  # one pass when every value is finite (the usual case)
                col.n_nan += int(np.isnan(v).sum())
                col.n_inf += int(np.isinf(v).sum())
                v = v[finite]
        if v.size == 0:
            return
        bmin, bmax = float(v.min()), float(v.max())
        col.min = bmin if col.min is None else min(col.min, bmin)
        col.max = bmax if col.max is None else max(col.max, bmax)
        with np.errstate(over="ignore", invalid="ignore"):
            nb, mb = v.size, float(v.mean())
            m2b = float(((v - mb) ** 2).sum())
        if not (math.isfinite(mb) and math.isfinite(m2b)):  # values near the float limits: keep what is finite
            mb, m2b = (mb if math.isfinite(mb) else 0.0), 0.0
        na = col.n_finite
        tot = na + nb
        delta = mb - col.mean
        col.mean += delta * nb / tot
        col.m2 += m2b + delta * delta * na * nb / tot
        col.n_finite = tot

    def _update_string(self, col: ColumnProfile, arr: pa.Array) -> None:
        n_valid = len(arr) - arr.null_count
        if n_valid == 0:
            return
        enc = encoded(arr)  # the distinct non-null values and their counts, shared with the checks
        distinct, weights = enc.dictionary, enc.counts
        if len(distinct) > n_valid // 4:  # mostly unique: work on the values themselves
            distinct = pc.drop_null(arr)
            weights = np.ones(len(distinct), dtype=np.int64)
        lengths = np.asarray(pc.utf8_length(distinct).to_numpy(zero_copy_only=False), dtype=np.int64)
        buckets = np.where(lengths <= 64, lengths, 1 << np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64))
        ub, inv = np.unique(buckets, return_inverse=True)
        uc = np.bincount(inv, weights=weights).astype(np.int64)
        _add_counts(col.lengths, ((str(int(b)), int(c)) for b, c in zip(ub, uc, strict=True)))
        for cls_name, pattern in CHAR_CLASSES.items():
            hits = int(weights[bool_np(pc.match_substring_regex(distinct, pattern))].sum())
            col.charclass[cls_name] = col.charclass.get(cls_name, 0) + hits
        mean_len = float((lengths * weights).sum() / max(weights.sum(), 1))
        name = col.name
        if name not in self._text_like:
            self._text_like[name] = name in self.profile.text or (
                not self.profile.text and mean_len >= 20 and name != self.profile.label
            )
            if mean_len > 64:
                self._skip_shapes.add(name)
        if name not in self._skip_shapes and not col.shapes_overflow:
            shapes = distinct
            for pattern, repl in _SHAPE_STEPS:
                shapes = pc.replace_substring_regex(shapes, pattern, repl)
            grouped = pa.table({"s": shapes, "w": weights}).group_by("s", use_threads=False).aggregate([("w", "sum")])
            _add_counts(
                col.shapes, zip(grouped.column("s").to_pylist(), grouped.column("w_sum").to_pylist(), strict=True)
            )
            if len(col.shapes) > MAX_SHAPES:
                col.shapes_overflow, col.shapes = True, {}
        if self._text_like[name]:
            toks = tokenize(distinct)
            per_record = np.asarray(pc.list_value_length(toks).to_numpy(zero_copy_only=False), dtype=np.int64)
            flat = pc.list_flatten(toks)
            parents = np.asarray(pc.list_parent_indices(toks).to_numpy(zero_copy_only=False), dtype=np.int64)
            nonempty = bool_np(pc.greater(pc.utf8_length(flat), 0))
            w = weights[parents[nonempty]]
            col.n_tokens += int(w.sum())
            if w.size:
                grouped = (
                    pa.table({"t": pc.filter(flat, pa.array(nonempty)), "w": w})
                    .group_by("t", use_threads=False)
                    .aggregate([("w", "sum")])
                )
                _add_counts(
                    col.tokens, zip(grouped.column("t").to_pylist(), grouped.column("w_sum").to_pylist(), strict=True)
                )
            col.tokens, dropped = _top(col.tokens, self.profile.max_tokens)
            col.tokens_dropped_max = max(col.tokens_dropped_max, dropped)
            pb = np.minimum(per_record, 1 << 20)
            tb = np.where(pb <= 64, pb, 1 << np.ceil(np.log2(np.maximum(pb, 1))).astype(np.int64))
            ub, inv = np.unique(tb, return_inverse=True)
            uc = np.bincount(inv, weights=weights).astype(np.int64)
            _add_counts(col.tokens_per_record, ((str(int(b)), int(c)) for b, c in zip(ub, uc, strict=True)))

    def _update_sample(self, batch: pa.RecordBatch, offset: int) -> None:
        n = batch.num_rows
        k = self.profile.sample_size
        if n == 0 or k <= 0:
            return
        prio = np.random.default_rng([*self._seed, offset]).random(n)
        if self._prio.size >= k:
            # a full sample keeps only priorities below its largest (ties go to the kept rows), so only
            # those rows of the batch are candidates: a few thousand instead of a partition of the batch
            cand = np.flatnonzero(prio < self._prio.max())
            take = cand[np.argpartition(prio[cand], k)[:k]] if cand.size > k else cand
        else:
            take = np.argpartition(prio, k)[:k] if n > k else np.arange(n)
        numeric = [
            name
            for name in batch.schema.names
            if kind_of(batch.column(name).type) in ("numeric", "integer")
            and self.profile.columns[name].kind in ("numeric", "integer")
        ]
        new_vals: dict[str, np.ndarray] = {}
        idx = pa.array(take)
        for name in numeric:
            col = pc.take(batch.column(name), idx)
            if pa.types.is_decimal(col.type):
                col = pc.cast(col, pa.float64(), safe=False)
            new_vals[name] = np.asarray(
                pc.fill_null(pc.cast(col, pa.float64(), safe=False), np.nan).to_numpy(), dtype=np.float64
            )
        all_prio = np.concatenate([self._prio, prio[take]])
        keep = np.argsort(all_prio, kind="stable")[:k]
        old_n = self._prio.size
        for name in set(self._sample) | set(new_vals):
            old = self._sample.get(name, np.full(old_n, np.nan))
            new = new_vals.get(name, np.full(take.size, np.nan))
            self._sample[name] = np.concatenate([old, new])[keep]
        self._prio = all_prio[keep]

    def _update_groups(self, batch: pa.RecordBatch) -> None:
        label = self.profile.label
        if not label or label not in batch.schema.names:
            return
        table = pa.Table.from_batches([batch])
        for g in self.group:
            if g not in batch.schema.names or g in self.profile.groups_overflow:
                continue
            counts = table.group_by([g, label], use_threads=False).aggregate([([], "count_all")]).to_pylist()
            gt = self.profile.groups.setdefault(g, {})
            for row in counts:
                labels = gt.setdefault(value_key(row[g]) if row[g] is not None else "<null>", {})
                lk = value_key(row[label]) if row[label] is not None else "<null>"
                labels[lk] = labels.get(lk, 0) + int(row["count_all"])
            if len(gt) > self.profile.max_values:
                del self.profile.groups[g]
                self.profile.groups_overflow.append(g)

    def result(self) -> Profile:
        """The finished, finalised profile of every batch seen so far."""
        prof = self.profile
        prof.sample_priority = [float(p) for p in self._prio]
        prof.sample = {name: _floats_or_none(vals) for name, vals in self._sample.items()}
        prof.finalise()
        return prof


def _floats_or_none(vals: np.ndarray) -> list[float | None]:
    """The values as Python floats, non-finite ones as None."""
    finite = np.isfinite(vals)
    out: list[float | None] = vals.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = None
    return out


@dataclass(frozen=True)
class Baseline:
    """A profile of trusted data, with where it came from."""

    profile: Profile
    source: str = ""
    created: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The baseline as a JSON-ready dict: format tag, source, creation time, metadata and profile."""
        return {
            "format": FORMAT,
            "source": self.source,
            "created": self.created,
            "meta": dict(self.meta),
            "profile": self.profile.to_dict(),
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no white space): the same baseline always has the same bytes."""
        return canonical_json(self.to_dict())

    @cached_property
    def _digest(self) -> str:
        return sha256_hex(self.to_json())

    def digest(self) -> str:
        """SHA-256 hex of the baseline's canonical JSON; identifies it in reports and merge provenance."""
        return self._digest

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "baseline") -> Baseline:
        """Load a baseline from its JSON; raises :class:`ScreenError` naming
        ``where`` if it is not JSON, not a dataward baseline or malformed.
        """
        import json

        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ScreenError(f"{where}: not valid JSON: {exc}".splitlines()[0]) from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ScreenError(
                f"{where}: not a dataward baseline (format {FORMAT!r} expected)",
                advice="Create one with `dataward baseline create PATH --out FILE`.",
            )
        prof = Profile.from_dict(obj.get("profile", {}))
        prof.finalise()
        return cls(prof, str(obj.get("source", "")), str(obj.get("created", "")), dict(obj.get("meta", {})))

    def merge(self, other: Baseline) -> Baseline:
        """Baseline over both profiles' data, recording the two source digests it was merged from."""
        return Baseline(
            self.profile.merge(other.profile),
            source=" + ".join(s for s in (self.source, other.source) if s),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            meta={"merged_from": [self.digest(), other.digest()]},
        )

    @property
    def schema(self) -> pa.Schema:
        """Arrow schema of the profiled columns; columns whose recorded type cannot be parsed back are left out."""
        fields = []
        for col in self.profile.columns.values():
            try:
                typ = _parse_type(col.type)
            except ValueError:
                continue
            fields.append(pa.field(col.name, typ))
        return pa.schema(fields)


_SIMPLE_TYPES = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "halffloat": pa.float16(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "null": pa.null(),
}


def _parse_type(text: str) -> pa.DataType:
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    raise ValueError(text)
