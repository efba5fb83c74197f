"""Rule checks against a baseline: schema, formats, ranges, missing rates, never-seen values, tails, clusters.

These are the explicit rules that distribution distances miss (issue 6): a never-seen category or a tight
cluster planted in 0.1-2% of rows moves Jensen-Shannon and Wasserstein distances by far less than their
usual 0.1 thresholds, so each gets a rule of its own with a share threshold and a significance test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.screen._util import (
    RecordSink,
    as_float,
    binom_z,
    bool_mask,
    encoded,
    few_distinct,
    fmt_share,
    is_numeric,
    is_string,
    regex_mask,
    share_severity,
    short,
)
from dataward.screen.baseline import ColumnProfile, kind_of, tokenize
from dataward.screen.interface import Check, CheckResult, Finding, Severity
from dataward.screen.registry import register


def redact(text: str) -> str:
    """Text with personal data masked, as shown in finding examples."""
    from dataward.screen.pii import redact as _redact

    return _redact(text)


def _baseline_columns(check: Check) -> dict[str, ColumnProfile]:
    bl = check.context.baseline
    return dict(bl.profile.columns) if bl is not None else {}


def _column_findings(
    check: Check,
    sinks: Mapping[str, RecordSink],
    kind: str,
    severity: Callable[[float], Severity],
    summary: Callable[[str, int, float], str],
    evidence: Callable[[str], dict[str, Any]] | None = None,
) -> list[Finding]:
    # The rules that count offending records per column all report them alike: one finding per column
    # with any, graded by the column's share of the batch.
    n = max(check.context.n_records, 1)
    findings = []
    for name, sink in sinks.items():
        if not sink.count:
            continue
        share = sink.count / n
        extra = evidence(name) if evidence is not None else {}
        findings.append(
            Finding(
                check.name,
                kind,
                severity(share),
                summary(name, sink.count, share),
                sink.tuple,
                {"column": name, "n_records": sink.count, "share": share, **extra},
            )
        )
    return findings


@register
class SchemaCheck(Check):
    """Flags columns missing or added, type changes, values that do not fit the type and nulls in never-null columns."""

    name = "schema"
    thread_safe = True  # its state is its own (ADR 0104)
    description = "columns missing or added, type changes, values that do not fit the type, new nulls"

    def begin(self, ctx: Any) -> None:
        """Note the baseline columns that never held a null."""
        super().begin(ctx)
        cols = _baseline_columns(self)
        self._never_null = {n for n, c in cols.items() if c.n_null == 0 and c.n > 0}
        self._nulls: dict[str, RecordSink] = {n: RecordSink() for n in self._never_null}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record the rows of this batch with a null in a column that was never null in the baseline."""
        for name in self._never_null:
            if name in batch.schema.names:
                arr = batch.column(name)
                if arr.null_count:
                    self._nulls[name].add_mask(bool_mask(pc.is_null(arr)), offset)

    def finish(self) -> CheckResult:
        """Findings from conforming the batch to the baseline schema plus absent, added and newly-null columns."""
        ctx = self.context
        findings = list(ctx.conform_issues)
        if ctx.baseline is not None and ctx.batch_profile is not None:
            base = ctx.baseline.profile.columns
            batch = ctx.batch_profile.columns
            absent = [c for c in base if c not in batch or batch[c].n_null == batch[c].n]
            if absent and ctx.n_records:
                findings.append(
                    Finding(
                        self.name,
                        "missing_columns",
                        Severity.HIGH,
                        f"{len(absent)} baseline column(s) absent or entirely null: {', '.join(absent[:10])}",
                        evidence={"columns": absent},
                    )
                )
            extra = [c for c in batch if c not in base]
            if extra:
                findings.append(
                    Finding(
                        self.name,
                        "extra_columns",
                        Severity.LOW,
                        f"{len(extra)} column(s) not in the baseline: {', '.join(extra[:10])}",
                        evidence={"columns": extra},
                    )
                )
            for name, prof in batch.items():
                if name in base and prof.kind != base[name].kind and prof.n_null < prof.n:
                    findings.append(
                        Finding(
                            self.name,
                            "type_change",
                            Severity.HIGH,
                            f"column {name!r} is {prof.kind} ({prof.type}); the baseline has {base[name].kind} "
                            f"({base[name].type})",
                            evidence={"column": name, "baseline": base[name].type, "batch": prof.type},
                        )
                    )
            findings += _column_findings(
                self,
                self._nulls,
                "new_nulls",
                lambda share: Severity.MEDIUM if share >= 0.001 else Severity.LOW,
                lambda name, count, share: (
                    f"column {name!r} was never null in the baseline; {count} null values ({fmt_share(share)})"
                ),
            )
        return CheckResult(self.name, tuple(findings))


@register
class FormatCheck(Check):
    """Flags string values that do not match the format class (regex) the baseline learnt for their column."""

    name = "format"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "string values that do not match the baseline's format class (regex) for their column"
    needs_baseline = True

    def begin(self, ctx: Any) -> None:
        """Take the format regex of every baseline column that has one, skipping text and label columns."""
        super().begin(ctx)
        self._rules: dict[str, str] = {}
        for name, col in _baseline_columns(self).items():
            rx = col.regex()
            if rx is not None and col.role not in ("text", "label"):
                self._rules[name] = rx
        self._sinks = {n: RecordSink() for n in self._rules}
        self._examples: dict[str, list[str]] = {n: [] for n in self._rules}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record the rows of this batch whose non-null string value
        fails its column's regex, keeping up to five examples.
        """
        for name, rx in self._rules.items():
            if name not in batch.schema.names or not is_string(batch.column(name).type):
                continue
            arr = batch.column(name)
            bad = ~regex_mask(arr, rx) & ~bool_mask(pc.is_null(arr))
            if bad.any():
                self._sinks[name].add_mask(bad, offset)
                ex = self._examples[name]
                if len(ex) < 5:
                    for i in np.flatnonzero(bad)[: 5 - len(ex)]:
                        ex.append(short(redact(str(arr[int(i)].as_py()))))

    def finish(self) -> CheckResult:
        """One ``format_violation`` finding per column with non-matching
        values, severity by their share, with redacted examples.
        """
        findings = _column_findings(
            self,
            self._sinks,
            "format_violation",
            share_severity,
            lambda name, count, share: (
                f"{count} value(s) of {name!r} ({fmt_share(share)}) do not match the baseline format "
                f"{short(self._rules[name], 60)}"
            ),
            lambda name: {"regex": self._rules[name], "examples": self._examples[name]},
        )
        return CheckResult(self.name, tuple(findings), {"columns_with_format": sorted(self._rules)})


@register
class RangeCheck(Check):
    """Flags numeric values outside the baseline's range widened
    by 10 %, and NaN or infinities in columns that had none.
    """

    name = "range"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "numeric values outside the baseline's range (with a 10% margin), new NaN or infinities"
    needs_baseline = True

    def begin(self, ctx: Any) -> None:
        """Compute each numeric baseline column's bounds (min and max with
        a 10 % margin) and whether it already held non-finite values.
        """
        super().begin(ctx)
        self._bounds: dict[str, tuple[float, float]] = {}
        self._nonfinite_ok: dict[str, bool] = {}
        for name, col in _baseline_columns(self).items():
            if col.kind in ("numeric", "integer") and col.min is not None and col.max is not None:
                span = col.max - col.min
                margin = 0.1 * span if span > 0 else max(abs(col.max) * 0.1, 1e-9)
                self._bounds[name] = (col.min - margin, col.max + margin)
                self._nonfinite_ok[name] = (col.n_nan + col.n_inf) > 0
        self._out = {n: RecordSink() for n in self._bounds}
        self._nonfinite = {n: RecordSink() for n in self._bounds}
        self._extremes: dict[str, list[float]] = {n: [math.inf, -math.inf] for n in self._bounds}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record the rows of this batch outside their column's bounds, and new NaN or infinite values."""
        for name, (lo, hi) in self._bounds.items():
            if name not in batch.schema.names or not is_numeric(batch.column(name).type):
                continue
            x = as_float(batch.column(name))
            valid = ~np.isnan(x)
            if pa.types.is_floating(batch.column(name).type):
                nulls = bool_mask(pc.is_null(batch.column(name)))
                nonfinite = (~np.isfinite(x)) & ~nulls
                if not self._nonfinite_ok[name]:
                    self._nonfinite[name].add_mask(nonfinite, offset)
            finite = np.isfinite(x)
            out = finite & ((x < lo) | (x > hi))
            self._out[name].add_mask(out, offset)
            if out.any():
                ext = self._extremes[name]
                ext[0] = min(ext[0], float(x[out].min()))
                ext[1] = max(ext[1], float(x[out].max()))
            del valid

    def finish(self) -> CheckResult:
        """``out_of_range`` and non-finite findings per column, severity by the share of affected records."""
        findings = _column_findings(
            self,
            self._out,
            "out_of_range",
            share_severity,
            lambda name, count, share: (
                f"{count} value(s) of {name!r} ({fmt_share(share)}) outside the baseline range "
                f"[{self._bounds[name][0]:.6g}, {self._bounds[name][1]:.6g}]"
            ),
            lambda name: {
                "low": self._bounds[name][0],
                "high": self._bounds[name][1],
                "batch_min": self._extremes[name][0],
                "batch_max": self._extremes[name][1],
            },
        )
        findings += _column_findings(
            self,
            self._nonfinite,
            "non_finite",
            lambda share: share_severity(share, high=0.001, medium=0.0),
            lambda name, count, share: f"{count} NaN/infinite value(s) in {name!r}; the baseline had none",
        )
        return CheckResult(self.name, tuple(findings))


@register
class MissingCheck(Check):
    """Flags columns whose missing rate moved from the baseline's, by absolute change and a two-proportion z-test."""

    name = "missing"
    thread_safe = True  # its state is its own (ADR 0104)
    description = "missing-rate changes per column (absolute change and a two-proportion z-test)"
    needs_baseline = True

    def begin(self, ctx: Any) -> None:
        """Start a record sink for every baseline column."""
        super().begin(ctx)
        self._cols = _baseline_columns(self)
        self._sinks = {n: RecordSink() for n in self._cols}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record the rows of this batch where a baseline column is null."""
        for name, sink in self._sinks.items():
            if name in batch.schema.names:
                arr = batch.column(name)
                if arr.null_count and len(sink.records) < sink.cap:
                    sink.add_mask(bool_mask(pc.is_null(arr)), offset)

    def finish(self) -> CheckResult:
        """One ``missing_rate`` finding per column whose null rate changed by at least
        the policy's delta with abs(z) >= 4; records are attached only when it rose.
        """
        ctx = self.context
        findings = []
        bp = ctx.batch_profile
        if bp is None or not ctx.n_records:
            return CheckResult(self.name)
        for name, base in self._cols.items():
            col = bp.columns.get(name)
            if col is None or base.n == 0 or col.n == 0:
                continue
            p0, p1 = base.null_rate, col.null_rate
            delta = p1 - p0
            pooled = (base.n_null + col.n_null) / (base.n + col.n)
            sd = math.sqrt(max(pooled * (1 - pooled) * (1 / base.n + 1 / col.n), 1e-18))
            z = delta / sd
            if abs(delta) >= ctx.policy.missing_delta and abs(z) >= 4:
                sev = Severity.HIGH if abs(delta) >= 0.1 else Severity.MEDIUM
                direction = "rose" if delta > 0 else "fell"
                findings.append(
                    Finding(
                        self.name,
                        "missing_rate",
                        sev,
                        f"missing rate of {name!r} {direction} from {fmt_share(p0)} to {fmt_share(p1)}",
                        self._sinks[name].tuple if delta > 0 else (),
                        {"column": name, "baseline": p0, "batch": p1, "z": z, "n_records": col.n_null},
                    )
                )
        return CheckResult(self.name, tuple(findings))


def _re2_escape(token: str) -> str:
    return re.sub(r"([^\w])", r"\\\1", token)


@register
class NewValuesCheck(Check):
    """Flags categories the baseline never saw, and tokens frequent
    in the batch but rare or absent in the baseline text.
    """

    name = "new_values"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "never-seen categories, and never-seen tokens that are frequent in the batch"
    needs_baseline = True

    def begin(self, ctx: Any) -> None:
        """Take the known value set of each categorical, label or
        group column and the token counts of each text column.
        """
        super().begin(ctx)
        self._sets: dict[str, pa.Array] = {}
        for name, col in _baseline_columns(self).items():
            if col.role == "text":
                continue
            if col.is_categorical or (col.role in ("label", "group") and not col.values_overflow and col.values):
                self._sets[name] = pa.array(sorted(col.values), pa.string())
        self._counts: dict[str, dict[str, int]] = {n: {} for n in self._sets}
        self._records: dict[str, dict[str, RecordSink]] = {n: {} for n in self._sets}
        self._text = {c.name: c for c in _baseline_columns(self).values() if c.role == "text" and c.tokens}
        for t in ctx.options.text:
            bc = _baseline_columns(self).get(t)
            if bc is not None and bc.tokens:
                self._text[t] = bc
        self._tok_counts: dict[str, dict[str, int]] = {n: {} for n in self._text}
        self._flagged_tokens: dict[str, list[str]] = {}
        self._token_sinks: dict[tuple[str, str], RecordSink] = {}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Count unseen values per column (keeping sample records for each) and count tokens in the text columns."""
        for name, value_set in self._sets.items():
            if name not in batch.schema.names:
                continue
            arr = batch.column(name)
            if kind_of(arr.type) not in ("string", "integer", "boolean", "numeric"):
                continue
            keys = arr if is_string(arr.type) else pc.cast(arr, pa.string())
            if is_string(arr.type) and few_distinct(arr):  # test the distinct values only
                enc = encoded(arr)
                mask = enc.gather(~bool_mask(pc.is_in(enc.dictionary, value_set)), False)
                if not mask.any():
                    continue
                unseen = pa.array(mask)
            else:
                unseen = pc.and_(pc.invert(pc.is_in(keys, value_set)), pc.is_valid(keys))
                mask = bool_mask(unseen)
                if not mask.any():
                    continue
            counts = self._counts[name]
            vc = pc.value_counts(pc.filter(keys, unseen))
            values, cnts = vc.field("values").to_pylist(), vc.field("counts").to_pylist()
            sinks = self._records[name]
            for v, c in zip(values, cnts, strict=True):
                if v not in counts and len(counts) >= 10_000:
                    continue
                counts[v] = counts.get(v, 0) + int(c)
                if v in sinks or len(sinks) < 50:
                    sink = sinks.setdefault(v, RecordSink())
                    if len(sink.records) < sink.cap:
                        sink.records.extend(
                            int(i) + offset
                            for i in np.flatnonzero(bool_mask(pc.equal(keys, v)))[: sink.cap - len(sink.records)]
                        )
        for name in self._text:
            if name not in batch.schema.names or not is_string(batch.column(name).type):
                continue
            toks = tokenize(batch.column(name))
            flat = pc.list_flatten(toks)
            flat = pc.filter(flat, pc.greater(pc.utf8_length(flat), 0))
            vc = pc.value_counts(flat)
            tc = self._tok_counts[name]
            for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                tc[v] = tc.get(v, 0) + int(c)
            if len(tc) > 200_000:
                keep = sorted(tc.items(), key=lambda kv: -kv[1])[:100_000]
                self._tok_counts[name] = dict(keep)

    def _flag_tokens(self) -> None:
        ctx = self.context
        n = ctx.n_records
        pol = ctx.policy
        threshold = max(pol.new_value_min_records, pol.new_value_min_share * n)
        for name, base in self._text.items():
            base_total = max(base.n_tokens, 1)
            batch_total = max(sum(self._tok_counts[name].values()), 1)
            flagged = []
            for tok, count in sorted(self._tok_counts[name].items(), key=lambda kv: -kv[1]):
                if count < threshold:
                    break
                base_count = base.tokens.get(tok)
                bound = base.tokens_dropped_max if base_count is None else base_count
                if (count / batch_total) >= 10 * ((bound + 1) / base_total):
                    flagged.append(tok)
                if len(flagged) >= 20:
                    break
            if flagged:
                self._flagged_tokens[name] = flagged
                for tok in flagged:
                    self._token_sinks[(name, tok)] = RecordSink()

    def wants_second_pass(self) -> bool:
        """Pick the over-represented tokens; True when there are any, so their records are found in a second pass."""
        self._flag_tokens()
        return bool(self._flagged_tokens)

    def update_second(self, batch: pa.RecordBatch, offset: int) -> None:
        """Second pass: record the rows of this batch that contain each flagged token as a whole word."""
        for name, toks in self._flagged_tokens.items():
            if name not in batch.schema.names:
                continue
            lowered = pc.utf8_lower(batch.column(name))
            for tok in toks:
                rx = r"(^|[^\pL\pN_])" + _re2_escape(tok) + r"($|[^\pL\pN_])"
                self._token_sinks[(name, tok)].add_mask(bool_mask(pc.match_substring_regex(lowered, rx)), offset)

    def finish(self) -> CheckResult:
        """Findings for never-seen values and flagged tokens whose
        count reaches the policy's record or share threshold.
        """
        ctx = self.context
        n = max(ctx.n_records, 1)
        pol = ctx.policy
        threshold = max(pol.new_value_min_records, pol.new_value_min_share * n)
        findings = []
        for name, counts in self._counts.items():
            frequent = {v: c for v, c in counts.items() if c >= threshold}
            if frequent:
                total = sum(frequent.values())
                share = total / n
                records = sorted(
                    {r for v in frequent if v in self._records[name] for r in self._records[name][v].records}
                )
                sev = Severity.HIGH if share >= pol.cluster_min_share else Severity.MEDIUM
                top = sorted(frequent.items(), key=lambda kv: -kv[1])[:10]
                findings.append(
                    Finding(
                        self.name,
                        "unseen_category",
                        sev,
                        f"{len(frequent)} never-seen value(s) in {name!r} cover {total} records ({fmt_share(share)}): "
                        + ", ".join(f"{short(redact(v), 24)!r}" for v, _ in top[:3]),
                        tuple(records[:1000]),
                        {
                            "column": name,
                            "values": {short(redact(v)): c for v, c in top},
                            "n_records": total,
                            "share": share,
                        },
                    )
                )
            rare = sum(c for c in counts.values() if c < threshold)
            if rare:
                findings.append(
                    Finding(
                        self.name,
                        "unseen_rare",
                        Severity.INFO,
                        f"{rare} record(s) in {name!r} carry rare never-seen values (each below the threshold)",
                        evidence={"column": name, "n_records": rare},
                    )
                )
        for name, toks in self._flagged_tokens.items():
            base = self._text[name]
            total = sum(self._token_sinks[(name, t)].count for t in toks)
            recs = sorted({r for t in toks for r in self._token_sinks[(name, t)].records})
            details = {
                short(redact(t)): {
                    "batch_count": self._tok_counts[name].get(t, 0),
                    "baseline_count": base.tokens.get(t, 0),
                    "records": self._token_sinks[(name, t)].count,
                }
                for t in toks
            }
            unseen = [t for t in toks if t not in base.tokens]
            share = max(self._token_sinks[(name, t)].count for t in toks) / n
            findings.append(
                Finding(
                    self.name,
                    "unseen_tokens" if unseen else "token_surge",
                    Severity.HIGH if unseen and share >= pol.cluster_min_share else Severity.MEDIUM,
                    f"{len(toks)} token(s) in {name!r} {'never seen in' if unseen else 'far more frequent than in'} "
                    f"the baseline and frequent here: " + ", ".join(repr(short(redact(t), 24)) for t in toks[:5]),
                    tuple(recs[:1000]),
                    {"column": name, "tokens": details, "n_records": total},
                )
            )
        return CheckResult(self.name, tuple(findings))


# --- tails and tight clusters -----------------------------------------------------------------------------

_TAILS = ((0.001, "low"), (0.01, "low"), (0.99, "high"), (0.999, "high"))
_BINS, _SUB = 100, 10
_LOOKUP = 1 << 16  # equal-width buckets of the cell lookup table (128 KiB of int16)


class _NumericGrid:
    """Cells for one column: 100 baseline-quantile bins x 10 equal-width sub-bins (found with one binary search
    over 101 edges and one multiply), an open cell at each end, and cells beyond the baseline's range."""

    def __init__(self, sample: np.ndarray, col: ColumnProfile) -> None:
        qs = np.quantile(sample, np.linspace(0, 1, _BINS + 1))
        self.q = np.unique(qs)
        widths = np.diff(self.q) / _SUB
        self.inv_w = np.where(widths > 0, 1.0 / np.where(widths > 0, widths, 1.0), 0.0)
        self.width = widths
        self.n_cells = 2 + (self.q.size - 1) * _SUB
        # per searchsorted index b (0 .. m): first cell, left edge and inverse sub-bin width of bin b - 1
        m = self.q.size
        self._first_cell = np.concatenate([[0], 1 + np.arange(m - 1) * _SUB, [self.n_cells - 1]]).astype(np.int64)
        self._q_at = np.concatenate([[0.0], self.q[:-1], [0.0]])
        self._inv_at = np.concatenate([[0.0], self.inv_w, [0.0]])
        self.lo = float(col.min if col.min is not None else qs[0])
        self.hi = float(col.max if col.max is not None else qs[-1])
        self.expected = np.bincount(self.cells(sample), minlength=self.n_cells).astype(np.float64) / sample.size
        self._lookup(sample)
        self.n_sample = sample.size
        q01, q99 = np.quantile(sample, [0.01, 0.99])
        width = (float(q99) - float(q01)) / 200
        self.ext_width = width if width > 0 else max(abs(self.hi) * 1e-3, 1e-9)
        self.tail_q = {q: float(np.quantile(sample, q)) for q, _ in _TAILS}
        self.counts = np.zeros(self.n_cells, dtype=np.int64)
        self.beyond: dict[int, int] = {}
        self.tail_counts = dict.fromkeys(self.tail_q, 0)
        self.n = 0

    def cells(self, x: np.ndarray) -> np.ndarray:
        """Cell index of each (finite) value: the bin's first cell plus the sub-bin, both looked up by the
        bin index (the open end cells have a zero sub-bin width), so one gather replaces the masks."""
        b = np.searchsorted(self.q, x, side="right")
        with np.errstate(invalid="ignore", over="ignore"):
            sub = (x - self._q_at[b]) * self._inv_at[b]
        np.clip(sub, 0, _SUB - 1, out=sub)
        out = self._first_cell[b] + sub.astype(np.int64)
        return np.asarray(out, dtype=np.int64)

    def _lookup(self, sample: np.ndarray) -> None:
        """A table of the cell of each of 65,536 equal-width buckets over the sample's range, where the whole
        bucket (widened by a rounding tolerance) lies in one cell; -1 where a cell edge crosses it.

        ``cells`` is monotone in x, so a bucket whose two (widened) ends fall in the same cell holds only that
        cell: a value found in such a bucket gets its cell with one multiply and one gather, the others take
        the binary search. Not used when the sample says most values would take the search anyway (heavy
        tails, integers sitting on the edges)."""
        self._table: np.ndarray | None = None
        lo, hi = float(self.q[0]), float(self.q[-1])
        width = (hi - lo) / _LOOKUP
        if not (width > 0 and math.isfinite(width) and math.isfinite(1.0 / width)):
            return
        # far above the rounding of the edges and of (x - lo) / width, far below a bucket
        tol = max(1e-9 * (hi - lo), 16 * float(np.spacing(max(abs(lo), abs(hi)))))
        if tol > width / 4:
            return
        edges = lo + width * np.arange(_LOOKUP + 1, dtype=np.float64)
        left, right = self.cells(edges[:-1] - tol), self.cells(edges[1:] + tol)
        pure = left == right
        pure[0] = pure[-1] = False  # the end buckets also take every value beyond the range (clipped)
        table = np.where(pure, left, -1).astype(np.int16 if self.n_cells < 2**15 else np.int32)
        self._table, self._t_lo, self._t_inv = table, lo, 1.0 / width
        if self._from_table(sample)[1].size > 0.2 * sample.size:
            self._table = None

    def _from_table(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The table's cell of each value's bucket (-1: not exact there) and the positions of the -1s."""
        assert self._table is not None
        with np.errstate(over="ignore", invalid="ignore"):
            t = (x - self._t_lo) * self._t_inv
        np.clip(t, 0, _LOOKUP - 1, out=t)
        got = self._table[t.astype(np.int32)]
        return got, np.flatnonzero(got < 0)

    def fast_cells(self, x: np.ndarray) -> np.ndarray:
        """The same cells as :meth:`cells` for finite values, through the bucket table where it is exact."""
        if self._table is None:
            return self.cells(x)
        got, miss = self._from_table(x)
        if miss.size:
            got[miss] = self.cells(x[miss])
        return got

    def update(self, x: np.ndarray) -> None:
        finite = np.isfinite(x)
        if not finite.all():  # a copy only for the batches with NaN or infinities
            x = x[finite]
        self.n += x.size
        if not x.size:
            return
        self.counts += np.bincount(self.fast_cells(x), minlength=self.n_cells)
        for q, side in _TAILS:
            t = self.tail_q[q]
            self.tail_counts[q] += int(np.count_nonzero(x < t if side == "low" else x > t))
        out = x[(x < self.lo) | (x > self.hi)]
        if out.size:
            with np.errstate(over="ignore"):  # values near the float range overflow to inf: clipped below
                cells = np.where(
                    out > self.hi,
                    np.floor((out - self.hi) / self.ext_width) + 1,
                    -np.floor((self.lo - out) / self.ext_width) - 1,
                )
            cells = np.clip(cells, -1e15, 1e15).astype(np.int64)
            u, c = np.unique(cells, return_counts=True)
            for cell, cnt in zip(u.tolist(), c.tolist(), strict=True):
                self.beyond[cell] = self.beyond.get(cell, 0) + cnt

    def cell_widths(self) -> np.ndarray:
        """Width of each cell (the open end cells get the width of their neighbour)."""
        inner = np.repeat(self.width, _SUB)
        inner = np.where(inner > 0, inner, np.finfo(np.float64).tiny)
        return np.concatenate([inner[:1], inner, inner[-1:]])

    def cell_interval(self, i: int) -> tuple[float, float]:
        if i == 0:
            return -math.inf, float(self.q[0])
        if i >= self.n_cells - 1:
            return float(self.q[-1]), math.inf
        b, sub = divmod(i - 1, _SUB)
        lo = float(self.q[b] + sub * self.width[b])
        return lo, float(self.q[b] + (sub + 1) * self.width[b]) if sub < _SUB - 1 else float(self.q[b + 1])

    def beyond_interval(self, cell: int) -> tuple[float, float]:
        if cell > 0:
            return self.hi + (cell - 1) * self.ext_width, self.hi + cell * self.ext_width
        return self.lo - (-cell) * self.ext_width, self.lo - (-cell - 1) * self.ext_width


@register
class TailsCheck(Check):
    """Flags tail mass beyond the baseline's quantiles and tight clusters (spikes) the baseline does not explain."""

    name = "tails"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "tail mass beyond baseline quantiles, and tight clusters (spikes) a baseline does not explain"
    needs_baseline = True

    def begin(self, ctx: Any) -> None:
        """Build a quantile grid from the baseline sample for every
        non-label numeric column with at least 200 sampled values.
        """
        super().begin(ctx)
        self._grids: dict[str, _NumericGrid] = {}
        bl = ctx.baseline
        assert bl is not None
        for name, col in bl.profile.columns.items():
            if col.kind not in ("numeric", "integer") or col.role == "label":
                continue
            if col.kind == "integer" and col.is_categorical:
                continue
            sample = bl.profile.finite_sample(name)
            if sample.size >= 200 and sample[-1] > sample[0]:
                self._grids[name] = _NumericGrid(sample, col)
        self._intervals: dict[tuple[str, str, float, float], RecordSink] = {}
        self._cell_ranges: dict[tuple[str, str, float, float], tuple[int, int]] = {}
        self._pending: list[dict[str, Any]] = []

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Count this batch's values into each column's grid."""
        for name, grid in self._grids.items():
            if name in batch.schema.names and is_numeric(batch.column(name).type):
                grid.update(as_float(batch.column(name)))

    def _evaluate(self) -> None:
        pol = self.context.policy
        for name, g in self._grids.items():
            n = g.n
            if n < 100:
                continue
            min_excess = max(pol.cluster_min_share, 10 / n)
            # tail mass
            best = None
            for q, side in _TAILS:
                p = q if side == "low" else 1 - q
                n_obs = g.tail_counts[q]
                share = n_obs / n
                sd_base = math.sqrt(p * (1 - p) / g.n_sample)
                if (
                    share - p >= max(min_excess, 5 * sd_base)
                    and share >= 2 * p
                    and binom_z(n_obs, n, p + 2 * sd_base) >= 5
                ) and (best is None or share - p > best[2]):
                    best = (q, side, share - p, share, p)
            if best is not None:
                q, side, excess, share, p = best
                lo, hi = (-math.inf, g.tail_q[q]) if side == "low" else (g.tail_q[q], math.inf)
                self._pending.append(
                    {
                        "kind": "tail_mass",
                        "column": name,
                        "lo": lo,
                        "hi": hi,
                        "share": share,
                        "expected": p,
                        "excess": excess,
                        "quantile": q,
                        "side": side,
                    }
                )
            # tight clusters inside the baseline's range (windows of one and two adjacent cells)
            obs: np.ndarray = g.counts / n
            exp = g.expected
            sd = np.sqrt(np.maximum(exp * (1 - exp), 1.0 / g.n_sample) / g.n_sample) + np.sqrt(
                np.maximum(exp * (1 - exp), 1.0 / n) / n
            )
            found: list[tuple[int, int, float, float, float]] = []
            cw = g.cell_widths()
            for width in (1, 2):
                if obs.size < width:
                    continue
                o = np.convolve(obs, np.ones(width), "valid")
                e = np.convolve(exp, np.ones(width), "valid")
                s = np.convolve(sd, np.ones(width), "valid")
                over = o - e
                ok = (over >= np.maximum(min_excess, 5 * s)) & (o >= 2 * e)
                ok[0] = False  # the open cells below/above the sample are the tail and beyond-range rules' job
                ok[-1] = False
                hits = np.flatnonzero(ok)
                for i in hits.tolist():
                    # tight means a spike against the batch's own neighbouring cells too: a shifted or widened
                    # distribution raises whole regions, a planted cluster one or two cells
                    lo_n, hi_n = max(1, i - 3), min(obs.size - 1, i + width + 3)
                    idx = np.r_[lo_n:i, i + width : hi_n]
                    span = float(cw[i : i + width].sum())
                    density = float((obs[idx] / cw[idx]).mean()) if idx.size else 0.0  # share per unit of x
                    local = density * span
                    if o[i] >= 2 * local and o[i] - local >= min_excess:
                        found.append((i, i + width - 1, float(over[i]), float(o[i]), float(e[i])))
            found.sort(key=lambda t: -t[2])
            taken: set[int] = set()
            for a, b, excess_v, o_v, e_v in found:
                if any(i in taken for i in range(a - 1, b + 2)):
                    continue
                taken.update(range(a, b + 1))
                lo, _ = g.cell_interval(a)
                _, hi = g.cell_interval(b)
                self._pending.append(
                    {
                        "kind": "tight_cluster",
                        "column": name,
                        "cells": (a, b),
                        "lo": lo,
                        "hi": hi,
                        "share": o_v,
                        "expected": e_v,
                        "excess": excess_v,
                    }
                )
                if len(taken) > 40:
                    break
            # clusters beyond the baseline's range
            runs: list[tuple[int, int, int]] = []  # adjacent cells beyond the range form one run
            for cell in sorted(g.beyond):
                if runs and cell == runs[-1][1] + 1 and (cell > 0) == (runs[-1][0] > 0):
                    a, _, c = runs[-1]
                    runs[-1] = (a, cell, c + g.beyond[cell])
                else:
                    runs.append((cell, cell, g.beyond[cell]))
            for a, b, cnt in sorted(runs, key=lambda r: -r[2])[:5]:
                if cnt >= max(pol.duplicate_min_cluster, min_excess * n) and b - a < 50:
                    lo, hi = g.beyond_interval(a)[0], g.beyond_interval(b)[1]
                    self._pending.append(
                        {
                            "kind": "tight_cluster",
                            "column": name,
                            "lo": lo,
                            "hi": hi,
                            "share": cnt / n,
                            "expected": 0.0,
                            "excess": cnt / n,
                            "beyond_range": True,
                        }
                    )
        for item in self._pending:
            key = (item["column"], item["kind"], item["lo"], item["hi"])
            self._intervals[key] = RecordSink()
            if "cells" in item:
                self._cell_ranges[key] = item.pop("cells")

    def wants_second_pass(self) -> bool:
        """Find excess tails and clusters from the grid counts; True when
        there are any, so their records are found in a second pass.
        """
        self._evaluate()
        return bool(self._pending)

    def update_second(self, batch: pa.RecordBatch, offset: int) -> None:
        """Second pass: record the rows of this batch that fall in each flagged tail or cluster interval."""
        for key, sink in self._intervals.items():
            name, _kind, lo, hi = key
            if name in batch.schema.names and is_numeric(batch.column(name).type):
                x = as_float(batch.column(name))
                cells = self._cell_ranges.get(key)
                if cells is not None:
                    finite = np.isfinite(x)
                    idx = np.full(x.size, -1, dtype=np.int64)
                    idx[finite] = self._grids[name].fast_cells(x[finite])
                    sink.add_mask((idx >= cells[0]) & (idx <= cells[1]), offset)
                    continue
                with np.errstate(invalid="ignore"):
                    mask = (x > lo) & (x <= hi) if math.isfinite(lo) else x < hi
                    if not math.isfinite(hi):
                        mask = x > lo
                sink.add_mask(mask & np.isfinite(x), offset)

    def finish(self) -> CheckResult:
        """One finding per excess tail or cluster found, HIGH when the excess reaches the policy's cluster share."""
        findings = []
        n = max(self.context.n_records, 1)
        for item in self._pending:
            sink = self._intervals[(item["column"], item["kind"], item["lo"], item["hi"])]
            col, lo, hi = item["column"], item["lo"], item["hi"]
            excess = item["excess"]
            sev = Severity.HIGH if excess >= self.context.policy.cluster_min_share else Severity.MEDIUM
            if item["kind"] == "tail_mass":
                summary = (
                    f"{fmt_share(item['share'])} of {col!r} lies {'below' if item['side'] == 'low' else 'above'} "
                    f"the baseline's {item['quantile']:g} quantile ({(hi if item['side'] == 'low' else lo):.6g}); "
                    f"expected {fmt_share(item['expected'])}"
                )
            else:
                where = "beyond the baseline range" if item.get("beyond_range") else "inside the baseline range"
                summary = (
                    f"tight cluster of {sink.count} values of {col!r} ({fmt_share(item['share'])}) in "
                    f"({lo:.6g}, {hi:.6g}] {where}; the baseline expects {fmt_share(item['expected'])}"
                )
            findings.append(
                Finding(
                    self.name,
                    item["kind"],
                    sev,
                    summary,
                    sink.tuple,
                    {**item, "n_records": sink.count, "batch_share": sink.count / n},
                )
            )
        return CheckResult(self.name, tuple(findings), {"columns": sorted(self._grids)})
