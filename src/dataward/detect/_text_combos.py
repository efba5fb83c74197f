"""Combination triggers in text: 2-3 individually common words that predict a label only together.

A backdoor keyed on a *set* of ordinary words ("visit" ... "now", anywhere in the text) escapes the
n-gram miner (:mod:`dataward.detect.text_triggers`): each word alone is frequent in every class, so it
is neither rare nor label-pure, and the words are not adjacent. The data still carry two marks: the
records holding *all* the words are (nearly) all of one label, far more than either word alone explains,
and the rest of each carrier's text says otherwise.

The search is a frequent-itemset step over co-occurrence, not adjacency:

1. candidate words: document frequency between ``min_support`` and ``max_fraction`` of the distinct
   texts (the ``max_tokens`` most frequent of them);
2. candidate pairs: every pair co-occurring in at least ``min_support`` texts is a hypothesis (their count
   ``m`` is the multiplicity of the search); a pair is tested when it co-occurs in at least ``min_support``
   more texts than chance (independence, ``df_a * df_b / n``) predicts, and at least ``min_purity`` of its
   carriers share a label ``c`` once the carriers of other labels that chance co-occurrence brings are
   discounted (a planted set of 17 texts with two natural texts beside it is 89 % pure). The screen only
   chooses what is tested: the bound below covers all ``m`` pairs;
3. the test is the n-gram miner's contradiction test (:func:`dataward.detect.text_triggers.mine`): with
   both words removed, an out-of-fold naive Bayes model reads the carriers labelled ``c`` as another class
   more often than Binomial(n, q) allows, one-sided, weighted Bonferroni over ``m`` pairs x classes (each
   pair's share of alpha grows with how far its words co-occur beyond chance, read from the texts alone:
   :func:`pair_weights`, ADR 0103). The null rate
   ``q`` is matched to the pair: the largest of ``q0`` (all texts labelled ``c``), the rate of texts
   labelled ``c`` as long as the carriers without the pair's words (long texts are read as another class
   more often, and co-occurring words pick long texts; ADR 0106) and, per word, the rate of the texts
   labelled ``c`` that hold that word but not the other, with the same tokens removed
   (its one-sided 95 % lower bound). A word that is a trigger or a strong label word on its own is
   contradicted as often without its partner, so its pairs are not combinations (a single-word trigger
   seen through every common word beside it; a template such as ``&lt;#&gt;`` next to ``:``).

Significant pairs whose carriers overlap merge into one finding; its trigger is every word of the merged
pairs that at least 90 % of the carriers hold (so a three-word trigger is reported whole). The finding
quotes each word as written in the data and gives every record's character spans. Above ``max_units``
distinct texts the pairs are searched on the n-gram miner's seeded sample of them, and every text holding
the words of a combination found there is flagged (:func:`dataward.detect.text_triggers.unit_sample`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse, stats

from dataward.detect._findings import mark_carriers
from dataward.detect.interface import (
    Detector,
    DetectorResult,
    Finding,
    FloatArray,
    IntArray,
    Modality,
    Representation,
)
from dataward.detect.registry import register
from dataward.detect.text_triggers import (
    MAX_UNITS,
    MiningParams,
    NgramTable,
    _ranges,
    _searched,
    check_max_units,
    group_associations,
    is_significant,
    mine,
    searched_units,
    skipped_result,
    text_units,
    token_spans,
    with_overrides,
)

#: a pair's co-occurrence surprise counts up to the square of the family-wise bound (twice its -log10), where
#: the miners' strength scale ends too (:func:`dataward.detect.text_triggers.strength`)
_SURPRISE_CAP_BOUNDS = 2.0
_WORD_SHARE = 0.9  # a merged pair's word belongs to the trigger when this share of its carriers hold it


@register
class TextComboTriggers(Detector):
    """Names backdoor triggers made of 2-3 co-occurring common words and flags the records carrying them."""

    name = "text_combos"
    modalities = frozenset({Modality.TEXT})
    needs_labels = True

    def __init__(
        self,
        max_tokens: int = 3000,
        params: MiningParams | None = None,
        max_units: int = MAX_UNITS,
        weighted: bool = True,
        **overrides: Any,
    ) -> None:
        # min_contradiction 0.5: the texts holding all the words of a planted combination are almost all poisoned,
        # while a common word paired with the trigger brings natural carriers that their content does not contradict
        base = params or MiningParams(max_fraction=0.3, min_contradiction=0.5)
        self.params = with_overrides(base, overrides)
        self.max_tokens = int(max_tokens)
        self.max_units = check_max_units(max_units)
        if not isinstance(weighted, bool):
            raise TypeError(f"weighted must be True or False, not {weighted!r}")
        self.weighted = weighted

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        start = time.perf_counter()
        n = rep.n_records
        params_out: dict[str, Any] = {k: getattr(self.params, k) for k in self.params.__dataclass_fields__}
        params_out["max_tokens"] = self.max_tokens
        params_out["max_units"] = self.max_units
        params_out["weighted"] = self.weighted
        if rep.texts is None or rep.labels is None:
            return skipped_result(self.name, n, "needs texts and class labels", params_out)
        labels = np.asarray(rep.labels, dtype=np.int64)
        known = labels >= 0
        n_classes = int(labels[known].max()) + 1 if known.any() else 0
        if n_classes < 2:
            return skipped_result(self.name, n, "needs at least two classes", params_out)
        shared = text_units(rep.texts, labels)
        record_unit = shared.record_unit
        # above max_units distinct texts the search runs on a seeded sample of them (the n-gram miner's sample);
        # the carriers of a trigger found there come from all texts
        searched = searched_units(shared, n_classes, self.max_units, seed, params_out)
        full, corpus, unit_labels, targets = searched.full, searched.corpus, searched.unit_labels, searched.targets
        sample, to_full = searched.sample, searched.to_full
        records_of = shared.records_of.records
        table, n_hyp, chance, weights = self._pairs(corpus.incidence().tocsc(), unit_labels, n_classes)
        params_out["pairs_searched"] = n_hyp
        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        pvalues = np.ones(n)
        reasons: dict[int, list[str]] = {}
        findings: list[Finding] = []
        if table is None:
            return DetectorResult(
                self.name, scores, flagged, {}, params=params_out, seconds=time.perf_counter() - start, pvalues=pvalues
            )
        mined = mine(
            corpus,
            targets,
            self.params,
            seed=seed,
            table=table,
            n_hypotheses=n_hyp,
            expected_other=chance,
            matched_null=True,
            weights=weights,
        )
        weak = mined.weak
        if sample is not None:  # units outside the sample have no weak evidence
            weak = np.zeros(full.n_docs)
            weak[sample] = mined.weak
        has_unit = record_unit >= 0
        scores[has_unit] = weak[record_unit[has_unit]]
        x = corpus.incidence().tocsr()
        names = rep.label_names or tuple(str(i) for i in range(n_classes))
        significant = [a for a in mined.associations if is_significant(a, self.params)]
        for head, members in group_associations(significant):
            on_units = head.units[unit_labels[head.units] == head.target]
            member_words = sorted({t for m in members for t in table.tokens[m.ngram]})
            share = np.asarray(x[on_units][:, member_words].mean(axis=0)).ravel()
            words = [w for w, s in zip(member_words, share, strict=True) if s >= _WORD_SHARE]
            if len(words) < 2:  # one word explains the carriers: a single-word trigger, the n-gram miner's
                continue
            if to_full is None:  # all units searched: the incidence columns (a token scan per word is slower)
                units = np.flatnonzero(np.asarray(x[:, words].sum(axis=1)).ravel() == len(words)).astype(np.int64)
            else:  # every text that holds all the words, not only among the units searched
                units = full.word_docs(to_full[np.asarray(words, dtype=np.int64)].tolist())
            recs = records_of(units)
            on_target = recs[labels[recs] == head.target]
            off_target = recs[labels[recs] != head.target]
            if on_target.size == 0 or flagged[on_target].mean() >= 0.5:
                continue  # the same carriers as a stronger finding, seen through a common word they also hold
            tokens = [corpus.words[w] for w in words]
            forms, spans = _verbatim_words(rep.texts, on_target.tolist(), tokens)
            trigger = " + ".join(forms)
            label = names[head.target] if head.target < len(names) else str(head.target)
            # the family-wise p-value: the binomial tail over the pair's own share of alpha (weighted Bonferroni)
            adjusted = float(min(1.0, head.p_value * self.params.alpha / head.threshold))
            purity = len(on_target) / max(1, len(recs))
            sev = float(min(1.0, -np.log10(max(head.p_value, 1e-300)) / (-2.0 * np.log10(head.threshold))))
            mark_carriers(scores, flagged, pvalues, on_target, off_target, strength=sev, p_value=adjusted)
            for r in on_target.tolist():
                reasons.setdefault(r, []).append(f"holds the words {trigger!r} together and is labelled {label!r}")
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"combination trigger {trigger!r} (anywhere in the text) -> label {label!r}: "
                        f"{len(recs)} records hold all {len(words)} words, {purity:.0%} labelled {label!r}; "
                        f"{head.contradicted}/{head.hits} read as another class without them (p={adjusted:.1e})"
                    ),
                    records=tuple(int(r) for r in recs),
                    evidence={
                        "trigger": trigger,
                        "words": forms,
                        "trigger_tokens": tokens,
                        "adjacent": False,
                        "spans": {str(r): v for r, v in spans.items()},
                        "label": label,
                        "support": len(recs),
                        "purity": round(purity, 4),
                        "contradicted": int(head.contradicted),
                        "null_rate": round(head.null_rate, 4),
                        "p_value": adjusted,
                        "pairs_searched": n_hyp,
                        "other_label_records": len(off_target),
                        # the test's counts are the sample's when the search ran on one
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
            params={**params_out, "hypotheses": mined.n_tested},
            seconds=time.perf_counter() - start,
            pvalues=pvalues,
        )

    def _pairs(
        self, x: sparse.csc_matrix, y: np.ndarray[Any, Any], n_classes: int
    ) -> tuple[NgramTable | None, int, FloatArray, FloatArray | None]:
        """Candidate word pairs (as a miner table), the number of pairs searched, each pair's chance co-carriers
        and its Bonferroni weight (:func:`pair_weights`; ``None`` for the plain bound)."""
        n_units = x.shape[0]
        p = self.params
        df = np.asarray(x.sum(axis=0)).ravel()
        ok = np.flatnonzero((df >= p.min_support) & (df <= max(p.min_support, p.max_fraction * n_units)))
        if ok.size < 2:
            return None, 0, np.zeros(0), None
        vocab = ok[np.argsort(-df[ok], kind="stable")[: self.max_tokens]]
        xs = sparse.csr_matrix(x[:, vocab])
        dfv = df[vocab].astype(np.float64)
        both = sparse.triu(xs.T @ xs, k=1).tocsr()
        both.data[both.data < p.min_support] = 0
        both.eliminate_zeros()
        n_hyp = int(both.nnz)
        if n_hyp == 0:
            return None, 0, np.zeros(0), None
        share = np.bincount(y, minlength=n_classes) / max(1, len(y))
        pairs_a: list[np.ndarray[Any, Any]] = []
        pairs_b: list[np.ndarray[Any, Any]] = []
        for c in range(n_classes):
            rows = y == c
            if not rows.any():
                continue
            xc = xs[rows]
            joint = sparse.triu(xc.T @ xc, k=1).tocoo()
            keep = joint.data >= p.min_support
            a, b, hits = joint.row[keep], joint.col[keep], joint.data[keep]
            total = np.asarray(both[a, b]).ravel()
            # a planted combination adds its carriers to those holding both words by chance (independence):
            # the screen asks for that excess, and lets the carriers of other labels exceed the purity bound
            # by the number of them chance co-occurrence brings (a small trigger's purity is otherwise
            # decided by one or two natural texts that happen to hold both words)
            chance = dfv[a] * dfv[b] / n_units
            excess = total - chance
            chance_off = chance * (1.0 - share[c])
            pure = (excess >= p.min_support) & (hits + chance_off >= p.min_purity * total)
            pairs_a.append(a[pure])
            pairs_b.append(b[pure])
        a_all = np.concatenate(pairs_a) if pairs_a else np.zeros(0, dtype=np.int64)
        b_all = np.concatenate(pairs_b) if pairs_b else np.zeros(0, dtype=np.int64)
        if a_all.size == 0:
            return None, n_hyp, np.zeros(0), None
        code = np.unique(a_all.astype(np.int64) * len(vocab) + b_all)
        a_all, b_all = code // len(vocab), code % len(vocab)
        matrix = _carriers(xs, a_all, b_all)
        support = np.diff(matrix.indptr).astype(np.int64)
        tokens = tuple((int(vocab[i]), int(vocab[j])) for i, j in zip(a_all, b_all, strict=True))
        weights = None
        if self.weighted:  # every searched pair's weight, then the tested pairs' (the others' share is unspent)
            every = both.tocoo()
            all_weights = pair_weights(every.data, dfv[every.row], dfv[every.col], n_units, p)
            every_code = every.row.astype(np.int64) * len(vocab) + every.col
            order = np.argsort(every_code, kind="stable")
            weights = all_weights[order[np.searchsorted(every_code[order], code)]]
        chance_out = dfv[a_all] * dfv[b_all] / n_units * (1.0 - share.max())
        return NgramTable(tokens, matrix, support), n_hyp, chance_out, weights


def pair_weights(
    joint: FloatArray, df_a: FloatArray, df_b: FloatArray, n_units: int, params: MiningParams
) -> FloatArray:
    """Each searched pair's weighted-Bonferroni weight, from word counts alone; the weights sum to the pairs' number.

    ``joint`` texts of ``n_units`` hold both words, ``df_a`` and ``df_b`` each. A planted combination adds its
    carriers to the texts that hold both words by chance, so its words co-occur far more than independence
    predicts, while the bulk of the searched pairs co-occur about as chance has it. The raw weight is the
    co-occurrence surprise ``-log10 P(X >= joint)`` for ``X`` Poisson with the independence mean
    ``df_a * df_b / n_units`` (the hypergeometric tail, exact for words placed independently, is lighter, and
    scipy's takes minutes for 10^5 pairs), clipped to ``[1, -log10(alpha / m)]``:

    - zero for a pair whose excess over chance is below ``min_support`` (the label-free half of the test
      screen in :meth:`TextComboTriggers._pairs`: such a pair is never tested, so its share of alpha would
      be lost);
    - at least 1, so that a combination of very common words (little surprise however planted) keeps about
      the plain bound;
    - at most the surprise that is itself significant at the search's level: beyond it, more surprise only
      ranks natural collocations ("customer service") and would hand them the bound of the planted pairs.

    Normalised to mean 1 over all ``m`` searched pairs, so the bounds ``alpha * w / m`` sum to at most
    ``alpha`` over every (pair, class): Bonferroni's union bound holds for any such fixed weights, and these
    are fixed given the texts (the labels are not read), so the family-wise error is controlled conditional
    on the texts, which is what the contradiction test's null is about.
    """
    m = len(joint)
    if m == 0:
        return np.zeros(0)
    joint = np.asarray(joint, dtype=np.float64)
    df_a, df_b = np.asarray(df_a, dtype=np.float64), np.asarray(df_b, dtype=np.float64)
    chance = df_a * df_b / n_units
    excess = joint - chance
    surprise = -stats.poisson.logsf(joint - 1, chance) / math.log(10.0)
    cap = max(1.0, -_SURPRISE_CAP_BOUNDS * math.log10(params.alpha / m))
    raw = np.where(excess >= params.min_support, np.clip(surprise, 1.0, cap), 0.0)
    total = float(raw.sum())
    return raw * (m / total) if total > 0 else np.ones(m)


def _carriers(xs: sparse.csr_matrix, a: IntArray, b: IntArray, budget: int = 1_000_000) -> sparse.csc_matrix:
    """The (units x pairs) incidence of the units holding both words ``a[i]`` and ``b[i]`` of each pair.

    ``(a[i], b[i])`` are sorted by ``(a, b)`` with ``a < b``. Each unit's words are paired with every later
    word of its row (the pairs it holds, in pair order) and each such pair is looked up in a table of the
    candidates, about ``budget`` pairs of a block of units at a time. The work is that of the rows' word
    pairs, which the co-occurrence products of ``_pairs`` already enumerate. This replaced the lookup of
    each pair's rarer word's carriers among its other word's (a pass over the carriers of every pair, 2.3 s
    of CPU at 100k texts against 0.6 s), a binary search of every carrier in the sorted (unit, word) keys
    before that, and first the product of the two words' columns, which materialised both columns of every
    pair at once (6 GiB at 50k texts).
    """
    n_units, vocab = xs.shape
    xs = sparse.csr_matrix(xs)
    xs.sort_indices()
    code = a.astype(np.int64) * vocab + b.astype(np.int64)
    table: npt.NDArray[np.int32] | None = None
    if vocab * vocab <= 16_000_000:  # the default 3,000 words: a 36 MB table, one read per pair
        table = np.full(vocab * vocab, -1, dtype=np.int32)
        table[code] = np.arange(len(code), dtype=np.int32)
    indptr = xs.indptr.astype(np.int64)
    words = xs.indices.astype(np.int64)
    row_len = np.diff(indptr)
    later = np.repeat(row_len, row_len) - (np.arange(len(words)) - np.repeat(indptr[:-1], row_len)) - 1
    per_unit = row_len * (row_len - 1) // 2
    ends = np.cumsum(per_unit)
    cols_out: list[IntArray] = []
    counts = np.zeros(n_units, dtype=np.int64)
    begin = 0
    while begin < n_units:
        reach = (ends[begin - 1] if begin else 0) + budget
        end = min(n_units, max(begin + 1, int(np.searchsorted(ends, reach, side="right"))))
        lo, hi = int(indptr[begin]), int(indptr[end])
        first = np.repeat(words[lo:hi] * vocab, later[lo:hi])
        pair = first + words[_ranges(np.arange(lo, hi, dtype=np.int64) + 1, later[lo:hi])]
        if table is not None:
            col = table[pair]
        else:
            col = np.minimum(np.searchsorted(code, pair), max(len(code) - 1, 0))
            col[code[col] != pair] = -1
        hit = col >= 0
        cols_out.append(col[hit])
        unit = np.repeat(np.arange(begin, end, dtype=np.int64), per_unit[begin:end])
        counts[begin:end] = np.bincount(unit[hit] - begin, minlength=end - begin)
        begin = end
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    out_ptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    # within a unit the pairs come in (a, b) order, the order of the columns
    return sparse.csr_matrix((np.ones(len(cols)), cols, out_ptr), shape=(n_units, len(code))).tocsc()


def _verbatim_words(
    texts: tuple[str, ...], records: list[int], tokens: list[str]
) -> tuple[list[str], dict[int, list[list[int]]]]:
    """Each trigger word as most often written in the carriers, and every carrier's spans (in text order)."""
    forms: list[Counter[str]] = [Counter() for _ in tokens]
    spans: dict[int, list[list[int]]] = {}
    for r in records:
        found: list[list[int]] = []
        for j, tok in enumerate(tokens):
            for t, s, e in token_spans(texts[r]):
                if t == tok:
                    found.append([s, e])
                    forms[j][texts[r][s:e]] += 1
                    break
        spans[int(r)] = sorted(found)
    return [f.most_common(1)[0][0] if f else tok for f, tok in zip(forms, tokens, strict=True)], spans
