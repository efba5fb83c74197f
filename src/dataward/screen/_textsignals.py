"""Adversarial text signals: invisible characters, homoglyph mixing, unusual scripts, repeated odd tokens.

Every signal is a vectorised RE2 match over each string column (pyarrow), so it costs one pass:

* ``invisible``: zero-width and joiner characters, bidirectional controls, soft hyphen, BOM, Unicode tags
  (U+E0000..E007F, "ASCII smuggling");
* ``homoglyph``: a word in which Latin letters sit next to Cyrillic or Greek ones (``pаypal``);
* ``unusual_script``: obfuscation alphabets (mathematical alphanumerics, enclosed and fullwidth forms,
  private use) and scripts carried by under 5% of the records while another script dominates;
* ``odd_tokens``: short tokens without vowels or with mixed letters and digits (BadNets-style triggers such
  as ``cf``, ``mn``, ``bb``, ``tq``) that recur in at least 0.1% of the records. Frequency alone is no
  evidence: ordinary text is full of such tokens ('ll', 'lt', 'gt', 'txt', 'pls' in SMS), and a token in
  most records is a template. So a token in at least half of the records is never reported, and severity
  follows a calibrated test only where there is a null to test against: with a trusted baseline, the
  batch's count of the token is compared with the baseline's rate (binomial upper tail, add-one smoothed,
  Bonferroni over the tokens tried) and :func:`dataward.core.evidence.severity_of_evidence` maps the
  corrected p-value and the share of records to a severity. Without a baseline the finding is ``low``
  (a lead for a reviewer; the label-aware trigger miners of ``dataward detect`` test such tokens
  against a model).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.core.evidence import severity_of_evidence
from dataward.screen._util import (
    RecordSink,
    bool_mask,
    encoded,
    few_distinct,
    fmt_share,
    is_string,
    regex_mask,
    short,
)
from dataward.screen.baseline import tokenize
from dataward.screen.interface import Check, CheckResult, Finding, Severity
from dataward.screen.registry import register

INVISIBLE = (
    r"[\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{2064}\x{2066}-\x{2069}\x{FEFF}\x{00AD}\x{180E}"
    r"\x{E0000}-\x{E007F}]"
)
HOMOGLYPH = r"\p{Latin}\p{Cyrillic}|\p{Cyrillic}\p{Latin}|\p{Latin}\p{Greek}|\p{Greek}\p{Latin}"
OBFUSCATION = {
    "math_alphanumeric": r"[\x{1D400}-\x{1D7FF}]",
    "enclosed_alphanumeric": r"[\x{2460}-\x{24FF}\x{1F100}-\x{1F1FF}]",
    "fullwidth": r"[\x{FF01}-\x{FF5E}]",
    "private_use": r"[\x{E000}-\x{F8FF}\x{F0000}-\x{FFFFD}]",
}
SCRIPTS = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Han", "Hiragana", "Katakana", "Hangul", "Devanagari",
           "Thai", "Armenian", "Georgian", "Cherokee", "Braille", "Runic", "Ogham", "Tifinagh")  # fmt: skip
_ODD = re.compile(r"^(?:[b-df-hj-np-tv-xz]{2,3}|[a-z]+[0-9]+[a-z0-9]*|[0-9]+[a-z]+[a-z0-9]*)$")
_MAX_TRACKED = 200_000
#: a token in at least this share of the records is part of the column's template, not an anomaly
_TEMPLATE_SHARE = 0.5


def is_odd_token(tok: str) -> bool:
    """True for short tokens that look machine-made rather than words: 2-3
    consonants, or letters mixed with digits (at most 8 characters).
    """
    return len(tok) <= 8 and bool(_ODD.match(tok))


@register
class TextSignalsCheck(Check):
    """Flags invisible characters, homoglyph mixing, unusual scripts and recurring odd tokens in text columns."""

    name = "text_signals"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "invisible characters, homoglyph mixing, unusual scripts, repeated odd tokens"

    def begin(self, ctx: Any) -> None:
        """Reset the per-column signal, script and token counters."""
        super().begin(ctx)
        self._sinks: dict[tuple[str, str], RecordSink] = {}
        self._scripts: dict[str, dict[str, int]] = {}
        self._script_sinks: dict[tuple[str, str], RecordSink] = {}
        self._n_text: dict[str, int] = {}
        self._tokens: dict[str, dict[str, int]] = {}
        self._odd: dict[str, list[str]] = {}
        self._tok_total: dict[str, int] = {}
        self._odd_p: dict[tuple[str, str], float | None] = {}
        self._tok_sinks: dict[tuple[str, str], RecordSink] = {}
        self._texty: dict[str, bool] = {}

    def _sink(self, col: str, kind: str) -> RecordSink:
        return self._sinks.setdefault((col, kind), RecordSink())

    def _columns(self, batch: pa.RecordBatch) -> list[str]:
        ctx = self.context
        skip = {ctx.options.label} | set(ctx.options.group)
        return [n for n in batch.schema.names if is_string(batch.column(n).type) and n not in skip]

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record this batch's rows with Unicode signals (only cells with a
        non-ASCII character are examined) and count tokens in text-like columns.
        """
        for name in self._columns(batch):
            arr = batch.column(name)
            self._n_text[name] = self._n_text.get(name, 0) + len(arr) - arr.null_count
            nonascii = np.flatnonzero(regex_mask(arr, r"[^\x00-\x7f]"))
            if nonascii.size:  # every signal but odd tokens needs a non-ASCII character
                sub = pc.take(arr, pa.array(nonascii))
                self._unicode_signals(name, sub, nonascii + offset)
            if name not in self._texty:
                n_valid = len(arr) - arr.null_count
                if few_distinct(arr) and n_valid:  # tokens of the distinct values, weighted by their counts
                    enc = encoded(arr)
                    per_value = pc.list_value_length(tokenize(enc.dictionary)).to_numpy(zero_copy_only=False)
                    mean = float(np.dot(np.asarray(per_value, dtype=np.int64), enc.counts)) / n_valid
                else:
                    toks = tokenize(arr)
                    mean = (pc.mean(pc.list_value_length(toks)).as_py() or 0.0) if len(arr) else 0.0
                self._texty[name] = mean >= 3
            if self._texty[name]:
                self._count_tokens(name, arr)

    def _unicode_signals(self, name: str, sub: pa.Array, rows: np.ndarray) -> None:
        def add(kind: str, mask: np.ndarray) -> None:
            sink = self._sink(name, kind)
            for r in rows[mask].tolist():
                sink.add(int(r))

        add("invisible", bool_mask(pc.match_substring_regex(sub, INVISIBLE)))
        add("homoglyph", bool_mask(pc.match_substring_regex(sub, HOMOGLYPH)))
        for kind, rx in OBFUSCATION.items():
            add(kind, bool_mask(pc.match_substring_regex(sub, rx)))
        counts = self._scripts.setdefault(name, {})
        for script in SCRIPTS:
            if script == "Latin":
                continue
            mask = bool_mask(pc.match_substring_regex(sub, r"\p{" + script + "}"))
            if mask.any():
                counts[script] = counts.get(script, 0) + int(mask.sum())
                sink = self._script_sinks.setdefault((name, script), RecordSink())
                for r in rows[mask].tolist():
                    sink.add(int(r))

    def _count_tokens(self, name: str, arr: pa.Array) -> None:
        vc = pc.value_counts(pc.drop_null(arr))
        distinct = vc.field("values")
        weights = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
        toks = tokenize(distinct)
        flat = pc.list_flatten(toks)
        parents = np.asarray(pc.list_parent_indices(toks).to_numpy(zero_copy_only=False), dtype=np.int64)
        self._tok_total[name] = self._tok_total.get(name, 0) + int(weights[parents].sum())
        lengths = pc.utf8_length(flat)
        keep = bool_mask(pc.and_(pc.greater(lengths, 1), pc.less_equal(lengths, 8)))
        if not keep.any():
            return
        table = pa.table({"t": pc.filter(flat, pa.array(keep)), "w": weights[parents[keep]]})
        grouped = table.group_by("t", use_threads=False).aggregate([("w", "sum")])
        tc = self._tokens.setdefault(name, {})
        for v, c in zip(grouped.column("t").to_pylist(), grouped.column("w_sum").to_pylist(), strict=True):
            if is_odd_token(v):
                tc[v] = tc.get(v, 0) + int(c)
        if len(tc) > _MAX_TRACKED:
            self._tokens[name] = dict(sorted(tc.items(), key=lambda kv: -kv[1])[: _MAX_TRACKED // 2])

    def wants_second_pass(self) -> bool:
        """Pick up to ten recurring odd tokens per column that are not explained by the baseline (binomial
        test, Bonferroni-adjusted); True when there are any, so their records are found in a second pass.
        """
        from scipy.stats import binom

        n = self.context.n_records
        threshold = max(5, 0.001 * n)
        bl = self.context.baseline
        for name, tc in self._tokens.items():
            base = bl.profile.columns.get(name) if bl is not None else None
            candidates = [
                (tok, c)
                for tok, c in sorted(tc.items(), key=lambda kv: -kv[1])
                if threshold <= c < _TEMPLATE_SHARE * n  # recurring, but not the column's template
            ]
            odd = []
            for tok, c in candidates:
                p_adj: float | None = None
                if base is not None and base.n_tokens:
                    # a token dropped from the baseline's top list occurred at most tokens_dropped_max times
                    b = base.tokens.get(tok, base.tokens_dropped_max)
                    rate = (b + 1.0) / (base.n_tokens + 1.0)
                    total = max(self._tok_total.get(name, 0), c)
                    p_adj = min(1.0, float(binom.sf(c - 1, total, rate)) * max(1, len(candidates)))
                    if p_adj > 0.05:
                        continue  # as common as in the trusted baseline: not a new odd token
                self._odd_p[(name, tok)] = p_adj
                odd.append(tok)
                if len(odd) >= 10:
                    break
            if odd:
                self._odd[name] = odd
                for tok in odd:
                    self._tok_sinks[(name, tok)] = RecordSink()
        return bool(self._odd)

    def update_second(self, batch: pa.RecordBatch, offset: int) -> None:
        """Second pass: record the rows of this batch that contain each odd token as a whole word."""
        for name, toks in self._odd.items():
            if name not in batch.schema.names:
                continue
            lowered = pc.utf8_lower(batch.column(name))
            for tok in toks:
                rx = r"(^|[^\pL\pN_])" + re.escape(tok) + r"($|[^\pL\pN_])"
                self._tok_sinks[(name, tok)].add_mask(bool_mask(pc.match_substring_regex(lowered, rx)), offset)

    def finish(self) -> CheckResult:
        """One finding per column and Unicode signal (severity by the kind of signal, lowered when rare), one
        LOW finding per unusual script, and one per column for its odd tokens.
        """
        n = max(self.context.n_records, 1)
        findings: list[Finding] = []
        labels = {
            "invisible": ("invisible or bidirectional-control characters", Severity.HIGH),
            "homoglyph": ("words mixing Latin with Cyrillic/Greek letters (homoglyphs)", Severity.HIGH),
            "math_alphanumeric": ("mathematical alphanumeric letters (obfuscation)", Severity.MEDIUM),
            "enclosed_alphanumeric": ("enclosed alphanumerics (obfuscation)", Severity.LOW),
            "fullwidth": ("fullwidth Latin forms (obfuscation)", Severity.LOW),
            "private_use": ("private-use code points", Severity.MEDIUM),
        }
        for (col, kind), sink in sorted(self._sinks.items()):
            if not sink.count:
                continue
            what, sev = labels[kind]
            share = sink.count / n
            if sev == Severity.HIGH and share < 0.0005 and sink.count < 5:
                sev = Severity.MEDIUM
            findings.append(
                Finding(
                    self.name,
                    kind,
                    sev,
                    f"{sink.count} record(s) of {col!r} ({fmt_share(share)}) carry {what}",
                    sink.tuple,
                    {"column": col, "n_records": sink.count, "share": share},
                )
            )
        for col, counts in self._scripts.items():
            total = max(self._n_text.get(col, 0), 1)
            if not counts:
                continue
            latin = total - sum(counts.values())  # rows with no other script are (mostly) Latin/ASCII
            main = max(counts, key=lambda s: counts[s])
            if latin > counts[main]:
                main, main_count = "Latin", latin
            else:
                main_count = counts[main]
            if main_count / total < 0.5:
                continue
            for script, c in counts.items():
                if script != main and c / total < 0.05:
                    sink = self._script_sinks[(col, script)]
                    findings.append(
                        Finding(
                            self.name,
                            "unusual_script",
                            Severity.LOW,
                            f"{c} record(s) of {col!r} use {script} script while {main} dominates",
                            sink.tuple,
                            {"column": col, "script": script, "dominant": main, "n_records": c},
                        )
                    )
        for col, toks in self._odd.items():
            recs = sorted({r for t in toks for r in self._tok_sinks[(col, t)].records})
            detail = {short(t, 12): self._tok_sinks[(col, t)].count for t in toks}
            levels = [
                severity_of_evidence(self._odd_p[(col, t)], self._tok_sinks[(col, t)].count / n, cap="high")
                if self._odd_p[(col, t)] is not None
                else "low"  # no null to test a frequency against without a baseline
                for t in toks
            ]
            sev = max((Severity(v) for v in levels), key=lambda v: v.rank)
            findings.append(
                Finding(
                    self.name,
                    "odd_tokens",
                    sev,
                    f"odd short tokens recur in {col!r}: "
                    + ", ".join(f"{t!r} ({c})" for t, c in list(detail.items())[:6]),
                    tuple(recs[:1000]),
                    {
                        "column": col,
                        "tokens": detail,
                        "n_records": int(np.sum(list(detail.values()))),
                        "p_values": {short(t, 12): self._odd_p[(col, t)] for t in toks},
                    },
                )
            )
        return CheckResult(self.name, tuple(findings), {"scripts": self._scripts})
