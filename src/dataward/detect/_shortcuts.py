"""Shared machinery of shortcut mining (image patches, tabular feature-value conjunctions).

A *token* is (column, level) on a discretised matrix ``q`` (n x columns, small non-negative ints). A token
is a candidate shortcut when its carriers are almost all of one label and that is significant: the
binomial tail of seeing that many carriers with the label, given the label's base rate, is below
``alpha`` after Bonferroni correction over all tokens. Candidates then face the masked-content test:
with the token's columns removed, do the carriers labelled with the token's label look like other
classes (k-NN among non-carriers)? A natural class feature fails that test; a trigger passes it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from dataward.detect.interface import BoolArray, Detector, FloatArray, IntArray


class ShortcutMiner(Detector):
    """Parameters shared by the shortcut miners (image patches, tabular feature values)."""

    def __init__(
        self,
        min_support: int = 3,
        purity: float = 0.8,
        alpha: float = 0.01,
        disagreement: float = 0.5,
        max_fraction: float = 0.3,
        k: int = 5,
        max_regions: int = 30,
    ) -> None:
        self.max_regions = int(max_regions)
        self.min_support = int(min_support)
        self.purity = float(purity)
        self.alpha = float(alpha)
        self.disagreement = float(disagreement)
        self.max_fraction = float(max_fraction)
        self.k = int(k)


def enriched_tokens(
    q: IntArray,
    y: IntArray,
    n_classes: int,
    levels: int = 0,
    *,
    min_support: int,
    max_support: int,
    purity: float,
    alpha: float,
    correct: bool = True,
) -> list[tuple[int, int, int]]:
    """Significant (column, level, label) tokens of ``q``, strongest first.

    With ``correct`` the binomial tail is Bonferroni-corrected over all tokens present; without, ``alpha``
    is a per-token screening level (the caller then tests the survivors further, see :func:`trigger_p`).
    ``levels`` is unused (kept for callers; codes may be any non-negative ints).
    """
    n, n_cols = q.shape
    prior = np.bincount(y, minlength=n_classes) / n
    # per column: the distinct (level, label) pairs and their counts (memory O(n) whatever ``levels`` is)
    rows: list[tuple[int, int, int, int]] = []  # (column, level, top label, top count) for each token
    supports: list[int] = []
    n_tests = 0
    for p in range(n_cols):
        pair, cnt = np.unique(q[:, p] * n_classes + y, return_counts=True)
        lev_of = pair // n_classes
        lab_of = pair % n_classes
        uniq_lev, start_at = np.unique(lev_of, return_index=True)
        n_tests += uniq_lev.size
        ends = np.append(start_at[1:], lev_of.size)
        for lev, a, b in zip(uniq_lev, start_at, ends, strict=True):
            sup = int(cnt[a:b].sum())
            if sup < min_support or sup > max_support:
                continue
            j = a + int(np.argmax(cnt[a:b]))
            top_count = int(cnt[j])
            if top_count >= purity * sup:
                rows.append((p, int(lev), int(lab_of[j]), top_count))
                supports.append(sup)
    n_tests = max(1, n_tests)
    found: list[tuple[float, int, int, int]] = []
    for (p, lev, lab, top_count), sup in zip(rows, supports, strict=True):
        if prior[lab] >= 0.95:
            continue
        pval = float(binom.sf(top_count - 1, sup, prior[lab]))
        if pval * (n_tests if correct else 1) < alpha:
            found.append((pval, p, lev, lab))
    found.sort()
    return [(p, lev, lab) for _, p, lev, lab in found]


_MAX_QUERIES = 100
_MAX_REFS = 3000


def _masked_majority(
    flat: FloatArray, y: IntArray, queries: IntArray, refs: IntArray, drop_cols: IntArray | BoolArray, k: int
) -> IntArray:
    """k-NN majority label of each query among ``refs`` on all columns but ``drop_cols`` (self excluded)."""
    keep_cols = np.ones(flat.shape[1], dtype=bool)
    keep_cols[drop_cols] = False
    q = flat[queries][:, keep_cols]
    r = flat[refs][:, keep_cols]
    d2 = (q**2).sum(1)[:, None] - 2.0 * q @ r.T + (r**2).sum(1)[None, :]
    d2[queries[:, None] == refs[None, :]] = np.inf
    kk = max(1, min(k, refs.size - 1))
    nn = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
    return np.array([np.bincount(v).argmax() for v in y[refs][nn]], dtype=np.int64)


def _sample(idx: IntArray, size: int, seed: int) -> IntArray:
    if idx.size <= size:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, size=size, replace=False))


def masked_disagreement(
    flat: FloatArray,
    y: IntArray,
    carriers: IntArray,
    labelled: IntArray,
    drop_cols: IntArray | BoolArray,
    lab: int,
    k: int,
) -> tuple[float, dict[int, int]]:
    """Share of ``labelled`` carriers whose k-NN majority (non-carriers, ``drop_cols`` removed) is not ``lab``.

    Estimated on at most 100 carriers against at most 3,000 non-carriers (seeded samples).
    """
    n = flat.shape[0]
    others: BoolArray = np.ones(n, dtype=bool)
    others[carriers] = False
    if others.sum() < k or labelled.size == 0:
        return 0.0, {}
    refs = _sample(np.flatnonzero(others), _MAX_REFS, 1)
    majority = _masked_majority(flat, y, _sample(labelled, _MAX_QUERIES, 2), refs, drop_cols, k)
    looks: dict[int, int] = {}
    for m in majority[majority != lab]:
        looks[int(m)] = looks.get(int(m), 0) + 1
    return float(np.mean(majority != lab)), looks


def base_disagreement(
    flat: FloatArray, y: IntArray, carriers: IntArray, drop_cols: IntArray | BoolArray, lab: int, k: int
) -> float:
    """How often a non-carrier labelled ``lab`` has a k-NN majority (other non-carriers) of another label.

    The null rate for :func:`masked_disagreement`: natural class overlap, measured on up to 100 records.
    """
    n = flat.shape[0]
    others = np.ones(n, dtype=bool)
    others[carriers] = False
    pool = np.flatnonzero(others & (y == lab))
    if pool.size < 2:
        return 0.5
    refs = _sample(np.flatnonzero(others), _MAX_REFS, 1)
    majority = _masked_majority(flat, y, _sample(pool, _MAX_QUERIES, 3), refs, drop_cols, k)
    return float(np.mean(majority != lab))


def trigger_p(labelled: int, carriers: int, prior: float, disagreeing: int, base: float) -> float:
    """Joint evidence for a trigger: P(label purity) x P(masked disagreement), both binomial tails.

    Purity is tested against the label's base rate, disagreement against the natural rate ``base``
    (floored at 2 %). Independent tests under the null, so the product is a p-value bound.
    """
    p1 = float(binom.sf(labelled - 1, carriers, prior))
    p2 = float(binom.sf(disagreeing - 1, labelled, max(base, 0.02)))
    return p1 * p2
