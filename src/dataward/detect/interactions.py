"""Feature-interaction triggers in tables: two value ranges whose joint label skew neither explains alone.

A tabular backdoor can set a *combination* of features to values that each lie well inside their marginal
range (``tabular_combo_trigger`` in the simulator): no single value is rare, so a per-column shortcut
search (:mod:`dataward.detect.shortcuts`) has nothing to find. The combination is rare, and its records
carry the target label far more often than either range alone predicts.

Every numeric column is cut into 16 quantile bins on three grids (shifted by a third of a bin each, so a
planted value near an edge still falls well inside one cell); columns with at most 16 distinct values use
the values. For every pair of columns, grid pair, cell and class ``t`` with at least ``min_support`` records:

1. joint skew: ``h`` of the ``m`` records in the cell have label ``t``; under the null the cell's label
   follows the stronger of its two marginal ranges, ``p0 = max(P(t | range a), P(t | range b), P(t))``, each
   measured outside the cell (its own records must not explain themselves),, and the
   binomial tail ``P(X >= h)``, ``X ~ Binomial(m, p0)``, is the first factor;
2. masked content: with both columns removed, the carriers labelled ``t`` look like another class (k-NN
   among all other records) more often than records of ``t`` outside the cell do (binomial tail against
   that natural disagreement rate, floored at 2 %), the second factor. Cells are screened cheaply first
   with the same tail on unmasked k-NN labels, and the 60 strongest are tested.

The product is tested against ``alpha`` Bonferroni-corrected over every (pair, grids, cell, class) hypothesis
with enough support. Only carriers whose own masked content disagrees with the label are flagged. The
finding names both columns and the value ranges.
"""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import binom

from dataward.detect._shortcuts import _masked_majority, _sample
from dataward.detect.interface import Detector, DetectorResult, Finding, FloatArray, IntArray, Modality, Representation
from dataward.detect.registry import register

_BINS = 16
_SHIFTS = (0.0, 1.0 / 3.0, 2.0 / 3.0)
_MAX_CANDIDATES = 60
_MAX_COLUMNS = 64


def _grids(values: FloatArray) -> list[tuple[IntArray, FloatArray]]:
    """Bin codes of one column on its grids, with the bin edges (``-inf``/``inf`` at the ends)."""
    finite = np.isfinite(values)
    distinct = np.unique(values[finite])
    if distinct.size <= _BINS:
        edges = (distinct[1:] + distinct[:-1]) / 2.0
        codes = np.where(finite, np.searchsorted(edges, values), _BINS)
        return [(codes.astype(np.int64), np.concatenate([[-np.inf], edges, [np.inf]]))]
    out = []
    for shift in _SHIFTS:
        qs = (np.arange(1, _BINS) - shift) / _BINS
        edges = np.unique(np.quantile(values[finite], qs[(qs > 0) & (qs < 1)]))
        codes = np.where(finite, np.searchsorted(edges, values, side="right"), _BINS)
        out.append((codes.astype(np.int64), np.concatenate([[-np.inf], edges, [np.inf]])))
    return out


@register
class FeatureInteractions(Detector):
    """Names pairs of value ranges that are a shortcut to one label only together, and flags their records."""

    name: ClassVar[str] = "feature_interactions"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    needs_labels: ClassVar[bool] = True

    def __init__(self, min_support: int = 3, purity: float = 0.8, alpha: float = 0.01, k: int = 5) -> None:
        self.min_support = int(min_support)
        self.purity = float(purity)
        self.alpha = float(alpha)
        self.k = int(k)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        n = rep.n_records
        params: dict[str, Any] = {"min_support": self.min_support, "purity": self.purity, "alpha": self.alpha}
        raw = rep.raw_columns or {}
        numeric: dict[str, FloatArray] = {}
        for col, vals in raw.items():
            num = pd.to_numeric(pd.Series(list(vals)), errors="coerce").to_numpy(dtype=np.float64)
            if np.isfinite(num).mean() >= 0.95 and np.unique(num[np.isfinite(num)]).size > 2:
                numeric[str(col)] = num
        if rep.labels is None or len(numeric) < 2:
            return DetectorResult(
                self.name, np.zeros(n), np.zeros(n, dtype=bool), {}, skipped="needs 2+ numeric columns"
            )
        if len(numeric) > _MAX_COLUMNS:
            return DetectorResult(
                self.name,
                np.zeros(n),
                np.zeros(n, dtype=bool),
                {},
                skipped=f"more than {_MAX_COLUMNS} numeric columns (pairs would not pay for themselves)",
            )
        y = np.asarray(rep.labels, dtype=np.int64)
        k_cls = len(rep.label_names)
        columns = list(numeric)
        grids = {c: _grids(numeric[c]) for c in columns}
        flat = np.asarray(rep.features, dtype=np.float64)
        fnames = list(rep.feature_names or ())
        everyone = _sample(np.arange(n, dtype=np.int64), 3000, 1)
        # cheap screen: does a record's full content already look like another class? (a poisoned record's
        # does: only the two trigger columns were set, the rest is its source class)
        looks_other = (
            _masked_majority(flat, y, np.arange(n, dtype=np.int64), everyone, np.zeros(0, np.int64), self.k) != y
        )
        base_rate = np.array(
            [max(0.02, float(looks_other[y == t].mean())) if (y == t).any() else 0.5 for t in range(k_cls)]
        )
        prior = np.bincount(y[y >= 0], minlength=k_cls) / max(1, int((y >= 0).sum()))
        candidates: list[tuple[float, int, int, int, int, int, int, int]] = []
        n_hyp = 0
        cells = (_BINS + 1) ** 2
        for ia, ib in combinations(range(len(columns)), 2):
            for ga, (codes_a, _) in enumerate(grids[columns[ia]]):
                count_a = self._counts(codes_a, y, k_cls)
                for gb, (codes_b, _) in enumerate(grids[columns[ib]]):
                    count_b = self._counts(codes_b, y, k_cls)
                    cell = codes_a * (_BINS + 1) + codes_b
                    key = cell * k_cls + y
                    joint = np.bincount(key, minlength=cells * k_cls).reshape(cells, k_cls)
                    other = np.bincount(key, weights=looks_other, minlength=cells * k_cls).reshape(cells, k_cls)
                    total = joint.sum(axis=1)
                    supported = total >= self.min_support
                    n_hyp += int(supported.sum()) * k_cls
                    ok = supported[:, None] & (joint >= self.purity * total[:, None]) & (other >= self.min_support)
                    hit_cells, hit_cls = np.nonzero(ok)
                    if hit_cells.size == 0:
                        continue
                    a_bins, b_bins = np.divmod(hit_cells, _BINS + 1)
                    # each range alone, outside the cell (the cell's own records must not explain themselves)
                    out_a = count_a[a_bins] - joint[hit_cells]
                    out_b = count_b[b_bins] - joint[hit_cells]
                    rate_a = out_a[np.arange(hit_cells.size), hit_cls] / np.maximum(out_a.sum(axis=1), 1)
                    rate_b = out_b[np.arange(hit_cells.size), hit_cls] / np.maximum(out_b.sum(axis=1), 1)
                    p0 = np.clip(np.maximum(np.maximum(rate_a, rate_b), prior[hit_cls]), 1e-3, 0.999)
                    h = joint[hit_cells, hit_cls]
                    m = total[hit_cells]
                    d = other[hit_cells, hit_cls]
                    p = binom.sf(h - 1, m, p0) * binom.sf(d - 1, h, base_rate[hit_cls])
                    for j in np.flatnonzero(p * max(1, n_hyp) < 1.0).tolist():
                        candidates.append(
                            (float(p[j]), ia, ib, ga, gb, int(a_bins[j]), int(b_bins[j]), int(hit_cls[j]))
                        )
        n_hyp = max(1, n_hyp)
        candidates.sort()
        flagged = np.zeros(n, dtype=bool)
        pvalues = np.ones(n)
        scores = np.zeros(n)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        tested = 0
        for _, ia, ib, ga, gb, a_bin, b_bin, t in candidates:
            if tested >= _MAX_CANDIDATES:
                break
            ca, ea = grids[columns[ia]][ga]
            cb, eb = grids[columns[ib]][gb]
            carriers = np.flatnonzero((ca == a_bin) & (cb == b_bin))
            labelled = carriers[y[carriers] == t]
            if labelled.size == 0 or flagged[labelled].mean() >= 0.5:
                continue
            tested += 1
            drop = np.array([j for j, f in enumerate(fnames) if f in (columns[ia], columns[ib])], dtype=np.int64)
            # the masked test, with every record as a reference (self excluded): removing the carriers would
            # hide a class whose typical records fall in the cell
            majority = _masked_majority(flat, y, labelled, everyone, drop, self.k)
            disagree = labelled[majority != t]
            pool = _sample(np.setdiff1d(np.flatnonzero(y == t), carriers), 100, 3)
            base = float(np.mean(_masked_majority(flat, y, pool, everyone, drop, self.k) != t)) if pool.size else 0.5
            in_cell = (ca == a_bin) & (cb == b_bin)
            p0 = min(0.999, max(self._rate(ca, y, a_bin, t, in_cell), self._rate(cb, y, b_bin, t, in_cell), prior[t]))
            p_skew = float(binom.sf(labelled.size - 1, carriers.size, p0))
            # skew tail against the marginal-range null x disagreement tail against the natural rate
            p_mask = float(binom.sf(disagree.size - 1, labelled.size, max(base, 0.02))) if disagree.size else 1.0
            adjusted = float(min(1.0, p_skew * p_mask * n_hyp))
            if adjusted >= self.alpha or disagree.size < self.min_support:
                continue
            # the skew null (each range alone) does not hold for classes defined by interactions (a stroke
            # pair is what makes a '4'), so the masked disagreement must carry the evidence on its own too:
            # Bonferroni over the candidates that may be tested (clean digits: 3 of 41 carriers disagree)
            if p_mask * _MAX_CANDIDATES >= self.alpha:
                continue
            label = rep.label_names[t]
            cond = (
                f"{columns[ia]} in [{ea[a_bin]:.4g}, {ea[a_bin + 1]:.4g}) and "
                f"{columns[ib]} in [{eb[b_bin]:.4g}, {eb[b_bin + 1]:.4g})"
            )
            flagged[disagree] = True
            pvalues[disagree] = np.minimum(pvalues[disagree], adjusted)
            strength = min(1.0, -np.log10(max(adjusted, 1e-300)) / (2.0 * -np.log10(self.alpha)))
            scores[disagree] = np.maximum(scores[disagree], 0.5 + 0.5 * strength)
            scores[labelled] = np.maximum(scores[labelled], 0.3)
            for i in disagree.tolist():
                reasons[i] = (*reasons.get(i, ()), f"has {cond}, jointly a shortcut to {label!r}")
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"interaction trigger: {cond} in {carriers.size} records, {labelled.size} labelled "
                        f"{label!r} (each range alone: at most {p0:.0%}); "
                        f"without the two columns {disagree.size} of them look like other classes"
                    ),
                    records=tuple(int(i) for i in disagree),  # the records it flags
                    evidence={
                        "carriers": int(carriers.size),
                        "masked_p_value": float(f"{p_mask:.3g}"),
                        "trigger": {
                            columns[ia]: [float(ea[a_bin]), float(ea[a_bin + 1])],
                            columns[ib]: [float(eb[b_bin]), float(eb[b_bin + 1])],
                        },
                        "features": [columns[ia], columns[ib]],
                        "label": label,
                        "joint_purity": round(labelled.size / carriers.size, 4),
                        "prior": round(float(prior[t]), 4),
                        "natural_disagreement": round(base, 3),
                        "p_value": adjusted,
                        "hypotheses": n_hyp,
                    },
                    # severity follows the evidence: 0.5 at the Bonferroni line, 0.9 at its square
                    score=float(0.5 + 0.4 * strength),
                    p_value=adjusted,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={**params, "hypotheses": n_hyp, "tested": tested},
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )

    @staticmethod
    def _counts(codes: IntArray, y: IntArray, k: int) -> IntArray:
        """Records per bin (rows) and label (columns)."""
        return np.bincount(codes * k + y, minlength=(_BINS + 1) * k).reshape(_BINS + 1, k)

    @staticmethod
    def _rate(codes: IntArray, y: IntArray, b: int, t: int, exclude: Any) -> float:
        """P(label t | bin b) among records outside ``exclude``."""
        inside = (codes == b) & ~exclude
        return float(np.mean(y[inside] == t)) if inside.any() else 0.0
