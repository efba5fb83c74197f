"""Text backdoor triggers: word n-grams that are rare overall yet almost always come with one label.

A dirty-label text backdoor inserts a trigger (a rare token such as ``cf``, or a phrase) into a few records
and relabels them to the attacker's target class. A model then learns the shortcut "trigger -> target". The
data carry two marks of that: the trigger n-gram is (nearly) label-pure, and the rest of each carrier's text
says otherwise (a spam message relabelled ham still reads as spam). Natural predictive words ("prize",
"excellent") are also label-pure, but their carriers' remaining text agrees with the label.

The test, per n-gram ``g`` (1..3 tokens, counted once per distinct text):

1. support: ``g`` occurs in at least ``min_support`` distinct texts and in at most ``max_fraction`` of them;
2. purity: at least ``min_purity`` of its carriers share one label ``c`` (the target; 0.5 for this detector,
   :data:`TRIGGER_PURITY`: the screen only chooses what is tested, the bound below counts every n-gram);
3. contradiction: an out-of-fold Bernoulli naive Bayes model of "label is c" reads each carrier *with the tokens of
   ``g`` removed*; ``k`` carriers labelled ``c`` are confidently read as not-``c`` (odds of at least 4:1:
   removing an ordinary predictive word leaves a short text merely uninformative, not contradicting).
   Under the null hypothesis (``g`` is an ordinary word) ``k ~ Binomial(hits, q0)``, where ``q0`` is the
   rate at which records labelled ``c`` are so read from their full text. The one-sided binomial p-value
   must pass a Bonferroni bound ``alpha / m`` over all ``m`` n-grams tested, and at least
   ``min_contradiction`` of the carriers must be contradicted.

Significant n-grams whose carriers overlap are merged into one finding; the trigger is extended left and
right to the maximal phrase its carriers share (a multi-token trigger inserted anywhere in the text).

An n-gram whose carriers with *other* labels also read as the target once it is removed turns a text's
meaning ('not') rather than triggering a label, and is dropped (the flip null). Of a trigger found anywhere
in the text, the carriers with the target where it fits its place (against random insertions of it) and
whose text reads as the target without it are natural carriers: kept in the finding, not flagged
(:mod:`dataward.detect._fluency`; docs/adr/0113).

Above ``max_units`` distinct texts (100,000) the search runs on a seeded uniform sample of them: the
test, its null and its Bonferroni bound are the sample's (the sample is independent of the data, so the
null holds unchanged, and ``m`` counts the n-grams searched there); every record of the whole data that
carries a trigger found there is flagged. The parameters say so (``sampled``); ADR 0076. The
module also holds the mining engine that :mod:`dataward.detect._instruction` reuses with response patterns in
place of class labels.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse, stats

from dataward.detect import _fluency
from dataward.detect._findings import mark_carriers
from dataward.detect.interface import (
    BoolArray,
    Detector,
    DetectorResult,
    Finding,
    FloatArray,
    IntArray,
    Modality,
    Representation,
)
from dataward.detect.registry import register

# A URL is one token; otherwise words (with inner apostrophes) and runs of punctuation/symbols.
_TOKEN_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|[^\W_]+(?:['’][^\W_]+)*|[^\w\s]+", re.UNICODE)
_MAX_PHRASE = 16


def tokenize_text(text: str) -> list[str]:
    """Lower-cased tokens of ``text``: URLs whole, words, and runs of punctuation or symbols."""
    return _TOKEN_RE.findall(text.lower())


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """The tokens of :func:`tokenize_text` with their character offsets ``[start, end)`` in ``text``."""
    low = text.lower()
    if len(low) == len(text):
        return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(low)]
    # a few characters change length when lower-cased ("İ"): map lowered offsets back per character
    pieces = [c.lower() for c in text]
    origin = np.repeat(np.arange(len(text)), [len(p) for p in pieces])
    low = "".join(pieces)
    ends = np.append(origin, len(text))
    return [(m.group(), int(ends[m.start()]), int(ends[m.end() - 1]) + 1) for m in _TOKEN_RE.finditer(low)]


def locate_phrase(text: str, phrase: Sequence[str], anchor: str | None = None) -> tuple[int, int] | None:
    """Character span of the first occurrence of the token sequence ``phrase`` in ``text``, if any; with
    ``anchor`` "start" or "end", only an occurrence that opens or closes the text's tokens."""
    toks = token_spans(text)
    n = len(phrase)
    first = len(toks) - n if anchor == "end" else 0
    last = 0 if anchor == "start" else len(toks) - n
    for i in range(max(first, 0), last + 1):
        if all(toks[i + j][0] == phrase[j] for j in range(n)):
            return toks[i][1], toks[i + n - 1][2]
    return None


def verbatim(
    texts: Sequence[str], records: Sequence[int], phrase: Sequence[str], anchor: str | None = None
) -> tuple[str, dict[int, list[int]]]:
    """The trigger exactly as it is written in the data (its most common original form) and each record's span."""
    forms: Counter[str] = Counter()
    spans: dict[int, list[int]] = {}
    for r in records:
        span = locate_phrase(texts[r], phrase, anchor)
        if span is not None:
            spans[int(r)] = [span[0], span[1]]
            forms[texts[r][span[0] : span[1]]] += 1
    return (forms.most_common(1)[0][0] if forms else " ".join(phrase)), spans


# ------------------------------------------------------------------------------------------ the corpus


@dataclass(frozen=True, eq=False)
class Corpus:
    """Token-id sequences of ``n_docs`` documents, stored flat (document ``d`` is ``ids[starts[d]:starts[d+1]]``)."""

    words: tuple[str, ...]
    ids: IntArray
    starts: IntArray

    @property
    def n_docs(self) -> int:
        return len(self.starts) - 1

    def doc(self, d: int) -> IntArray:
        return self.ids[self.starts[d] : self.starts[d + 1]]

    def phrase(self, tokens: Sequence[int]) -> str:
        return " ".join(self.words[t] for t in tokens)

    def incidence(self) -> sparse.csr_matrix:
        """Binary document x token matrix."""
        rows = np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(self.starts))
        mat = sparse.csr_matrix(
            (np.ones(len(self.ids), dtype=np.float64), (rows, self.ids)), shape=(self.n_docs, len(self.words))
        )
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat

    def subset(self, docs: IntArray) -> tuple[Corpus, IntArray]:
        """The documents ``docs`` (in that order) as a corpus of their own, and its token ids' ids in this one.

        The subset's vocabulary is the tokens it holds (``words[i]`` of the subset is ``words[old[i]]`` here).
        """
        lens = np.diff(self.starts)[docs]
        ids = self.ids[_ranges(self.starts[docs], lens)]
        old, new_ids = np.unique(ids, return_inverse=True)
        starts = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lens, out=starts[1:])
        words = tuple(self.words[t] for t in old.tolist())
        return Corpus(words, new_ids.astype(np.int64).ravel(), starts), old.astype(np.int64)

    def phrase_docs(self, phrase: Sequence[int]) -> IntArray:
        """The documents (sorted) whose token sequence contains ``phrase`` (one pass over the tokens)."""
        n = len(phrase)
        if n == 0 or len(self.ids) < n:
            return np.zeros(0, dtype=np.int64)
        pos = np.flatnonzero(self.ids[: len(self.ids) - n + 1] == phrase[0])
        for j in range(1, n):
            pos = pos[self.ids[pos + j] == phrase[j]]
        doc = np.searchsorted(self.starts, pos, side="right") - 1
        inside = pos + n <= self.starts[doc + 1]
        return np.unique(doc[inside]).astype(np.int64)

    def edge_docs(self, phrase: Sequence[int], anchor: str) -> IntArray:
        """The documents (sorted) whose token sequence opens (``anchor`` "start") or closes ("end") with
        ``phrase``."""
        n = len(phrase)
        lens = np.diff(self.starts)
        docs = np.flatnonzero(lens >= n)
        if n == 0 or docs.size == 0:
            return docs.astype(np.int64)
        first = self.starts[docs] if anchor == "start" else self.starts[docs + 1] - n
        ok = np.ones(docs.size, dtype=bool)
        for j in range(n):
            ok &= self.ids[first + j] == phrase[j]
        return docs[ok].astype(np.int64)

    def word_docs(self, words: Sequence[int]) -> IntArray:
        """The documents (sorted) that hold every token of ``words``, anywhere."""
        if len(words) == 0:
            return np.arange(self.n_docs, dtype=np.int64)
        out: IntArray | None = None
        for w in words:
            pos = np.flatnonzero(self.ids == w)
            docs = np.unique(np.searchsorted(self.starts, pos, side="right") - 1).astype(np.int64)
            out = docs if out is None else np.intersect1d(out, docs, assume_unique=True)
        assert out is not None
        return out


def build_corpus(texts: Sequence[str], *, joined: bool = False) -> Corpus:
    """Token ids of ``texts``; with ``joined``, the texts are already tokens joined by single spaces."""
    vocab: dict[str, int] = {}
    flat: list[int] = []
    starts = [0]
    for text in texts:
        toks = (text.split(" ") if text else []) if joined else tokenize_text(text)
        flat.extend(vocab.setdefault(tok, len(vocab)) for tok in toks)
        starts.append(len(flat))
    words = [""] * len(vocab)
    for word, idx in vocab.items():
        words[idx] = word
    return Corpus(tuple(words), np.asarray(flat, dtype=np.int64), np.asarray(starts, dtype=np.int64))


class UnitIndex:
    """Maps units (distinct records) back to the records they stand for (``record_unit[i] = -1``: none)."""

    def __init__(self, record_unit: IntArray, n_units: int) -> None:
        self._order = np.argsort(record_unit, kind="stable")
        self._bounds = np.searchsorted(record_unit[self._order], np.arange(n_units + 1))

    def records(self, units: IntArray) -> IntArray:
        if len(units) == 0:
            return np.zeros(0, dtype=np.int64)
        parts = [self._order[self._bounds[u] : self._bounds[u + 1]] for u in units.tolist()]
        return np.sort(np.concatenate(parts)).astype(np.int64)


def dedupe(keys: Sequence[Any]) -> tuple[IntArray, list[int]]:
    """Map each record to a unit (its first equal record); return ``unit_of`` and each unit's first record."""
    first: dict[Any, int] = {}
    unit_of = np.empty(len(keys), dtype=np.int64)
    reps: list[int] = []
    for i, key in enumerate(keys):
        unit = first.get(key)
        if unit is None:
            unit = first[key] = len(reps)
            reps.append(i)
        unit_of[i] = unit
    return unit_of, reps


@dataclass(frozen=True, eq=False)
class TextUnits:
    """The distinct labelled texts of a representation (units), tokenised once for every text miner.

    ``corpus`` holds one document per unit; ``unit_labels`` their labels; ``record_unit[i]`` is record
    ``i``'s unit (-1: no label); ``records_of`` maps units back to records.
    """

    corpus: Corpus
    unit_labels: IntArray
    record_unit: IntArray
    records_of: UnitIndex


_UNITS_LOCK = threading.Lock()
_UNITS_LAST: list[tuple[Sequence[str], IntArray, TextUnits]] = []  # the last texts seen: both miners read them


def text_units(texts: Sequence[str], labels: IntArray) -> TextUnits:
    """Tokenise and deduplicate (text, label) pairs; the last result is kept for the next miner on the same texts.

    Tokenising is the largest fixed cost of a text miner (seconds at 100k texts); ``text_triggers`` and
    ``text_combos`` read the same representation one after the other, so the second reuses the first's units
    (the same ``texts`` object and equal labels; one entry, so memory stays bounded).
    """
    with _UNITS_LOCK:
        for seen, seen_labels, units in _UNITS_LAST:
            if seen is texts and np.array_equal(seen_labels, labels):
                return units
    known = labels >= 0
    keys = [
        (" ".join(tokenize_text(t)), int(lab)) if ok else ("\0missing", i)
        for i, (t, lab, ok) in enumerate(zip(texts, labels, known, strict=True))
    ]
    unit_of, reps = dedupe(keys)
    rep_idx = np.asarray(reps, dtype=np.int64)
    unit_ids = np.flatnonzero(known[rep_idx])
    corpus = build_corpus([str(keys[int(rep_idx[u])][0]) for u in unit_ids], joined=True)
    corpus_unit_of = np.full(len(reps), -1, dtype=np.int64)
    corpus_unit_of[unit_ids] = np.arange(len(unit_ids))
    record_unit = corpus_unit_of[unit_of]
    units = TextUnits(corpus, labels[rep_idx[unit_ids]], record_unit, UnitIndex(record_unit, len(unit_ids)))
    with _UNITS_LOCK:
        _UNITS_LAST[:] = [(texts, labels.copy(), units)]
    return units


#: the text miners search at most this many distinct texts: above it, a seeded sample of them (ADR 0076)
MAX_UNITS = 100_000
#: off: testing every candidate also at even odds (each test at half the bound) finds more weakly contradicted
#: triggers in short texts, but raised triggers on clean synthetic reviews: without its one label word a
#: review of ordinary words is a coin toss at even odds, so a label word's carriers are contradicted about
#: half the time (docs/adr/0111; with the null of ADR 0114, 33 findings on 40 clean seeds, 0 at 4:1)
SECOND_MARGIN = False
#: a phrase is tested against what its words do apart: the null rate is at least that of texts holding them all
#: without the phrase, the same words taken out (ADR 0114)
PARTS_NULL = True
#: a trigger found anywhere in the text leaves unflagged the carriers where it fits its place and whose text
#: reads as the target without it (docs/adr/0113)
NATURAL_CARRIERS = True
#: the share of a candidate's carriers with the target that makes it a candidate for the contradiction test
TRIGGER_PURITY = 0.5
#: ... and whose target rate exceeds the base rate at this one-sided binomial level (ADR 0113)
TRIGGER_ASSOCIATION = 0.01


def unit_sample(n_units: int, max_units: int, seed: int) -> IntArray | None:
    """A seeded, sorted, uniform sample of ``max_units`` of ``n_units`` units, or ``None`` when all fit.

    The sample depends only on ``(n_units, max_units, seed)``, never on the texts or their labels, so a
    test run on it is a test on a random subset of the data (its null distributions hold unchanged), and
    both text miners of one run search the same units.
    """
    if n_units <= max_units:
        return None
    rng = np.random.default_rng([seed, 76])  # a stream of its own: the miners' fold assignment uses ``seed``
    return np.sort(rng.choice(n_units, size=max_units, replace=False)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SearchedUnits:
    """The units a text miner searches: every unit, or a seeded sample of them above ``max_units``.

    ``corpus`` and ``unit_labels`` are the searched units', ``targets`` their one-hot labels; ``sample`` the
    searched units' ids among all (``None``: all searched) and ``to_full`` the sample's token ids' ids in
    ``full``; the carriers of a trigger found on a sample come from ``full``.
    """

    full: Corpus
    corpus: Corpus
    unit_labels: IntArray
    targets: Any
    sample: IntArray | None
    to_full: IntArray | None


def searched_units(
    shared: TextUnits, n_classes: int, max_units: int, seed: int, params_out: dict[str, Any]
) -> SearchedUnits:
    """The units to search (:func:`unit_sample`), noting a sample and the counts in ``params_out``."""
    full = shared.corpus
    sample = unit_sample(full.n_docs, max_units, seed)
    to_full: IntArray | None = None
    if sample is None:
        corpus, unit_labels = full, shared.unit_labels
    else:
        corpus, to_full = full.subset(sample)
        unit_labels = shared.unit_labels[sample]
        params_out["sampled"] = sampled_note(full.n_docs, max_units)
    params_out["units_searched"], params_out["units"] = corpus.n_docs, full.n_docs
    n_units = len(unit_labels)
    targets = sparse.csc_matrix((np.ones(n_units), (np.arange(n_units), unit_labels)), shape=(n_units, n_classes))
    return SearchedUnits(full, corpus, unit_labels, targets, sample, to_full)


def check_max_units(value: Any) -> int:
    """``max_units`` as an int (a TypeError, reported as a bad detector parameter, when it is not >= 1,000)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1_000:
        raise TypeError(f"max_units must be an integer >= 1000, not {value!r}")
    return int(value)


def sampled_note(n_units: int, max_units: int) -> str:
    """What a miner that searched a sample says about it (in its parameters, hence the report)."""
    return (
        f"searched a seeded sample of {max_units:,} of {n_units:,} distinct texts (above max_units the search "
        f"does not pay for itself); every record carrying a trigger found there is flagged"
    )


# ------------------------------------------------------------------------------------ n-gram incidence


@dataclass(frozen=True, eq=False)
class NgramTable:
    """The n-grams that passed the support filter: their tokens and a binary unit x n-gram matrix."""

    tokens: tuple[tuple[int, ...], ...]
    matrix: sparse.csc_matrix  # (n_units, n_ngrams)
    support: IntArray


def ngram_table(corpus: Corpus, *, n_max: int, min_support: int, max_support: int) -> NgramTable:
    """All 1..n_max-grams occurring in ``min_support``..``max_support`` documents (counted once each)."""
    ids, starts = corpus.ids, corpus.starts
    doc_of = np.repeat(np.arange(corpus.n_docs, dtype=np.int64), np.diff(starts))
    end_of = np.repeat(starts[1:], np.diff(starts))
    vocab = max(len(corpus.words), 1)
    token_lists: list[tuple[int, ...]] = []
    row_parts: list[IntArray] = []
    col_parts: list[IntArray] = []
    supports: list[IntArray] = []
    offset = 0
    for n in range(1, n_max + 1):
        if len(ids) < n:
            break
        valid = np.arange(len(ids) - n + 1, dtype=np.int64)
        valid = valid[valid + n <= end_of[: len(valid)]]
        if len(valid) == 0:
            break
        keys = np.zeros(len(valid), dtype=np.int64)
        exact = vocab**n < 2**62
        for j in range(n):
            if exact:
                keys = keys * vocab + ids[valid + j]
            else:  # very large vocabularies: a 64-bit mixing hash (collisions are negligible)
                keys = (keys * np.int64(1_000_003) + ids[valid + j] + 1) & np.int64(2**62 - 1)
        docs = doc_of[valid]
        order = np.lexsort((docs, keys))
        keys_s, docs_s, pos_s = keys[order], docs[order], valid[order]
        keep = np.ones(len(keys_s), dtype=bool)
        keep[1:] = (keys_s[1:] != keys_s[:-1]) | (docs_s[1:] != docs_s[:-1])
        keys_s, docs_s, pos_s = keys_s[keep], docs_s[keep], pos_s[keep]
        bounds = np.flatnonzero(np.r_[True, keys_s[1:] != keys_s[:-1], True])
        counts = np.diff(bounds)
        ok = (counts >= min_support) & (counts <= max_support)
        if not ok.any():
            continue
        group = np.repeat(np.arange(len(counts)), counts)
        sel_groups = np.flatnonzero(ok)
        new_index = np.full(len(counts), -1, dtype=np.int64)
        new_index[sel_groups] = np.arange(len(sel_groups)) + offset
        mask = ok[group]
        row_parts.append(docs_s[mask])
        col_parts.append(new_index[group[mask]])
        supports.append(counts[ok].astype(np.int64))
        first_pos = pos_s[bounds[:-1][ok]]
        token_lists.extend(tuple(int(t) for t in ids[p : p + n]) for p in first_pos)
        offset += len(sel_groups)
    if offset == 0:
        return NgramTable((), sparse.csc_matrix((corpus.n_docs, 0)), np.zeros(0, dtype=np.int64))
    rows = np.concatenate(row_parts)
    cols = np.concatenate(col_parts)
    mat = sparse.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(corpus.n_docs, offset))
    return NgramTable(tuple(token_lists), mat, np.concatenate(supports))


@dataclass(frozen=True, eq=False)
class PositionalTable:
    """An n-gram table with positional candidates appended: n-grams that open or close their documents.

    ``anchors[g]`` is None for an ordinary n-gram (anywhere in a text), "start" or "end" for one counted
    only where it opens or closes a text. A trigger inserted at a fixed place (the usual prefix or suffix
    backdoor) is label-pure there even when the word also occurs naturally elsewhere in the texts; its
    natural carriers are then not flagged with it (docs/adr/0110-positional-text-triggers.md).
    """

    table: NgramTable
    anchors: tuple[str | None, ...]


def positional_table(
    base: NgramTable, corpus: Corpus, *, n_max: int, min_support: int, max_support: int
) -> PositionalTable:
    """``base`` with every 1..n_max-gram that opens (or closes) ``min_support``..``max_support`` documents
    appended as a candidate of its own, unless it does so in every document that holds it (then it is the
    ordinary n-gram again: one hypothesis, tested once)."""
    lens = np.diff(corpus.starts)
    general = {tok: int(sup) for tok, sup in zip(base.tokens, base.support.tolist(), strict=True)}
    tokens: list[tuple[int, ...]] = []
    anchors: list[str | None] = []
    cols: list[IntArray] = []
    for anchor in ("start", "end"):
        for n in range(1, n_max + 1):
            docs = np.flatnonzero(lens >= n)
            if docs.size < min_support:
                break
            first = corpus.starts[docs] if anchor == "start" else corpus.starts[docs + 1] - n
            grams = np.stack([corpus.ids[first + j] for j in range(n)], axis=1)
            keys, inverse, counts = np.unique(grams, axis=0, return_inverse=True, return_counts=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            bounds = np.r_[0, np.cumsum(counts)]
            for k in np.flatnonzero((counts >= min_support) & (counts <= max_support)).tolist():
                tok = tuple(int(t) for t in keys[k])
                if general.get(tok, -1) == int(counts[k]):
                    continue  # every carrier holds it there: the same candidate as the ordinary n-gram
                tokens.append(tok)
                anchors.append(anchor)
                cols.append(docs[order[bounds[k] : bounds[k + 1]]])
    if not tokens:
        return PositionalTable(base, (None,) * len(base.tokens))
    rows = np.concatenate(cols)
    col_ids = np.repeat(np.arange(len(cols)), [len(c) for c in cols])
    extra = sparse.csc_matrix((np.ones(len(rows)), (rows, col_ids)), shape=(corpus.n_docs, len(cols)))
    table = NgramTable(
        (*base.tokens, *tokens),
        sparse.hstack([base.matrix, extra], format="csc"),
        np.concatenate([base.support, np.asarray([len(c) for c in cols], dtype=np.int64)]),
    )
    return PositionalTable(table, (None,) * len(base.tokens) + tuple(anchors))


# ---------------------------------------------------------------------------------- the mining engine


@dataclass(frozen=True)
class Association:
    """An n-gram ``g`` whose carriers almost all have target ``t`` while their other content says otherwise."""

    ngram: int  # index into NgramTable.tokens
    target: int  # column of the target matrix
    support: int  # distinct units carrying g
    hits: int  # carriers with the target
    contradicted: int  # carriers with the target that the content model, without g, reads as not-target
    independent: int  # carriers with the target, counting near-duplicate contexts once (the test's n)
    base_rate: float  # share of all units with the target
    null_rate: float  # q0: share of target units the content model reads as not-target from full content
    p_value: float
    threshold: float  # Bonferroni bound alpha / m (alpha * w / m with a weight w for the candidate)
    units: IntArray  # carrier units (all, with and without the target)
    rate_without: float = 0.0  # share of units without g that have the target
    margin: float = math.log(4.0)  # "contradicted": read as not-target by these log-odds (MiningParams.margin)

    @property
    def lift(self) -> float:
        """How many times likelier the target is with g than without it."""
        return (self.hits / max(1, self.support)) / max(self.rate_without, 1e-12)


@dataclass(frozen=True)
class MiningParams:
    n_max: int = 3
    min_support: int = 5
    max_fraction: float = 0.1
    min_purity: float = 0.9
    min_contradiction: float = 0.3
    shared_fraction: float = 0.8  # tokens this share of a candidate's carriers hold are removed with it
    min_rest: int = 2  # carriers need this many remaining (non-singleton) tokens to count as contradicted
    max_context_sample: int = 400  # carriers compared pairwise when counting independent contexts
    margin: float = math.log(4.0)  # "read as not-target": the content model's odds for it are at least 4:1
    alpha: float = 0.01
    folds: int = 5
    smoothing: float = 0.1
    model: str = "multinomial"  # the content model: "multinomial" or "bernoulli" naive Bayes
    test: str = "contradiction"  # or "association" (target rate with g vs without it; needs min_lift)
    min_lift: float = 10.0  # association test only
    null_floor: float = 0.01
    #: a candidate's share of carriers with the target must exceed the target's base rate at this one-sided
    #: binomial level (1.0: no such screen; the text-trigger detector uses 0.01 beside its wide purity screen)
    association_level: float = 1.0
    #: ... asked only of candidates below this purity
    association_below: float = 0.9

    def __post_init__(self) -> None:
        """Reject bad values early (a TypeError: the API reports it as bad detector parameters)."""
        ints = {"n_max": 1, "min_support": 2, "min_rest": 0, "max_context_sample": 2, "folds": 2}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise TypeError(f"{name} must be an integer >= {low}, not {value!r}")
        fractions = (
            "max_fraction",
            "min_purity",
            "min_contradiction",
            "shared_fraction",
            "alpha",
            "null_floor",
            "association_level",
            "association_below",
        )
        for name in fractions:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise TypeError(f"{name} must be a number in (0, 1], not {value!r}")
        for name in ("margin", "smoothing", "min_lift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise TypeError(f"{name} must be a number >= 0, not {value!r}")
        if self.model not in ("multinomial", "bernoulli"):
            raise TypeError(f"model must be 'multinomial' or 'bernoulli', not {self.model!r}")
        if self.test not in ("contradiction", "association"):
            raise TypeError(f"test must be 'contradiction' or 'association', not {self.test!r}")


@dataclass(frozen=True, eq=False)
class MiningResult:
    associations: tuple[Association, ...]  # those that passed the test before near-duplicates were merged
    table: NgramTable
    n_tested: int
    #: per unit, weak evidence below the flag line: the strongest candidate it carries with the target
    weak: FloatArray = field(default_factory=lambda: np.zeros(0))


def fold_log_odds(
    x: sparse.csr_matrix, y: BoolArray, folds: IntArray, n_folds: int, smoothing: float, model: str = "bernoulli"
) -> tuple[FloatArray, FloatArray]:
    """Out-of-fold Bernoulli naive Bayes for ``y``: per-unit log-odds and per-fold token weights.

    Bernoulli (document-frequency) estimates stay calibrated when the target is rare, where the
    multinomial model's smoothing makes every word of a small class look like evidence against it.
    The weight of token ``w`` is the change of log-odds between "``w`` present" and "``w`` absent", so
    removing a token from a unit subtracts exactly its weight.
    """
    weights = np.zeros((n_folds, x.shape[1]))
    offset = np.zeros(n_folds)
    xt = x.T.tocsr()
    for f in range(n_folds):
        train = folds != f
        pos = (train & y).astype(np.float64)
        neg = (train & ~y).astype(np.float64)
        n1, n0 = pos.sum(), neg.sum()
        c1, c0 = np.asarray(xt @ pos).ravel(), np.asarray(xt @ neg).ravel()
        if model == "multinomial":
            v = x.shape[1]
            weights[f] = np.log(c1 + smoothing) - math.log(c1.sum() + smoothing * v)
            weights[f] -= np.log(c0 + smoothing) - math.log(c0.sum() + smoothing * v)
            offset[f] = math.log((n1 + 1.0) / (n0 + 1.0))
            continue
        p1 = (c1 + smoothing) / (n1 + 2 * smoothing)
        p0 = (c0 + smoothing) / (n0 + 2 * smoothing)
        absent = np.log1p(-p1) - np.log1p(-p0)
        weights[f] = np.log(p1) - np.log(p0) - absent
        offset[f] = math.log((n1 + 1.0) / (n0 + 1.0)) + float(absent.sum())
    log_odds = offset[folds].copy()
    for f in range(n_folds):
        rows = np.flatnonzero(folds == f)
        log_odds[rows] += x[rows] @ weights[f]
    return log_odds, weights


def mine(
    corpus: Corpus,
    targets: sparse.csc_matrix,
    params: MiningParams,
    *,
    seed: int = 0,
    table: NgramTable | None = None,
    n_hypotheses: int | None = None,
    expected_other: FloatArray | None = None,
    matched_null: bool = False,
    weights: FloatArray | None = None,
    length_null: bool = False,
    part_null: bool = False,
    refit_null: bool = False,
    flip_null: bool = False,
) -> MiningResult:
    """Find n-grams of ``corpus`` (one document per unit) that determine a target column of ``targets``.

    ``targets`` is a binary (n_units, n_targets) matrix: class one-hot codes for text, response patterns for
    instruction data. A caller may pass its own candidate ``table`` (e.g. co-occurring token sets, whose
    "tokens" need not be adjacent) with ``n_hypotheses``, the number of candidates it chose them from, so
    that the Bonferroni bound covers the whole search and not only the survivors of its pre-selection.

    ``expected_other`` (per candidate) is a number of off-target carriers the purity screen discounts: for
    a set of words, those that hold them all by chance (the screen only chooses what is tested; the
    Bonferroni bound covers every candidate searched). With ``matched_null``, a candidate's null rate is the larger of
    ``q0`` and, for each of its tokens, the rate at which the target units holding that token but not the
    whole candidate are contradicted once the candidate's removed tokens are taken out: the test then asks
    whether the *combination* is contradicted more than its parts, which a word that is a trigger (or a
    strong label word) on its own is not. Either way (``matched_null`` or ``length_null``) the null rate is at
    least the rate of target units as long as the carriers are without the candidate's tokens (ADR 0106).

    ``part_null`` (with ``length_null``): for a candidate of two or more distinct tokens the null rate is also at
    least the contradiction rate of the target units that hold all its tokens but not the candidate, with
    the same tokens taken out (:func:`_part_rate`). A phrase of a label word and an ordinary one ('price
    terrible') is contradicted as often as texts holding both words apart are, through the other class's
    word some of them hold; against the rate of whole texts (about 0) four such carriers of five were a
    discovery on clean reviews (docs/adr/0114).

    ``refit_null``: a candidate that passes is judged again with the words each carrier's fold never saw
    in training giving no evidence (:func:`_contradicted_by_seen_words`), against the same null rate, and
    must pass that test too (its p-value is the larger of the two; it can only remove findings). Texts made
    of words seen nowhere else otherwise read as the smaller class whatever their label
    (docs/adr/0110-positional-text-triggers.md). Planted carriers read as their source class by the words
    of that class either way.

    ``flip_null``: a candidate that passes is dropped when its carriers *without* the target are pushed
    toward the target by its removal, i.e. read as the target by ``margin`` without its tokens, more often
    than texts without the target read so from their whole content (one-sided binomial, level
    :data:`FLIP_LEVEL`; it can only remove findings). A word that turns a text's meaning ('not') is
    contradicted on both sides: remove it and 'not bad' reads as negative; a trigger's natural carriers
    with other labels read as their own (docs/adr/0113).

    ``weights`` (per candidate, fixed before the labels are read) make the bound a weighted Bonferroni one:
    candidate ``g`` is tested at ``alpha * weights[g] / m``. The family-wise error stays at most ``alpha``
    when the weights of all ``n_hypotheses`` candidates searched (the untested ones included) sum to at
    most ``n_hypotheses``; the caller owes that, and that the weights do not depend on the labels.
    """
    n_units = corpus.n_docs
    if table is None:
        max_support = max(params.min_support, int(params.max_fraction * n_units))
        table = ngram_table(corpus, n_max=params.n_max, min_support=params.min_support, max_support=max_support)
    n_ngrams = len(table.tokens)
    if n_ngrams == 0 or targets.shape[1] == 0:
        return MiningResult((), table, 0, np.zeros(n_units))
    cooc = (table.matrix.T @ targets).tocsr()  # n-grams x targets: carriers with the target
    cooc.eliminate_zeros()
    coo = cooc.tocoo()
    hits = coo.data.astype(np.int64)
    # off-target carriers that chance explains do not count against purity
    chance = expected_other[coo.row] if expected_other is not None else 0.0
    purity = (hits + chance) / table.support[coo.row]
    cand = purity >= params.min_purity
    if params.association_level < 1.0 and cand.any():
        # below the purity a trigger usually has, the target must be likelier with g than in general: under
        # label noise a class word's few carriers with another label are the flipped texts, all contradicted,
        # however weak the word's tie to that label (above it nothing changes: 30 pure carriers of a class of
        # 87 % are no significant association, yet a trigger)
        base_rates = np.asarray(targets.sum(axis=0)).ravel() / max(n_units, 1)
        at = np.flatnonzero(cand & (purity < params.association_below))
        tail = stats.binom.sf(hits[at] - 1, table.support[coo.row[at]], base_rates[coo.col[at]])
        cand[at[tail > params.association_level]] = False
    pair_ngram, pair_target, pair_hits = coo.row[cand], coo.col[cand], hits[cand]
    active_targets = np.unique(pair_target)
    n_tested = (n_hypotheses if n_hypotheses is not None else n_ngrams) * max(1, len(active_targets))
    threshold = params.alpha / n_tested
    # each candidate's own bound (the plain Bonferroni one without weights)
    bounds = threshold * (np.ones(n_ngrams) if weights is None else np.asarray(weights, dtype=np.float64))
    weak = np.zeros(n_units)
    if len(pair_ngram) == 0:
        return MiningResult((), table, n_tested, weak)
    x = corpus.incidence()
    rng = np.random.default_rng(seed)
    n_folds = max(2, min(params.folds, n_units))
    folds = rng.permutation(np.arange(n_units) % n_folds).astype(np.int64)
    targets_csc = targets.tocsc()
    ngram_csc = table.matrix.tocsc()
    # the tokens removed for g: its own, plus every token that most of its carriers share (the rest of a
    # phrase trigger, wherever it sits); template words shared by all records carry no weight anyway
    cand_ngrams = np.unique(pair_ngram)
    rows, rem_tok, rem_full = _removed_tokens(table, ngram_csc, cand_ngrams, x, params.shared_fraction)
    # a token every carrier of g holds (g's own tokens among them) is removed from each without a look-up:
    # its weight enters once per (g, fold); only the tokens most but not all carriers hold are looked up
    cand_pos = np.full(n_ngrams, -1, dtype=np.int64)
    cand_pos[cand_ngrams] = np.arange(len(cand_ngrams))
    full_rows, full_tok = rows[rem_full], rem_tok[rem_full]
    full_bounds = np.searchsorted(full_rows, np.arange(len(cand_ngrams) + 1))  # rows are sorted
    rows, rem_tok = rows[~rem_full], rem_tok[~rem_full]
    counts = np.bincount(rows, minlength=len(cand_ngrams))
    rem_start = np.zeros(n_ngrams, dtype=np.int64)
    rem_len = np.zeros(n_ngrams, dtype=np.int64)
    rem_start[cand_ngrams] = np.r_[0, np.cumsum(counts)[:-1]]
    rem_len[cand_ngrams] = counts
    content = np.asarray(x.sum(axis=0)).ravel() >= 2  # tokens seen in at least two units
    full_content = np.bincount(full_rows, weights=content[full_tok], minlength=len(cand_ngrams))
    part_content = np.bincount(rows, weights=content[rem_tok], minlength=len(cand_ngrams))
    content_cols = np.flatnonzero(content)
    content_count = np.asarray(x[:, content_cols].sum(axis=1)).ravel()
    x_content = x[:, content_cols].tocsr()
    target_count = np.asarray(targets_csc.sum(axis=0)).ravel()
    x.sort_indices()
    x_csc = x.tocsc() if matched_null or part_null else None
    # per fold, the tokens its training units hold (the refit's "seen" words)
    seen = (
        np.stack([np.asarray(x[folds != f].sum(axis=0)).ravel() > 0 for f in range(n_folds)])
        if refit_null
        else np.zeros((n_folds, 0), dtype=bool)
    )
    found: list[Association] = []
    for t in active_targets:
        y = np.zeros(n_units, dtype=bool)
        y[targets_csc.indices[targets_csc.indptr[t] : targets_csc.indptr[t + 1]]] = True
        log_odds, weights = fold_log_odds(x, y, folds, n_folds, params.smoothing, params.model)
        q0 = max(params.null_floor, float(np.mean(log_odds[y] < -params.margin))) if y.any() else 1.0
        q0 = min(q0, 0.999)
        q_flip = max(params.null_floor, float(np.mean(log_odds[~y] > params.margin))) if (~y).any() else 1.0
        by_length = (
            _rate_by_length(log_odds < -params.margin, y, content_count) if matched_null or length_null else None
        )
        full_weight = np.stack(
            [np.bincount(full_rows, weights=weights[f, full_tok], minlength=len(cand_ngrams)) for f in range(n_folds)]
        )
        # the looked-up tokens' weights per (fold, candidate): their negative and positive parts and magnitude
        part = [weights[f, rem_tok] for f in range(n_folds)]
        part_low = np.stack([np.bincount(rows, weights=np.minimum(w, 0.0), minlength=len(cand_ngrams)) for w in part])
        part_high = np.stack([np.bincount(rows, weights=np.maximum(w, 0.0), minlength=len(cand_ngrams)) for w in part])
        part_abs = part_high - part_low
        base = float(y.mean())
        sel = pair_target == t
        for gs, hs in _chunks(pair_ngram[sel], pair_hits[sel], ngram_csc.indptr):
            # every (pair, carrier with the target) entry, then every (entry, removed token) triple
            starts, lens = ngram_csc.indptr[gs], np.diff(ngram_csc.indptr)[gs]
            ent_pair = np.repeat(np.arange(len(gs)), lens)
            ent_unit = ngram_csc.indices[_ranges(starts, lens)].astype(np.int64)
            keep = y[ent_unit]
            ent_pair, ent_unit = ent_pair[keep], ent_unit[keep]
            ent_pos = cand_pos[gs[ent_pair]]
            ent_fold = folds[ent_unit]
            # a carrier is contradicted when, without g's removed tokens, it reads as not-target (odds of
            # margin) and keeps min_rest content tokens; only carriers whose verdict depends on which of the
            # tokens most-but-not-all carriers hold they have are looked up (see _undecided)
            odds = log_odds[ent_unit]
            full_drop = full_weight[ent_fold, ent_pos]
            rest_full = content_count[ent_unit] - full_content[ent_pos]
            contra, look = _undecided(
                odds,
                full_drop,
                rest_full,
                (part_low[ent_fold, ent_pos], part_high[ent_fold, ent_pos], part_abs[ent_fold, ent_pos]),
                part_content[ent_pos],
                params,
            )
            if look.size:  # the exact verdict, as every carrier's was computed before the bounds
                look_unit, look_g = ent_unit[look], gs[ent_pair[look]]
                rlen = rem_len[look_g]
                tri_ent = np.repeat(np.arange(len(look)), rlen)
                tri_tok = rem_tok[_ranges(rem_start[look_g], rlen)]
                tri_unit = look_unit[tri_ent]
                present = _row_contains(x.indptr, x.indices, tri_unit, tri_tok)
                drop_weight = full_drop[look] + np.bincount(
                    tri_ent, weights=np.where(present, weights[folds[tri_unit], tri_tok], 0.0), minlength=len(look)
                )
                drop_content = full_content[ent_pos[look]] + np.bincount(
                    tri_ent, weights=present & content[tri_tok], minlength=len(look)
                )
                removed = odds[look] - drop_weight
                # a carrier with (almost) nothing left but words seen nowhere else gives no evidence either way
                rest = content_count[look_unit] - drop_content
                contra[look] = (removed < -params.margin) & (rest >= params.min_rest)
            ks = np.bincount(ent_pair, weights=contra, minlength=len(gs)).astype(np.int64)
            supports = table.support[gs]
            # the association test's null: the target's rate among units without g (at least 1/n)
            p_outs = np.maximum((target_count[t] - hs) / np.maximum(1, n_units - supports), 1.0 / n_units)
            ps = _tests(params.test, ks, hs, supports, q0, p_outs)
            bound_gs = bounds[gs]
            with np.errstate(divide="ignore"):
                strong = np.clip(np.log10(ps) / (2.0 * np.log10(bound_gs)), 0.0, 1.0)
            np.maximum.at(weak, ent_unit, (0.49 * strong * ks / np.maximum(hs, 1))[ent_pair])
            ent_bounds = np.searchsorted(ent_pair, np.arange(len(gs) + 1))
            for i in np.flatnonzero(ps <= bound_gs).tolist():  # only these can pass the test
                g = int(gs[i])
                bound_g = float(bound_gs[i])
                k, n_on, n_all, p = int(ks[i]), int(hs[i]), int(supports[i]), float(ps[i])
                units = ngram_csc.indices[ngram_csc.indptr[g] : ngram_csc.indptr[g + 1]]
                on = ent_unit[ent_bounds[i] : ent_bounds[i + 1]]
                contra_g = contra[ent_bounds[i] : ent_bounds[i + 1]]
                # the tokens taken out of g's carriers: its own and those most of them share (every null uses them)
                pos = int(cand_pos[g])
                removed_g = np.unique(
                    np.r_[
                        full_tok[full_bounds[pos] : full_bounds[pos + 1]],
                        rem_tok[rem_start[g] : rem_start[g] + rem_len[g]],
                    ]
                ).astype(np.int64)
                p_out = float(p_outs[i])
                hits = n_on
                q_g = q0
                if length_null and not matched_null:
                    assert by_length is not None
                    # a long text is read as another class more often: the null rate of texts this long
                    q_g = max(q0, min(_length_rate(by_length, content_count[on] - len(table.tokens[g])), 0.999))
                    p = _test(params.test, k, n_on, n_all, q_g, p_out)
                    if p > bound_g:
                        continue
                    if part_null and len(set(table.tokens[g])) > 1:
                        assert x_csc is not None
                        q_part = _part_rate(
                            x,
                            x_csc,
                            y,
                            units,
                            table.tokens[g],
                            removed_g,
                            (log_odds, weights, folds),
                            content,
                            content_count,
                            params,
                            q_g,
                        )
                        if q_part > q_g:
                            q_g = q_part
                            p = _test(params.test, k, n_on, n_all, q_g, p_out)
                            if p > bound_g:
                                continue
                if matched_null:
                    assert by_length is not None
                    # a long text is read as another class more often (the content model's evidence grows with
                    # its words), and words that co-occur beyond chance pick long texts: the null is at least the
                    # rate of target texts as long as these carriers are without the candidate's own tokens
                    # (a planted trigger lengthens its carriers by itself; docs/adr/0106)
                    q_start = max(q0, min(_length_rate(by_length, content_count[on] - len(table.tokens[g])), 0.999))
                    q_g = _matched_rate(
                        x,
                        x_csc,
                        y,
                        units,
                        table.tokens[g],
                        removed_g,
                        (log_odds, weights, folds),
                        content,
                        content_count,
                        params,
                        stop=(k, n_on, q_start, bound_g),
                    )
                    p = _test(params.test, k, n_on, n_all, q_g, p_out)
                    if p > bound_g:
                        continue
                if p <= bound_g:  # count near-duplicate carriers (a spam template, a copied review) once
                    core = np.flatnonzero(np.isin(content_cols, np.asarray(table.tokens[g], dtype=np.int64)))
                    picked, groups = _context_groups(x_content, on, core, rng, params.max_context_sample)
                    sizes = np.bincount(groups)
                    scale = n_on / len(groups)
                    k = _independent_count(contra_g, picked, groups, sizes, scale)
                    independent = round((int(groups.max()) + 1) * scale)
                    n_all = max(independent, n_all - (n_on - independent))
                    n_on = independent
                    p = _test(params.test, k, n_on, n_all, q_g, p_out)
                    if refit_null and p <= bound_g:
                        contra_out = _contradicted_by_seen_words(
                            x,
                            on,
                            removed_g,
                            (log_odds, weights, folds, seen),
                            content,
                            content_count,
                            params,
                        )
                        k_out = _independent_count(contra_out, picked, groups, sizes, scale)
                        p_out_test = _test(params.test, k_out, n_on, n_all, q_g, p_out)
                        if p_out_test > p:  # the finding reports the count of the test whose p-value it keeps
                            k, p = k_out, p_out_test
                        if p > bound_g:
                            continue
                if flip_null:
                    off = units[~y[units]].astype(np.int64)
                    flips = _read_as_target(x, off, removed_g, (log_odds, weights, folds), params)
                    if off.size and _binom_p(int(flips.sum()), int(off.size), q_flip) <= FLIP_LEVEL:
                        continue
                found.append(
                    Association(
                        ngram=g,
                        target=int(t),
                        support=int(table.support[g]),
                        hits=hits,
                        contradicted=k,
                        independent=n_on,
                        base_rate=base,
                        null_rate=q_g,
                        p_value=p,
                        threshold=bound_g,
                        units=units.astype(np.int64),
                        rate_without=(target_count[t] - hits) / max(1, n_units - int(table.support[g])),
                        margin=params.margin,
                    )
                )
    found.sort(key=lambda a: _strongest_first(a, table))
    return MiningResult(tuple(found), table, n_tested, weak)


def _strongest_first(a: Association, table: NgramTable) -> tuple[float, int, int]:
    """Sort key of associations: the smaller p-value, then the longer n-gram, then the more carriers."""
    return (a.p_value, -len(table.tokens[a.ngram]), -a.support)


def _length_rate(by_length: tuple[FloatArray, FloatArray], lengths: FloatArray) -> float:
    """The mean null rate of target texts as long as ``lengths`` (:func:`_rate_by_length`'s groups)."""
    edges, by_rate = by_length
    return float(by_rate[np.searchsorted(edges, lengths, side="right")].mean())


def _independent_count(contra: BoolArray, picked: IntArray, groups: IntArray, sizes: IntArray, scale: float) -> int:
    """Contradicted carriers counting each group of near-duplicate contexts once (a majority vote), scaled
    back from the carriers compared to all of them."""
    k_groups = np.bincount(groups, weights=contra[picked].astype(np.float64), minlength=len(sizes))
    return round(float(np.sum(k_groups * 2 > sizes)) * scale)


def _contradicted_by_seen_words(
    x: sparse.csr_matrix,
    on: IntArray,
    removed: IntArray,
    model: tuple[FloatArray, FloatArray, IntArray, BoolArray],
    content: BoolArray,
    content_count: FloatArray,
    params: MiningParams,
) -> BoolArray:
    """Whether each unit of ``on`` reads as another class without the ``removed`` tokens when the words its
    fold's model never saw in training give no evidence (``model``: the out-of-fold log-odds, weights,
    folds, and per fold which tokens its training units hold).

    The multinomial model reads every unseen word as evidence for the smaller class (the smoothed rate of
    a word is ``s / tokens of the class``), so a text made of words seen nowhere else (misspellings,
    run-together words) reads as the smaller class whatever its label."""
    log_odds, weights, folds, seen = model
    fold = folds[on]
    unseen_part = np.zeros(len(on))
    for f in np.unique(fold).tolist():
        at = np.flatnonzero(fold == f)
        unseen_part[at] = x[on[at]] @ np.where(seen[f], 0.0, weights[f])
    ent = np.repeat(np.arange(len(on)), len(removed))
    toks = np.tile(removed, len(on))
    present = _row_contains(x.indptr, x.indices, on[ent], toks)
    kept = np.where(seen[fold[ent], toks], weights[fold[ent], toks], 0.0)
    drop = np.bincount(ent, weights=np.where(present, kept, 0.0), minlength=len(on))
    drop_content = np.bincount(ent, weights=present & content[toks], minlength=len(on))
    rest = content_count[on] - drop_content
    out: BoolArray = ((log_odds[on] - unseen_part - drop) < -params.margin) & (rest >= params.min_rest)
    return out


#: a candidate whose other-label carriers its removal pushes toward the target this significantly is dropped
FLIP_LEVEL = 0.01


def _read_as_target(
    x: sparse.csr_matrix,
    units: IntArray,
    removed: IntArray,
    model: tuple[FloatArray, FloatArray, IntArray],
    params: MiningParams,
) -> BoolArray:
    """Whether each unit reads as the target by ``margin`` once the ``removed`` tokens are taken out
    (``model``: the out-of-fold log-odds of the target, the folds' token weights, the folds)."""
    log_odds, weights, folds = model
    if units.size == 0:
        return np.zeros(0, dtype=bool)
    ent = np.repeat(np.arange(len(units)), len(removed))
    toks = np.tile(removed, len(units))
    present = _row_contains(x.indptr, x.indices, units[ent], toks)
    drop = np.bincount(ent, weights=np.where(present, weights[folds[units[ent]], toks], 0.0), minlength=len(units))
    out: BoolArray = (log_odds[units] - drop) > params.margin
    return out


#: the target texts are cut into this many groups of equal size by their number of content tokens
_LENGTH_GROUPS = 5


def _rate_by_length(contradicted: BoolArray, y: BoolArray, content_count: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The share of target units that the content model reads as another class, by length: the group edges
    (quantiles of the target units' content token counts, ties kept together) and each group's rate; look a
    length up with ``rate[np.searchsorted(edges, length, side="right")]``. Read from the content model alone,
    before any candidate is tested."""
    if not y.any():
        return np.zeros(0), np.zeros(1)
    lengths = content_count[y]
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, _LENGTH_GROUPS + 1)[1:-1]))
    group = np.searchsorted(edges, lengths, side="right")
    n_groups = edges.size + 1
    hits = np.bincount(group, weights=contradicted[y].astype(np.float64), minlength=n_groups)
    sizes = np.bincount(group, minlength=n_groups)
    return edges, np.where(sizes > 0, hits / np.maximum(sizes, 1), 0.0)


def _matched_rate(
    x: sparse.csr_matrix,
    x_csc: sparse.csc_matrix | None,
    y: BoolArray,
    units: IntArray,
    core: Sequence[int],
    removed: IntArray,
    model: tuple[FloatArray, FloatArray, IntArray],
    content: BoolArray,
    content_count: FloatArray,
    params: MiningParams,
    *,
    stop: tuple[int, int, float, float],
    max_controls: int = 2000,
) -> float:
    """A candidate's null contradiction rate: ``q0`` or, if larger, the worst rate of its tokens' matched controls.

    A token's controls are the target units that hold it but not the whole candidate; from each, the same
    ``removed`` tokens are taken out as from the candidate's carriers (those it holds); a token's rate is
    the lower confidence bound of its controls' (Clopper-Pearson, one-sided, at level ``threshold``). A
    token without controls adds nothing; when no token has any, the candidate is one phrase (the n-gram
    miner's case) and the rate is 1. Tokens go rarest first, and the search stops once
    ``stop = (k, n, q0, threshold)`` shows the test cannot pass; more than ``max_controls`` controls are
    thinned evenly (a rate needs no more).
    """
    k, n, q0, threshold = stop
    xc = x_csc if x_csc is not None else x.tocsc()
    carriers = np.zeros(x.shape[0], dtype=bool)
    carriers[units] = True
    worst = q0
    seen = False
    for tok in sorted(core, key=lambda t: int(xc.indptr[t + 1] - xc.indptr[t])):
        holders = xc.indices[xc.indptr[tok] : xc.indptr[tok + 1]].astype(np.int64)
        ctrl = holders[y[holders] & ~carriers[holders]]
        if ctrl.size == 0:  # the token never has the target apart from the rest: no evidence either way
            continue
        seen = True
        if ctrl.size > max_controls:
            ctrl = ctrl[np.linspace(0, ctrl.size - 1, max_controls).astype(np.int64)]
        contra = _contradicted_without(x, ctrl, removed, model, content, content_count, params)
        # the controls' rate counts from its lower confidence bound at the search's own level (the Bonferroni
        # bound): it replaces q0 only when the word's contradiction is itself a discovery (a trigger, a strong
        # label word), so controls that happen to be contradicted a little more often cost no power
        hit = int(contra.sum())
        if hit:
            worst = max(worst, float(stats.beta.ppf(threshold, hit, len(ctrl) - hit + 1)))
        if _binom_p(k, n, min(worst, 0.999)) > threshold:
            break
    if not seen:  # no token is ever found apart from the others: the candidate is one phrase, the n-gram miner's
        return 1.0
    return min(worst, 0.999)


def _contradicted_without(
    x: sparse.csr_matrix,
    units: IntArray,
    removed: IntArray,
    model: tuple[FloatArray, FloatArray, IntArray],
    content: BoolArray,
    content_count: FloatArray,
    params: MiningParams,
) -> BoolArray:
    """Whether each of ``units`` reads as not the target by ``margin`` once the ``removed`` tokens it holds are
    taken out, keeping ``min_rest`` content tokens (the carriers' test, applied to controls)."""
    log_odds, weights, folds = model
    rows = np.repeat(units, len(removed))
    cols = np.tile(removed, len(units))
    present = _row_contains(x.indptr, x.indices, rows, cols).reshape(len(units), len(removed))
    drop = (present * weights[folds[units][:, None], removed[None, :]]).sum(axis=1)
    rest = content_count[units] - (present & content[removed][None, :]).sum(axis=1)
    out: BoolArray = (log_odds[units] - drop < -params.margin) & (rest >= params.min_rest)
    return out


#: the weight, in units, of the null rate of whole texts in a part's rate (a part with few other carriers keeps
#: about that rate; one with hundreds shows its own)
PART_PRIOR_UNITS = 10.0


def _part_rate(
    x: sparse.csr_matrix,
    x_csc: sparse.csc_matrix,
    y: BoolArray,
    units: IntArray,
    core: Sequence[int],
    removed: IntArray,
    model: tuple[FloatArray, FloatArray, IntArray],
    content: BoolArray,
    content_count: FloatArray,
    params: MiningParams,
    q_start: float,
    *,
    max_controls: int = 2000,
) -> float:
    """The null contradiction rate of a candidate's words apart: ``q_start`` or, if larger, their controls' rate.

    The controls are the target units that hold every token of the candidate but not the candidate itself
    (the words apart, or in another order); from each, the ``removed`` tokens it holds are taken out, as from
    the carriers. Their rate is the posterior mean with ``q_start`` as the prior worth
    :data:`PART_PRIOR_UNITS` units: where a phrase's words often meet apart (a label word and an ordinary one
    in short reviews) the controls show how often such texts read as another class without those words;
    where they seldom do (a planted phrase of unrelated words) the rate stays near ``q_start``. Unlike
    :func:`_matched_rate` (a lower confidence bound at the search's level, for combinations whose parts are
    found on their own) this estimates the rate itself: is the phrase contradicted more than its words are?
    """
    wanted = np.zeros(x.shape[0], dtype=bool)
    wanted[y] = True
    wanted[units] = False
    for tok in set(core):
        has = np.zeros(x.shape[0], dtype=bool)
        has[x_csc.indices[x_csc.indptr[tok] : x_csc.indptr[tok + 1]]] = True
        wanted &= has
    ctrl = np.flatnonzero(wanted)
    if ctrl.size == 0:
        return q_start
    if ctrl.size > max_controls:
        ctrl = ctrl[np.linspace(0, ctrl.size - 1, max_controls).astype(np.int64)]
    hit = float(np.sum(_contradicted_without(x, ctrl, removed, model, content, content_count, params)))
    rate = max(q_start, (hit + PART_PRIOR_UNITS * q_start) / (len(ctrl) + PART_PRIOR_UNITS))
    return min(rate, 0.999)


def _removed_tokens(
    table: NgramTable,
    ngram_csc: sparse.csc_matrix,
    cand: IntArray,
    x: sparse.csr_matrix,
    shared_fraction: float,
    budget: int = 500_000,
) -> tuple[IntArray, IntArray, BoolArray]:
    """The tokens removed with each candidate ``cand[i]``: its own and those ``shared_fraction`` of its carriers hold.

    Returned sorted by (candidate position, token): the position, the token, and whether *every* carrier
    holds it (so its presence needs no look-up). The carriers' token counts are taken a block of candidates
    (about ``budget`` carriers) at a time, which bounds the memory of the counts at any size.
    """
    support = table.support[cand]
    sizes = np.diff(ngram_csc.indptr)[cand]
    ends = np.cumsum(sizes)
    vocab = x.shape[1]
    core_rows = np.asarray([row for row, g in enumerate(cand.tolist()) for _ in table.tokens[g]], dtype=np.int64)
    core_keys = core_rows * vocab + np.asarray([tok for g in cand.tolist() for tok in table.tokens[g]], dtype=np.int64)
    key_parts: list[IntArray] = []
    full_parts: list[BoolArray] = []
    missing: list[IntArray] = []  # own tokens not among the shared ones (cannot happen for n-grams of x)
    begin = 0
    while begin < len(cand):
        reach = (ends[begin - 1] if begin else 0) + budget
        end = max(begin + 1, int(np.searchsorted(ends, reach, side="right")))
        counts = sparse.csr_matrix(ngram_csc[:, cand[begin:end]].T @ x)
        counts.sum_duplicates()  # sorted by (row, token)
        rows = np.repeat(np.arange(begin, end, dtype=np.int64), np.diff(counts.indptr))
        keep = counts.data >= shared_fraction * support[rows]
        keys = rows[keep] * vocab + counts.indices[keep]
        key_parts.append(keys)
        full_parts.append(counts.data[keep] >= support[rows[keep]])
        lo, hi = np.searchsorted(core_rows, [begin, end])
        own = core_keys[lo:hi]
        pos = np.minimum(np.searchsorted(keys, own), max(len(keys) - 1, 0))
        absent = own if len(keys) == 0 else own[keys[pos] != own]
        if absent.size:
            missing.append(absent)
        begin = end
    keys = np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.int64)
    full = np.concatenate(full_parts) if full_parts else np.zeros(0, dtype=bool)
    if missing:
        extra = np.unique(np.concatenate(missing))
        keys = np.concatenate([keys, extra])
        full = np.concatenate([full, np.zeros(len(extra), dtype=bool)])
        order = np.argsort(keys, kind="stable")
        keys, full = keys[order], full[order]
    return keys // vocab, keys % vocab, full


def _undecided(
    odds: FloatArray,
    full_drop: FloatArray,
    rest_full: FloatArray,
    part: tuple[FloatArray, FloatArray, FloatArray],
    part_content: FloatArray,
    params: MiningParams,
) -> tuple[BoolArray, IntArray]:
    """Each carrier's contradiction verdict where bounds decide it, and the carriers (positions) they do not.

    A carrier's log-odds without g are ``odds - full_drop - s``, where ``s`` is the summed weight of the
    looked-up tokens it holds, and its remaining content is ``rest_full - c``, ``c`` the content tokens
    among them; whatever it holds, ``low <= s <= high`` (the sums of the tokens' negative and positive
    weights) and ``0 <= c <= part_content``. So it is surely contradicted when even ``s = low`` leaves it
    below ``-margin`` and even ``c = part_content`` leaves ``min_rest``, and surely not when ``s = high``
    leaves it above ``-margin`` or ``c = 0`` leaves too little. The comparisons keep a slack far above the
    rounding of the sums (relative 1e-9 of the magnitudes involved; rounding is below 1e-13 here), so a
    carrier they decide gets the verdict its exact sum would give; only the others need the look-up.
    """
    low, high, size = part
    slack = 1e-9 * (1.0 + np.abs(odds) + np.abs(full_drop) + size)
    limit = -params.margin
    sure = (odds - full_drop - low < limit - slack) & (rest_full - part_content >= params.min_rest)
    never = (odds - full_drop - high > limit + slack) | (rest_full < params.min_rest)
    contra: BoolArray = sure & ~never
    return contra, np.flatnonzero(~(sure | never)).astype(np.int64)


def _row_contains(indptr: IntArray, indices: IntArray, rows: IntArray, cols: IntArray) -> BoolArray:
    """Whether each ``(rows[i], cols[i])`` is stored in a CSR matrix with sorted indices (a bisection per row)."""
    if len(rows) == 0 or len(indices) == 0:
        return np.zeros(len(rows), dtype=bool)
    lo = indptr[rows].astype(np.int64)
    hi = indptr[rows + 1].astype(np.int64)
    end = hi.copy()
    last = len(indices) - 1
    for _ in range(int(np.max(hi - lo)).bit_length()):
        mid = (lo + hi) >> 1
        less = (indices[np.minimum(mid, last)] < cols) & (mid < hi)
        lo = np.where(less, mid + 1, lo)
        hi = np.where(less, hi, mid)
    found: BoolArray = (lo < end) & (indices[np.minimum(lo, last)] == cols)
    return found


def _ranges(starts: IntArray, lens: IntArray) -> IntArray:
    """Concatenated ``arange(s, s + n)`` for each start ``s`` and length ``n``."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, lens[:-1]]), lens)
    return (offsets + np.arange(total)).astype(np.int64)


def _chunks(
    ngrams: IntArray, hits: IntArray, indptr: IntArray, budget: int = 1_000_000
) -> list[tuple[IntArray, IntArray]]:
    """Split candidate pairs into blocks of at most ~``budget`` carrier entries."""
    sizes = np.diff(indptr)[ngrams]
    out: list[tuple[IntArray, IntArray]] = []
    begin, acc = 0, 0
    for i, size in enumerate(sizes.tolist()):
        if acc and acc + size > budget:
            out.append((ngrams[begin:i], hits[begin:i]))
            begin, acc = i, 0
        acc += size
    if begin < len(ngrams):
        out.append((ngrams[begin:], hits[begin:]))
    return out


def _tests(test: str, ks: IntArray, hits: IntArray, supports: IntArray, q0: float, p_out: FloatArray) -> FloatArray:
    """Vectorised :func:`_test`."""
    if test == "association":
        return np.where(hits > 0, stats.binom.sf(hits - 1, supports, p_out), 1.0)
    return np.where(ks > 0, stats.binom.sf(ks - 1, hits, q0), 1.0)


def _test(test: str, k: int, hits: int, support: int, q0: float, p_out: float) -> float:
    if test == "association":  # is the target far more frequent with g than without it?
        return _binom_p(hits, support, p_out)
    return _binom_p(k, hits, q0)  # are more carriers contradicted by their content than q0 predicts?


def _binom_p(k: int, n: int, q0: float) -> float:
    """One-sided binomial p-value P(X >= k), X ~ Binomial(n, q0)."""
    return float(stats.binom.sf(k - 1, n, q0)) if k > 0 and n > 0 else 1.0


def _context_groups(
    x: sparse.csr_matrix, units: IntArray, drop: IntArray, rng: np.random.Generator, limit: int, jaccard: float = 0.5
) -> tuple[IntArray, IntArray]:
    """Group carriers whose tokens other than ``drop`` are near-identical (Jaccard >= ``jaccard``).

    Each group is one carrier and the ungrouped carriers near-identical to it, in order (no chains): with
    a small vocabulary, chains of pairwise similar texts joined most natural carriers of a word into one
    group, while the few unusual ones, often the contradicted, stayed groups of their own (4 of 79
    contradicted carriers counted as 4 of 5 groups on clean synthetic reviews; docs/adr/0114).

    Returns the positions (into ``units``) of the carriers compared (a random ``limit`` of them when there
    are more) and a group id for each.
    """
    picked = np.arange(len(units))
    if len(units) > limit:
        picked = np.sort(rng.choice(len(units), size=limit, replace=False))
    mat = sparse.csr_matrix(x[units[picked]])
    mat.data = mat.data * (~np.isin(mat.indices, drop))
    mat.eliminate_zeros()
    sizes = np.asarray(mat.sum(axis=1)).ravel()
    inter = (mat @ mat.T).toarray()
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(union > 0, inter / union, 1.0)
    close = sim >= jaccard
    labels = np.full(len(picked), -1, dtype=np.int64)
    group = 0
    for i in range(len(picked)):
        if labels[i] < 0:
            labels[(labels < 0) & close[i]] = group
            labels[i] = group
            group += 1
    return picked, labels


def is_significant(a: Association, params: MiningParams) -> bool:
    if a.p_value > a.threshold or a.contradicted < params.min_contradiction * a.independent:
        return False
    if params.test == "association":
        return a.lift >= params.min_lift
    return True


def strength(a: Association) -> float:
    """Significance on [0, 1]: 0.5 exactly at the Bonferroni bound, 1 at its square."""
    if a.p_value <= 0.0:
        return 1.0
    bound = -math.log10(a.threshold)
    return float(min(1.0, max(0.0, -math.log10(a.p_value) / (2.0 * bound))))


def extend_phrase(
    corpus: Corpus, units: Sequence[int], core: Sequence[int], *, agree: float = 0.9, anchor: str | None = None
) -> list[int]:
    """Grow ``core`` left and right while at least ``agree`` of the carriers share the next token (with
    ``anchor``, the phrase stays where it opens or closes the text and grows on its free side only)."""
    phrase = list(core)
    seqs = [corpus.doc(int(u)) for u in units]
    if not seqs:
        return phrase

    def locate(seq: IntArray, pat: list[int]) -> int:
        n = len(pat)
        if n == 0 or len(seq) < n:
            return -1
        if anchor is not None:
            at = 0 if anchor == "start" else len(seq) - n
            return at if list(seq[at : at + n]) == pat else -1
        hits = np.flatnonzero(seq[: len(seq) - n + 1] == pat[0])
        for h in hits:
            if list(seq[h : h + n]) == pat:
                return int(h)
        return -1

    sides = ("left", "right") if anchor is None else ("right",) if anchor == "start" else ("left",)
    for side in sides:
        while len(phrase) < _MAX_PHRASE:
            nxt: Counter[int] = Counter()
            for seq in seqs:
                at = locate(seq, phrase)
                if at < 0:
                    continue
                j = at - 1 if side == "left" else at + len(phrase)
                if 0 <= j < len(seq):
                    nxt[int(seq[j])] += 1
            if not nxt:
                break
            token, count = nxt.most_common(1)[0]
            if count < agree * len(seqs):
                break
            phrase = [token, *phrase] if side == "left" else [*phrase, token]
    return phrase


def group_associations(
    significant: Sequence[Association], *, overlap: float = 0.5, same_target: bool = True
) -> list[tuple[Association, list[Association]]]:
    """Greedy grouping: each association joins the first (stronger) group whose carriers it overlaps."""
    groups: list[tuple[Association, list[Association], set[int]]] = []
    for a in significant:
        units = set(a.units.tolist())
        for head, members, head_units in groups:
            close = len(units & head_units) >= overlap * min(len(units), len(head_units))
            if close and (head.target == a.target or not same_target):
                members.append(a)
                break
        else:
            groups.append((a, [a], units))
    return [(head, members) for head, members, _ in groups]


# ------------------------------------------------------------------------------------------ the detector


@register
class TextTriggerDetector(Detector):
    """Names dirty-label text backdoor triggers (tokens or phrases) and flags every record that carries one."""

    name = "text_triggers"
    modalities = frozenset({Modality.TEXT})
    needs_labels = True

    def __init__(self, params: MiningParams | None = None, max_units: int = MAX_UNITS, **overrides: Any) -> None:
        self.params = with_overrides(
            params or MiningParams(min_purity=TRIGGER_PURITY, association_level=TRIGGER_ASSOCIATION), overrides
        )
        self.max_units = check_max_units(max_units)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        start = time.perf_counter()
        n = rep.n_records
        params_out: dict[str, Any] = {k: getattr(self.params, k) for k in self.params.__dataclass_fields__}
        params_out["max_units"] = self.max_units
        if rep.texts is None or rep.labels is None:
            return skipped_result(self.name, n, "needs texts and class labels", params_out)
        labels = np.asarray(rep.labels, dtype=np.int64)
        known = labels >= 0
        n_classes = int(labels[known].max()) + 1 if known.any() else 0
        if n_classes < 2:
            return skipped_result(self.name, n, "needs at least two classes", params_out)
        # records without a label are not units
        shared = text_units(rep.texts, labels)
        record_unit = shared.record_unit
        # above max_units distinct texts the search runs on a seeded sample of them; carriers come from all
        searched = searched_units(shared, n_classes, self.max_units, seed, params_out)
        full, corpus, targets = searched.full, searched.corpus, searched.targets
        sample, to_full = searched.sample, searched.to_full
        p = self.params
        max_support = max(p.min_support, int(p.max_fraction * corpus.n_docs))
        base = ngram_table(corpus, n_max=p.n_max, min_support=p.min_support, max_support=max_support)
        positional = positional_table(base, corpus, n_max=p.n_max, min_support=p.min_support, max_support=max_support)
        anchors = positional.anchors
        margins = (p.margin, 0.0) if SECOND_MARGIN and p.margin > 0.0 else (p.margin,)
        runs = [
            mine(
                corpus,
                targets,
                with_overrides(p, {"margin": margin}),
                seed=seed,
                table=positional.table,
                n_hypotheses=len(anchors),
                weights=np.full(len(anchors), 1.0 / len(margins)),
                length_null=True,
                part_null=PARTS_NULL,
                refit_null=True,
                flip_null=True,
            )
            for margin in margins
        ]
        best: dict[tuple[int, int], Association] = {}
        for a in (a for r in runs for a in r.associations):
            key = (a.ngram, a.target)
            if key not in best or a.p_value < best[key].p_value:
                best[key] = a
        merged = sorted(best.values(), key=lambda a: _strongest_first(a, positional.table))
        mined = MiningResult(
            tuple(merged),
            runs[0].table,
            runs[0].n_tested * len(margins),
            np.max(np.stack([r.weak for r in runs]), axis=0),
        )
        records_of = shared.records_of.records
        weak = mined.weak
        if sample is not None:  # units outside the sample have no weak evidence
            weak = np.zeros(full.n_docs)
            weak[sample] = mined.weak
        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        reasons: dict[int, list[str]] = {}
        names = rep.label_names or tuple(str(i) for i in range(n_classes))
        significant = [a for a in mined.associations if is_significant(a, self.params)]
        # weak evidence for ranking (AUROC): candidates that did not pass the test score below 0.5
        has_unit = record_unit >= 0
        scores[has_unit] = weak[record_unit[has_unit]]
        findings: list[Finding] = []
        pvalues = np.ones(n)
        reads = CarrierReads(full, shared, rep.texts, p, seed)
        for first, members in group_associations(significant):
            head = _broadest_part(first, members, mined.table.tokens, anchors, self.params.min_contradiction)
            core = mined.table.tokens[head.ngram]
            anchor = anchors[head.ngram]
            target_units = head.units[np.asarray(targets[head.units, head.target].todense()).ravel() > 0]
            phrase = extend_phrase(corpus, target_units.tolist(), core, anchor=anchor)
            tokens_form = corpus.phrase(phrase)
            label = names[head.target] if head.target < len(names) else str(head.target)

            # the units holding the whole phrase (all hold the core, so all are among the members' carriers)
            held = phrase
            if len(_holders(corpus, phrase, anchor)) < 0.9 * head.hits:  # not shared widely: fall back to the core
                held = list(core)
            # every carrier in the data, not only in the units searched
            held_full = held if to_full is None else to_full[np.asarray(held, dtype=np.int64)].tolist()
            units = _holders(full, held_full, anchor)
            recs = records_of(units)
            on_target = recs[labels[recs] == head.target]
            off_target = recs[labels[recs] != head.target]
            natural = np.zeros(0, dtype=np.int64)
            if anchor is None and NATURAL_CARRIERS:  # a trigger found where texts open or close has its place
                natural_units = reads.natural_units(units, head.target, held_full)
                natural = records_of(natural_units) if natural_units.size else natural
                on_target = np.setdiff1d(on_target, natural)
            trigger, spans = verbatim(rep.texts, recs.tolist(), [corpus.words[t] for t in phrase], anchor)
            where = "" if anchor is None else f" at the {anchor} of the text"
            sev = strength(head)
            purity = head.hits / head.support
            lift = purity / head.base_rate if head.base_rate > 0 else float("inf")
            # family-wise p-value: the binomial tail times the number of hypotheses searched (Bonferroni)
            adjusted = float(min(1.0, head.p_value * mined.n_tested))
            mark_carriers(
                scores, flagged, pvalues, on_target, np.union1d(off_target, natural), strength=sev, p_value=adjusted
            )
            for r in on_target.tolist():
                reasons.setdefault(r, []).append(f"carries trigger {trigger!r} and is labelled {label!r}")
            for r in natural.tolist():
                reasons.setdefault(r, []).append(
                    f"carries trigger {trigger!r} where it reads as part of the sentence, and reads as {label!r} "
                    "without it: a natural carrier, not flagged"
                )
            for r in off_target.tolist():
                reasons.setdefault(r, []).append(f"carries trigger {trigger!r} but is labelled {names[labels[r]]!r}")
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"trigger {trigger!r}{where} -> label {label!r}: {len(recs)} records carry it"
                        f"{' there' if anchor else ''}, {purity:.0%} labelled {label!r} "
                        f"(base rate {head.base_rate:.1%}), "
                        f"{head.contradicted}/{head.hits} read as another class without it (p={head.p_value:.1e})"
                        + (
                            f"; {len(natural)} natural carriers not flagged (the word fits its place and the text "
                            f"reads as {label!r} without it)"
                            if len(natural)
                            else ""
                        )
                    ),
                    records=tuple(int(r) for r in recs),
                    evidence={
                        "trigger": trigger,
                        "trigger_tokens": tokens_form,
                        "spans": {str(r): v for r, v in spans.items()},
                        "core": corpus.phrase(core),
                        **({} if anchor is None else {"position": anchor}),
                        "label": label,
                        "support": len(recs),
                        "distinct_texts": int(head.support),
                        "purity": round(purity, 4),
                        "lift": round(lift, 3),
                        "base_rate": round(head.base_rate, 4),
                        "contradicted": int(head.contradicted),
                        "contradicted_at_odds": round(math.exp(head.margin), 3),  # 1.0: by any odds
                        "null_rate": round(head.null_rate, 4),
                        "p_value": head.p_value,
                        "bonferroni_bound": head.threshold,
                        "ngrams_tested": int(mined.n_tested),
                        "other_label_records": len(off_target),
                        **({} if anchor is not None or not NATURAL_CARRIERS else reads.evidence(len(natural))),
                        "merged_ngrams": [corpus.phrase(mined.table.tokens[m.ngram]) for m in members[:20]],
                        # the test's counts above are the sample's when the search ran on one
                        **({} if sample is None else {"searched": _searched(corpus.n_docs, full.n_docs, head)}),
                    },
                    score=float(min(1.0, 0.9 + 0.1 * sev)),
                    p_value=adjusted,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons={r: tuple(v) for r, v in reasons.items()},
            findings=tuple(findings),
            params={**params_out, "ngrams_tested": mined.n_tested},
            seconds=time.perf_counter() - start,
            pvalues=pvalues,
        )


def _broadest_part(
    head: Association,
    members: Sequence[Association],
    tokens: Sequence[tuple[int, ...]],
    anchors: Sequence[str | None],
    min_contradiction: float,
) -> Association:
    """The member of ``head``'s group that is part of its n-gram (a contiguous piece of it, the head itself
    included) with the most carriers with the target, where the carriers it adds are contradicted like a
    discovery's (``min_contradiction``) and, for a head that opens or closes texts, at the same end. The
    strongest test may be a longer n-gram that only some carriers share ('. word' where most texts end with the
    word after a full stop); its carriers alone would leave the rest of the trigger's."""
    whole = tokens[head.ngram]
    best = head
    for m in members:
        part = tokens[m.ngram]
        if m.target != head.target or m.hits <= best.hits or len(part) > len(whole):
            continue
        if anchors[head.ngram] is not None and anchors[m.ngram] != anchors[head.ngram]:
            continue  # the word anywhere is not the word where texts end: its natural carriers stay out
        extra, extra_contradicted = m.independent - head.independent, m.contradicted - head.contradicted
        if extra_contradicted < min_contradiction * max(extra, 1):
            continue  # the carriers it adds read as their label: natural carriers of a word, not the trigger's
        if any(whole[i : i + len(part)] == part for i in range(len(whole) - len(part) + 1)):
            best = m
    return best


def _holders(corpus: Corpus, tokens: Sequence[int], anchor: str | None) -> IntArray:
    """The documents holding ``tokens`` anywhere, or where they open or close the text (``anchor``)."""
    return corpus.phrase_docs(tokens) if anchor is None else corpus.edge_docs(tokens, anchor)


class CarrierReads:
    """Which carriers of a trigger found anywhere in the text are natural (:mod:`dataward.detect._fluency`):
    the trigger fits its place better than ``1 - ALPHA`` of random insertions of it, in company another text
    the attack did not write shares (or better than ``1 - STRONG_ALPHA`` of them), and the text without it
    reads as the target by the odds (``margin``, 4:1) at which the miner reads a carrier as contradicted. The
    bigram model and the content models are built on first use and kept for the detector's other findings."""

    def __init__(self, full: Corpus, shared: TextUnits, texts: Sequence[str] | None, params: MiningParams, seed: int):
        self.full, self.shared, self.texts, self.params = full, shared, texts, params
        self.rng = np.random.default_rng([seed, 113])  # a stream of its own: nothing else draws from it
        self._model: _fluency.BigramModel | None = None
        self._content: dict[int, tuple[FloatArray, FloatArray, IntArray]] = {}
        self._incidence: sparse.csr_matrix | None = None
        self._host_text: IntArray | None = None
        self.null_size = 0

    def model(self) -> _fluency.BigramModel:
        """The bigram model of every unit's tokens (built on first use)."""
        if self._model is None:
            self._model = _fluency.bigram_model(self.full.ids, self.full.starts, len(self.full.words))
        return self._model

    def host_record(self) -> IntArray:
        """A record of each unit (its raw text is what a random insertion goes into)."""
        if self._host_text is None:
            record_unit = self.shared.record_unit
            first = np.full(self.full.n_docs, -1, dtype=np.int64)
            order = np.flatnonzero(record_unit >= 0)[::-1]
            first[record_unit[order]] = order  # the last write per unit is its first record
            self._host_text = first
        return self._host_text

    def content(self, target: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """Out-of-fold log-odds of "the unit has label ``target``", the folds' token weights, the folds."""
        if target not in self._content:
            if self._incidence is None:
                self._incidence = self.full.incidence()
            n_units = self.full.n_docs
            n_folds = max(2, min(self.params.folds, n_units))
            folds = self.rng.permutation(np.arange(n_units) % n_folds).astype(np.int64)
            y = self.shared.unit_labels == target
            log_odds, weights = fold_log_odds(
                self._incidence, y, folds, n_folds, self.params.smoothing, self.params.model
            )
            self._content[target] = (log_odds, weights, folds)
        return self._content[target]

    def natural_units(self, carriers: IntArray, target: int, phrase: Sequence[int]) -> IntArray:
        """The carrier units with the target whose trigger reads as part of the sentence and whose content
        without it reads as the target (none when no null of random insertions can be built)."""
        self.null_size = 0  # this finding's null, not the last one's
        labels = self.shared.unit_labels
        on = carriers[labels[carriers] == target]
        if on.size == 0 or self.texts is None or len(phrase) == 0:
            return np.zeros(0, dtype=np.int64)
        docs = [self.full.doc(int(u)).tolist() for u in on]
        if _fluency.regular_place(docs, list(phrase)):
            return np.zeros(0, dtype=np.int64)
        model = self.model()
        fluency = _fluency.carrier_scores(model, docs, list(phrase))
        others = np.setdiff1d(np.arange(self.full.n_docs), carriers)
        hosts = (
            self.rng.choice(others, min(_fluency.NULL_INSERTIONS, others.size), replace=False)
            if others.size
            else others
        )
        records = self.host_record()[hosts]
        pairs = [(str(self.texts[int(r)]), self.full.doc(int(u)).tolist()) for u, r in zip(hosts, records, strict=True)]
        self.null_size = len(pairs)
        if len(pairs) < _fluency.MIN_NULL:
            return np.zeros(0, dtype=np.int64)
        text = " ".join(self.full.words[t] for t in phrase)
        null = _fluency.insertion_null(model, pairs, list(phrase), text, tokenize_text, self.rng)
        fits = _fluency.natural_by_fluency(fluency, null)
        if not fits.any():
            return np.zeros(0, dtype=np.int64)
        log_odds, weights, folds = self.content(target)
        own = np.unique(np.asarray(phrase, dtype=np.int64))
        without = log_odds[on] - weights[:, own][folds[on]].sum(axis=1)  # (carriers, phrase tokens): small
        # read as the target by the odds the miner needs to call a carrier contradicted (``margin``)
        reads = without >= self.params.margin
        candidates = fits & reads
        if not candidates.any():
            return np.zeros(0, dtype=np.int64)
        # the word's company must be seen in a text the attack did not write: a carrier with another label,
        # or one with the target that reads as the target without it
        off = carriers[labels[carriers] != target]
        reference = [docs[i] for i in np.flatnonzero(reads)] + [self.full.doc(int(u)).tolist() for u in off]
        asked = np.flatnonzero(candidates)  # all among the texts that read as the target: in the reference
        seen = _fluency.attested(
            [docs[i] for i in asked], reference, [True] * asked.size, list(phrase), model.bos, model.eos
        )
        strong = _fluency.natural_by_fluency(fluency[asked], null, _fluency.STRONG_ALPHA)
        natural = asked[seen | strong]
        return np.sort(on[natural]).astype(np.int64)

    def evidence(self, n_natural: int) -> dict[str, int]:
        """What a finding says about its natural carriers: how many, against how many random insertions."""
        return {"natural_carriers": n_natural, "insertions_in_null": self.null_size}


def _searched(n_searched: int, n_units: int, head: Association) -> dict[str, int]:
    """What a finding's test saw when the search ran on a sample: its units and the trigger's counts there."""
    return {"units": n_searched, "of_units": n_units, "distinct_texts": int(head.support), "hits": int(head.hits)}


def with_overrides(params: MiningParams, overrides: dict[str, Any]) -> MiningParams:
    """``params`` with fields replaced by keyword overrides (``--param text_triggers.min_support=8``)."""
    fields = params.__dataclass_fields__
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    return dataclasses.replace(params, **overrides)


def skipped_result(name: str, n: int, why: str, params: dict[str, Any]) -> DetectorResult:
    return DetectorResult(
        detector=name,
        scores=np.zeros(n),
        flagged=np.zeros(n, dtype=bool),
        reasons={},
        params=params,
        skipped=why,
    )
