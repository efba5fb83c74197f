"""Feature-interaction triggers in tables: two value ranges whose joint label skew neither explains alone.

A tabular backdoor can set a *combination* of features to values that each lie well inside their marginal
range (``tabular_combo_trigger`` in the simulator): no single value is rare, so a per-column shortcut
search (:mod:`dataward.detect._tabular_shortcuts`) has nothing to find. The combination is rare, and its records
carry the target label far more often than either range alone predicts.

Every numeric column is cut into quantile bins at two scales, 16 and 64 bins, each on three grids (shifted by
a third of a bin, so a planted value near an edge still falls well inside one cell): poison often sets
(nearly) the same values, a coincidence that a sixteenth of the range dilutes with the natural records
sharing it. Columns with at most 32 distinct values use the values. Pairs of near-copies (|Spearman| >= 0.9,
such as a radius and an area) are one measurement, not an interaction, and are not searched. For every pair
of columns, grid pair of one scale, cell and class ``t`` with at least ``min_support`` records:

1. joint skew: ``h`` of the ``m`` records in the cell have label ``t``; under the null the cell's label
   follows the stronger of its two marginal ranges, ``p0 = max(P(t | range a), P(t | range b), P(t))``, each
   measured outside the cell (its own records must not explain themselves) at the cell's scale and at the
   coarse one, and the binomial tail ``P(X >= h)``, ``X ~ Binomial(m, p0)``, is the first factor. No
   purity bar: a planted pair of common values shares its cell with natural records of other classes
   (digits: 18 poisoned of 45 carriers), and those are never flagged;
2. masked content: with both columns removed, the carriers labelled ``t`` look like another class (k-NN
   among all other records) more often than records of ``t`` outside the cell do (binomial tail against
   that natural disagreement rate, floored at 2 %), the second factor. Cells
   are screened cheaply first with the same tail on unmasked k-NN labels, and the 60 with the strongest
   disagreement are tested.

The masked tail is taken against two nulls, and the larger is used (an intersection-union test: both must
fall, ADR 0079): the class's natural disagreement, and label noise. Random flips land where their source
class lives, so a cell or box of class ``s`` holds the flips from ``s`` to ``t`` whose content reads as ``s``;
under that null each carrier reading as ``s`` carries ``t`` with the share ``t`` has among the records
reading as ``s`` outside the cell (beta-binomial, summed over the classes), and a trigger's carriers carry it
far more often.

The product is tested against ``alpha`` Bonferroni-corrected over every (pair, grids, cell, class) hypothesis
with enough support, and the masked tail must pass on its own, Bonferroni over the 60 tested. Only carriers
whose own masked content disagrees with the label are flagged. The finding names both columns and the
value ranges.

On a small table (ADR 0061) boxes centred on records are searched too, on pairs of continuous columns: a
grid edge can cut a cluster jittered around one value pair (quantile edges of tied data sit on data
values, and the planted value is one). A box's evidence is its label's spike over that label's local
density (ring and the two lines through the box) and the masked-content tail, combined exactly; near-copy
pairs are searched along and across their band. Bonferroni counts every box and every cell. A box flags
every record of its label in it when at most 10 % of them are expected there by the local density.
"""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betainc
from scipy.stats import betabinom, binom, poisson, rankdata

from dataward.detect._shortcuts import _masked_majority, _sample
from dataward.detect.interface import Detector, DetectorResult, Finding, FloatArray, IntArray, Modality, Representation
from dataward.detect.registry import register

_BINS = 16
# the fine scale: poison often sets (nearly) the same values, a coincidence a 1/16 range dilutes with the
# natural records that share it (wine: 5 planted records alone within 0.1 s.d. of both values, 33 records
# in their 16-bin cell)
_SCALES = (_BINS, 4 * _BINS)
_MAX_BINS = _SCALES[-1]
_DISTINCT = (
    2 * _BINS
)  # a column of at most this many distinct values is binned by its values  # code of a missing value, past every bin
_SHIFTS = (0.0, 1.0 / 3.0, 2.0 / 3.0)
_MAX_CANDIDATES = 60
_MAX_COLUMNS = 64
_COPY_RHO = 0.9  # |Spearman| from which two columns are one measurement
# the box scan of small tables: half-widths in standard deviations (poison jittered by 0.02 s.d. spans about
# +-0.05), the strips whose label share is the null (a sixteenth of a normal range), the ring that measures
# the local density (out to _RING half-widths), and the caps that keep it a small-table search
_HALF_WIDTHS = (0.025, 0.05, 0.1)
_STRIP = 0.15
_RING = 4.0
_SCAN_MAX_RECORDS = 5000
_SCAN_MAX_CENTERS = 300
_SCAN_CANDIDATES = 30
_SCAN_BUDGET = 30_000_000  # centres x records x pairs: a few seconds of array work, at most
# a box finding flags every record in it that carries its label when the label's records expected there by
# the local density are at most this share of them
_NATURAL_SHARE = 0.1  # the fusion's false discovery rate (ADR 0043)
#: records beside a finding's box (nearest in its two columns' ranks) that a shared third range is judged against
_SHARED_REFERENCE = 100
#: the family-wise level of the shared ranges: a tenth of the detector's, since the reference records only
#: approximate the flagged records' own classes and neighbourhood (ADR 0109: at the detector's 0.01, 3 of 54
#: findings named a column not planted, at p 0.003-0.007)
_SHARED_ALPHA = 0.001
# records read (masked k-NN) to measure the label-noise null of a candidate: outside the cell (every one on
# a table of up to 2,000 records: wine, breast_cancer, digits), and its carriers not labelled with the
# candidate's class
_NOISE_POOL = 2000
_NOISE_CARRIERS = 300


def _grids(values: FloatArray, bins: int) -> list[tuple[IntArray, FloatArray]]:
    """Bin codes of one column on its grids at ``bins`` quantile bins, with the edges (``-inf``/``inf``)."""
    finite = np.isfinite(values)
    distinct = np.unique(values[finite])
    if distinct.size <= _DISTINCT:
        edges = (distinct[1:] + distinct[:-1]) / 2.0
        codes = np.where(finite, np.searchsorted(edges, values), _MAX_BINS)
        return [(codes.astype(np.int64), np.concatenate([[-np.inf], edges, [np.inf]]))]
    out = []
    for shift in _SHIFTS:
        qs = (np.arange(1, bins) - shift) / bins
        edges = np.unique(np.quantile(values[finite], qs[(qs > 0) & (qs < 1)]))
        codes = np.where(finite, np.searchsorted(edges, values, side="right"), _MAX_BINS)
        out.append((codes.astype(np.int64), np.concatenate([[-np.inf], edges, [np.inf]])))
    return out


def _span(center: FloatArray, half: float, lim: tuple[float, float]) -> FloatArray:
    """Length of ``[center - half, center + half]`` inside ``lim``."""
    span: FloatArray = np.maximum(np.minimum(center + half, lim[1]) - np.maximum(center - half, lim[0]), 1e-9)
    return span


def _shared_ranges(
    numeric: dict[str, FloatArray],
    columns: list[str],
    pair: tuple[int, int],
    records: IntArray,
    pool: IntArray,
    rho: FloatArray,
    alpha: float,
) -> dict[str, tuple[float, float, float]]:
    """Further columns whose values a finding's flagged ``records`` all hold in a narrow range: the rest of a
    trigger of three columns found through two of them (reported, never tested for flags).

    The range is the records' own (min to max). Against the records of ``pool`` (the classes the flagged
    records' other columns read as: a relabelled record's content is its source class's) nearest them in the
    pair's two columns (:data:`_SHARED_REFERENCE`, by rank; a column that follows the class is as narrow
    there; a near-copy of one of the pair, ``|rho| >= _COPY_RHO`` in ``rho``, is not looked at), the share
    ``s`` of those records inside the range is what ``k`` independent draws would span with probability
    ``P(Beta(k - 1, 2) <= s)`` (the coverage of a sample's range; ties only widen it). Kept where that,
    times the columns looked at, is at most ``alpha``. Returns ``{column: (low, high, p)}``."""
    k = int(records.size)
    if k < 4 or len(columns) < 3:
        return {}
    ia, ib = pair
    n = numeric[columns[ia]].size
    ra = rankdata(np.nan_to_num(numeric[columns[ia]])) / n
    rb = rankdata(np.nan_to_num(numeric[columns[ib]])) / n
    others = np.setdiff1d(pool, records)
    if others.size < _SHARED_REFERENCE:
        return {}
    centre = (float(np.median(ra[records])), float(np.median(rb[records])))
    near = others[np.argsort(np.hypot(ra[others] - centre[0], rb[others] - centre[1]), kind="stable")]
    near = near[:_SHARED_REFERENCE]
    m = len(columns) - 2
    out: dict[str, tuple[float, float, float]] = {}
    for j, col in enumerate(columns):
        if j in pair or max(abs(rho[j, ia]), abs(rho[j, ib])) >= _COPY_RHO:
            continue  # a near-copy of one of the pair is as narrow as the pair, and says nothing more
        vals = numeric[col]
        mine = vals[records]
        if not np.isfinite(mine).all():
            continue
        lo, hi = float(mine.min()), float(mine.max())
        ref = vals[near]
        share = float(np.mean((ref >= lo) & (ref <= hi)))
        p = float(betainc(k - 1, 2, share)) * m
        if p <= alpha:
            out[col] = (lo, hi, p)
    return dict(sorted(out.items(), key=lambda kv: kv[1][2]))


def _product_tail(x: Any, k: int) -> Any:
    """P(U_1 ... U_k <= x) for k independent uniform p-values (Fisher's combination, exact):
    ``x * sum_{i<k} (-ln x)^i / i!``; the bare product of k tails is not a p-value."""
    x = np.clip(np.asarray(x, dtype=np.float64), 1e-300, 1.0)
    log = -np.log(x)
    term = np.ones_like(log)
    total = np.ones_like(log)
    for i in range(1, k):
        term = term * log / i
        total = total + term
    return np.minimum(1.0, x * total)


def _noise_tail(
    flat: FloatArray,
    y: IntArray,
    carriers: IntArray,
    labelled: IntArray,
    majority: IntArray,
    refs: IntArray,
    drop: IntArray,
    t: int,
    k: int,
) -> float:
    """P(D >= d) under label noise: of the cell's carriers whose masked content reads as class s != t, each
    carries label t with the share ``r_s`` that label has among records outside the cell reading as s.

    ``majority`` is the masked read of ``labelled`` (the carriers labelled ``t``), ``d`` how many of them
    read as another class. Random flips are independent of where a record lies given its class, so under
    that null a cell's flipped records follow its records of their source class; a trigger's carriers carry
    ``t`` far more often than the records of their class elsewhere. Every record outside the cell is read
    the same way (at most ``_NOISE_POOL``, a seeded sample beyond), and so are the carriers not labelled
    ``t`` (at most ``_NOISE_CARRIERS``, their class counts scaled up). The uncertainty of ``r_s`` is kept:
    ``D_s`` is beta-binomial (uniform prior, updated by the outside counts), and the classes' counts are
    summed exactly by convolution.
    """
    d = int(np.sum(majority != t))
    if d == 0:
        return 1.0
    n_cls = int(y.max()) + 1
    outside = np.ones(y.size, dtype=bool)
    outside[carriers] = False
    others = _sample(carriers[y[carriers] != t], _NOISE_CARRIERS, 5)
    pool = _sample(np.flatnonzero(outside), _NOISE_POOL, 6)
    # one masked read for both (the same references, self excluded, as the labelled carriers')
    queries = np.concatenate([others, pool])
    read = np.concatenate(
        [np.zeros(0, np.int64)]
        + [_masked_majority(flat, y, queries[i : i + 500], refs, drop, k) for i in range(0, queries.size, 500)]
    )
    read_others, read_pool = read[: others.size], read[others.size :]
    scale = int(np.sum(y[carriers] != t)) / max(1, others.size)
    d_s = np.bincount(majority[majority != t], minlength=n_cls)
    m_s = d_s + np.rint(scale * np.bincount(read_others, minlength=n_cls)).astype(np.int64)
    pmf = np.ones(1)
    for s in range(n_cls):
        if s == t or m_s[s] == 0:
            continue
        as_s = read_pool == s
        c_s = int(np.sum(as_s & (y[pool] == t)))
        pmf = np.convolve(pmf, betabinom.pmf(np.arange(m_s[s] + 1), int(m_s[s]), c_s + 1, int(as_s.sum()) - c_s + 1))
    # the upper tail summed directly (1 - the lower part loses everything below 1e-16)
    return float(np.clip(pmf[d:].sum(), 0.0, 1.0))


@register
class FeatureInteractions(Detector):
    """Names pairs of value ranges that are a shortcut to one label only together, and flags their records."""

    name: ClassVar[str] = "feature_interactions"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    needs_labels: ClassVar[bool] = True

    def __init__(self, min_support: int = 3, purity: float = 0.0, alpha: float = 0.01, k: int = 5) -> None:
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
        grids = {c: [_grids(numeric[c], bins) for bins in _SCALES] for c in columns}
        discrete = {c: len(grids[c][0]) == 1 for c in columns}
        # two near-copies of one measurement (breast_cancer's radius and area) make a one-dimensional slice,
        # not an interaction: records "in one range but not the other" are the odd few, so the each-range-
        # alone null means nothing there (single-column shortcuts and residuals cover such pairs)
        ranks = np.column_stack([rankdata(np.nan_to_num(numeric[c])) for c in columns])
        rho = np.corrcoef(ranks, rowvar=False) if len(columns) > 1 else np.ones((1, 1))
        copies = {(a, b) for a, b in combinations(range(len(columns)), 2) if abs(rho[a, b]) >= _COPY_RHO}
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
        candidates: list[tuple[float, float, int, int, int, int, int, int, int, int]] = []
        n_hyp = 0
        counts: dict[tuple[int, int, int], IntArray] = {}
        for ia, ib, sc, ga, gb in self._grid_pairs(columns, grids, discrete, copies):
            codes_a = grids[columns[ia]][sc][ga][0]
            codes_b = grids[columns[ib]][sc][gb][0]
            count_a = counts.setdefault((ia, sc, ga), self._counts(codes_a, y, k_cls))
            count_b = counts.setdefault((ib, sc, gb), self._counts(codes_b, y, k_cls))
            width = int(codes_b.max()) + 1
            # only the occupied cells (at most n), whatever the number of bins
            occupied, cell_of = np.unique(codes_a * width + codes_b, return_inverse=True)
            key = cell_of * k_cls + y
            joint = np.bincount(key, minlength=occupied.size * k_cls).reshape(occupied.size, k_cls)
            other = np.bincount(key, weights=looks_other, minlength=occupied.size * k_cls).reshape(occupied.size, k_cls)
            total = joint.sum(axis=1)
            supported = total >= self.min_support
            n_hyp += int(supported.sum()) * k_cls
            ok = supported[:, None] & (joint >= self.purity * total[:, None]) & (other >= self.min_support)
            hit_rows, hit_cls = np.nonzero(ok)
            if hit_rows.size == 0:
                continue
            hit_cells = occupied[hit_rows]
            a_bins, b_bins = np.divmod(hit_cells, width)
            # each range alone, outside the cell (the cell's own records must not explain themselves)
            out_a = count_a[a_bins] - joint[hit_rows]
            out_b = count_b[b_bins] - joint[hit_rows]
            rate_a = out_a[np.arange(hit_cells.size), hit_cls] / np.maximum(out_a.sum(axis=1), 1)
            rate_b = out_b[np.arange(hit_cells.size), hit_cls] / np.maximum(out_b.sum(axis=1), 1)
            p0 = np.clip(np.maximum(np.maximum(rate_a, rate_b), prior[hit_cls]), 1e-3, 0.999)
            h = joint[hit_rows, hit_cls]
            m = total[hit_rows]
            d = other[hit_rows, hit_cls]
            p_other = binom.sf(d - 1, h, base_rate[hit_cls])
            p = binom.sf(h - 1, m, p0) * p_other
            for j in np.flatnonzero(p * max(1, n_hyp) < 1.0).tolist():
                candidates.append(
                    (
                        float(p_other[j]),
                        float(p[j]),
                        ia,
                        ib,
                        sc,
                        ga,
                        gb,
                        int(a_bins[j]),
                        int(b_bins[j]),
                        int(hit_cls[j]),
                    )
                )
        # the box scan (small tables, pairs of continuous columns): boxes centred on records, so a jittered
        # cluster around one value pair is not cut by a grid edge (wine: its values are a data value, and the
        # quantile edges of tied data sit on data values)
        scan, n_scan = self._scan(numeric, columns, discrete, rho, y, looks_other, base_rate, prior)
        n_hyp = max(1, n_hyp + n_scan)
        # strongest content disagreement first: the masked test decides, and large natural cells of a class
        # have astronomically small skew tails that would fill the candidates tested (clean digits)
        candidates.sort()
        flagged = np.zeros(n, dtype=bool)
        pvalues = np.ones(n)
        scores = np.zeros(n)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        held: dict[tuple[int, int], set[int]] = {}  # records flagged by each pair's findings
        tested = 0

        def test(
            in_cell: Any, ia: int, ib: int, t: int, p0: float, ranges: tuple[FloatArray, FloatArray], box: Any
        ) -> bool:
            """The masked test of one candidate; a finding and its flags when it holds."""
            carriers = np.flatnonzero(in_cell)
            labelled = carriers[y[carriers] == t]
            if labelled.size == 0 or flagged[labelled].mean() >= 0.5:
                return False
            drop = np.array([j for j, f in enumerate(fnames) if f in (columns[ia], columns[ib])], dtype=np.int64)
            # the masked test, with every record as a reference (self excluded): removing the carriers would
            # hide a class whose typical records fall in the cell
            majority = _masked_majority(flat, y, labelled, everyone, drop, self.k)
            disagree = labelled[majority != t]
            # natural disagreement of the class, masked the same way
            pool = _sample(np.setdiff1d(np.flatnonzero(y == t), carriers), 100, 3)
            base = float(np.mean(_masked_majority(flat, y, pool, everyone, drop, self.k) != t)) if pool.size else 0.5
            p_skew = float(binom.sf(labelled.size - 1, carriers.size, p0))
            # skew tail against the marginal-range null x disagreement tail against the natural rate
            p_natural = float(binom.sf(disagree.size - 1, labelled.size, max(base, 0.02))) if disagree.size else 1.0

            def adjusted_p(p_mask: float) -> float:
                """The candidate's p-value, Bonferroni over every hypothesis; 1.0 when it fails a condition."""
                # a box's evidence is its label's spike over the local density, not the skew over the strips;
                # the product of its two tails is combined exactly (Fisher)
                joint = p_skew * p_mask if box is None else _product_tail(box["p_spike"] * p_mask, 2)
                adjusted = float(min(1.0, joint * n_hyp))
                # the skew null (each range alone) does not hold for classes defined by interactions (a stroke
                # pair is what makes a '4'), so the masked disagreement must carry the evidence on its own too:
                # Bonferroni over the candidates that may be tested (clean digits: 3 of 41 carriers disagree)
                alone = p_mask * (_MAX_CANDIDATES + _SCAN_CANDIDATES) < self.alpha
                return adjusted if alone and adjusted < self.alpha and disagree.size >= self.min_support else 1.0

            # the label-noise null only tightens the test: read only for candidates that pass without it
            if adjusted_p(p_natural) >= self.alpha:
                return True
            # label noise: the disagreeing carriers labelled t against the share of t among records outside
            # that read as the same classes (random flips land where their source class lives, so a cell of
            # another class holds them); both nulls must fall (intersection-union: the larger tail)
            p_noise = _noise_tail(flat, y, carriers, labelled, majority, everyone, drop, t, self.k)
            p_mask = max(p_natural, p_noise)
            adjusted = adjusted_p(p_mask)
            if adjusted >= self.alpha:
                return True
            if box is not None and box["lam"] <= _NATURAL_SHARE * labelled.size:
                # so few records of the label are expected in the box that its labelled records are the
                # trigger's, including carriers whose other columns still read as the label (source records
                # near the class boundary) and label-noise records beside the trigger
                disagree = labelled
            label = rep.label_names[t]
            ea, eb = ranges
            cond = f"{columns[ia]} in [{ea[0]:.4g}, {ea[1]:.4g}) and {columns[ib]} in [{eb[0]:.4g}, {eb[1]:.4g})"
            # the same records through another cell or box of the same two columns, or through another second
            # column (a trigger's records fall into one cell of many pairs that hold one of its columns)
            repeated = held.setdefault((ia, ib), set()).issuperset(disagree.tolist()) or bool(flagged[disagree].all())
            held[(ia, ib)].update(disagree.tolist())
            flagged[disagree] = True
            pvalues[disagree] = np.minimum(pvalues[disagree], adjusted)
            strength = min(1.0, -np.log10(max(adjusted, 1e-300)) / (2.0 * -np.log10(self.alpha)))
            scores[disagree] = np.maximum(scores[disagree], 0.5 + 0.5 * strength)
            scores[labelled] = np.maximum(scores[labelled], 0.3)
            if repeated:
                # their p-values and scores take the stronger evidence, the report keeps one finding of them
                return True
            for i in disagree.tolist():
                reasons[i] = (*reasons.get(i, ()), f"has {cond}, jointly a shortcut to {label!r}")
            evidence: dict[str, Any] = {
                "carriers": int(carriers.size),
                "masked_p_value": float(f"{p_mask:.3g}"),
                "trigger": {columns[ia]: [float(ea[0]), float(ea[1])], columns[ib]: [float(eb[0]), float(eb[1])]},
                "features": [columns[ia], columns[ib]],
                "label": label,
                "joint_purity": round(labelled.size / carriers.size, 4),
                "prior": round(float(prior[t]), 4),
                "natural_disagreement": round(base, 3),
                "natural_p_value": float(f"{p_natural:.3g}"),
                "label_noise_p_value": float(f"{p_noise:.3g}"),
                "p_value": adjusted,
                "hypotheses": n_hyp,
            }
            if box is not None:
                evidence["expected_in_box"] = round(float(box["lam"]), 3)
            # the rest of a wider trigger: compared with records of the classes the flagged ones read as
            read_as = np.unique(majority[majority != t])
            shared = _shared_ranges(
                numeric, columns, (ia, ib), disagree, np.flatnonzero(np.isin(y, read_as)), rho, _SHARED_ALPHA
            )
            also = ""
            if shared:
                evidence["also_shared"] = {c: [lo, hi] for c, (lo, hi, _p) in shared.items()}
                evidence["also_shared_p_value"] = {c: float(f"{p:.3g}") for c, (_lo, _hi, p) in shared.items()}
                also = "; they also share " + ", ".join(
                    f"{c} in [{lo:.4g}, {hi:.4g}]" for c, (lo, hi, _p) in shared.items()
                )
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"interaction trigger: {cond} in {carriers.size} records, {labelled.size} labelled "
                        f"{label!r} (each range alone: at most {p0:.0%}); "
                        f"without the two columns {int((majority != t).sum())} of them look like other classes"
                        f"{also}"
                    ),
                    records=tuple(int(i) for i in disagree),  # the records it flags
                    evidence=evidence,
                    # severity follows the evidence: 0.5 at the Bonferroni line, 0.9 at its square
                    score=float(0.5 + 0.4 * strength),
                    p_value=adjusted,
                )
            )
            return True

        scanned = 0
        for cand in scan:
            if scanned >= _SCAN_CANDIDATES:
                break
            scanned += int(test(cand["in_box"], cand["ia"], cand["ib"], cand["t"], cand["p0"], cand["ranges"], cand))
        for _, _, ia, ib, sc, ga, gb, a_bin, b_bin, t in candidates:
            if tested >= _MAX_CANDIDATES:
                break
            ca, ea = grids[columns[ia]][sc][ga]
            cb, eb = grids[columns[ib]][sc][gb]
            in_cell = (ca == a_bin) & (cb == b_bin)
            carriers = np.flatnonzero(in_cell)
            coarse_bins = [self._coarse_bin(grids[col], carriers) for col in (columns[ia], columns[ib])]
            # each range alone, at the cell's scale and at the coarse one (a fine bin outside the cell may
            # hold no record at all, which is no evidence that the range does not predict the label)
            p0 = max(self._rate(ca, y, a_bin, t, in_cell), self._rate(cb, y, b_bin, t, in_cell), prior[t])
            for coarse, b in coarse_bins:
                p0 = max(p0, self._rate(coarse, y, b, t, in_cell))
            p0 = min(0.999, p0)
            ranges = (ea[a_bin : a_bin + 2], eb[b_bin : b_bin + 2])
            tested += int(test(in_cell, ia, ib, t, p0, ranges, None))
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={**params, "hypotheses": n_hyp, "tested": tested, "scanned": scanned},
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )

    def _scan(
        self,
        numeric: dict[str, FloatArray],
        columns: list[str],
        discrete: dict[str, bool],
        rho: FloatArray,
        y: IntArray,
        looks_other: Any,
        base_rate: FloatArray,
        prior: FloatArray,
    ) -> tuple[list[dict[str, Any]], int]:
        """Boxes centred on records, in standard deviations, on pairs of continuous columns of a small table.

        Each (record, pair, half-width) is a hypothesis: the records in the box that carry the centre's label
        are denser than that label's records around the box predict (the local density, so correlated
        columns and tie groups are no evidence), and look like another class. On a table of more than
        ``_SCAN_MAX_CENTERS`` records only centres whose content looks like another class are evaluated;
        Bonferroni counts every record as a centre either way. Two near-copies (|Spearman| >= 0.9) are one
        measurement along a band: their boxes are taken along and across the band (coordinates turned by
        45 degrees), so the band's density is the line through the box, not an interaction.
        """
        n = y.size
        cont = [i for i, c in enumerate(columns) if not discrete[c]]
        pairs = list(combinations(cont, 2))
        if n > _SCAN_MAX_RECORDS or not pairs:
            return [], 0
        n_scan = n * len(pairs) * len(_HALF_WIDTHS)
        # every record is a centre on a small table; on a larger one, those whose content looks like another
        # class (a poisoned record's mostly does: only the trigger's columns were set)
        pool = np.arange(n, dtype=np.int64) if n <= _SCAN_MAX_CENTERS else np.flatnonzero(looks_other)
        # the centres a budget allows; with too few to find a cluster, no scan (the grids still run)
        most = min(_SCAN_MAX_CENTERS, _SCAN_BUDGET // (n * len(pairs)))
        if most < 10:
            return [], 0
        centers = _sample(pool, most, 4)
        if centers.size == 0:
            return [], n_scan
        # coordinates in standard deviations, not quantiles: quantile ranks stretch a tie group (wine's
        # alcalinity has eight records at 21.5) and split a cluster jittered around a tied value
        u: dict[int, FloatArray] = {}
        lims: dict[int, tuple[float, float]] = {}
        for i in cont:
            v = numeric[columns[i]]
            fin = np.isfinite(v)
            z = np.full(n, np.inf)  # a missing value is in no box
            z[fin] = (v[fin] - v[fin].mean()) / (v[fin].std() or 1.0)
            u[i] = z
            lims[i] = (float(z[fin].min()), float(z[fin].max()))
        t = y[centers]
        same = y[None, :] == t[:, None]
        same_other = same & np.asarray(looks_other, dtype=bool)[None, :]
        found: dict[tuple[int, int, int], dict[str, Any]] = {}
        for ia, ib in pairs:
            xa, xb, lim_a, lim_b = u[ia], u[ib], lims[ia], lims[ib]
            if abs(rho[ia, ib]) >= _COPY_RHO:
                xa, xb = (
                    (xa + np.sign(rho[ia, ib]) * xb) / np.sqrt(2.0),
                    (xa - np.sign(rho[ia, ib]) * xb) / np.sqrt(2.0),
                )
                fin = np.isfinite(xa) & np.isfinite(xb)
                xa, xb = np.where(fin, xa, np.inf), np.where(fin, xb, np.inf)
                lim_a, lim_b = (
                    (float(xa[fin].min()), float(xa[fin].max())),
                    (float(xb[fin].min()), float(xb[fin].max())),
                )
            da = np.abs(xa[None, :] - xa[centers][:, None])
            db = np.abs(xb[None, :] - xb[centers][:, None])
            for w in _HALF_WIDTHS:
                box = (da <= w) & (db <= w)
                h = (box & same).sum(axis=1)
                d = (box & same_other).sum(axis=1)
                # the unmasked vote only screens (the trigger's columns can pull a carrier's vote to the label)
                hit = (h >= self.min_support) & (d >= 1)
                if not hit.any():
                    continue
                # each strip alone, outside the box, at least as wide as a coarse bin (a narrow strip holds a
                # handful of records, whose label share is no estimate)
                wide = max(w, _STRIP)
                sa, sb = (da <= wide) & ~box, (db <= wide) & ~box
                rate_a = (sa & same).sum(axis=1) / np.maximum(sa.sum(axis=1), 1)
                rate_b = (sb & same).sum(axis=1) / np.maximum(sb.sum(axis=1), 1)
                p0 = np.clip(np.maximum(np.maximum(rate_a, rate_b), prior[t]), 1e-3, 0.999)
                # the label's local density: its records around the box, in the ring out to _RING half-widths
                # and along each of the two lines through the box (a tie group of one column is a line, whose
                # records the ring's area would spread too thin), each per length or area clipped to the
                # data's range, plus one so an empty neighbourhood is not certainty; the largest is the null
                ca, cb = xa[centers], xb[centers]
                in_a, in_b = _span(ca, w, lim_a), _span(cb, w, lim_b)
                out_a, out_b = _span(ca, _RING * w, lim_a), _span(cb, _RING * w, lim_b)
                near_a, near_b = (da <= _RING * w) & same, (db <= _RING * w) & same
                ring = (near_a & near_b).sum(axis=1) - h
                line_a = (near_b & (da <= w)).sum(axis=1) - h  # same range of a, b around it
                line_b = (near_a & (db <= w)).sum(axis=1) - h
                lam = np.maximum.reduce(
                    [
                        (ring + 1) * in_a * in_b / np.maximum(out_a * out_b - in_a * in_b, 1e-12),
                        (line_a + 1) * in_b / np.maximum(out_b - in_b, 1e-12),
                        (line_b + 1) * in_a / np.maximum(out_a - in_a, 1e-12),
                    ]
                )
                p_spike = poisson.sf(h - 1, lam)
                p = _product_tail(p_spike * binom.sf(d - 1, h, base_rate[t]), 2)
                for j in np.flatnonzero(hit).tolist():
                    key = (ia, ib, j)
                    if key in found and found[key]["p"] <= p[j]:
                        continue
                    va, vb = numeric[columns[ia]][box[j]], numeric[columns[ib]][box[j]]
                    found[key] = {
                        "p": float(p[j]),
                        "in_box": box[j],
                        "ia": ia,
                        "ib": ib,
                        "t": int(t[j]),
                        "p0": float(p0[j]),
                        "lam": float(lam[j]),
                        "p_spike": float(p_spike[j]),
                        "ranges": (
                            np.array([va.min(), np.nextafter(va.max(), np.inf)]),
                            np.array([vb.min(), np.nextafter(vb.max(), np.inf)]),
                        ),
                    }
        # one candidate per distinct set of labelled carriers, strongest first
        out: list[dict[str, Any]] = []
        seen: set[bytes] = set()
        for cand in sorted(found.values(), key=lambda c: c["p"]):
            sig = np.packbits(cand["in_box"] & (y == cand["t"])).tobytes()
            if sig in seen:
                continue
            seen.add(sig)
            out.append(cand)
        return out, n_scan

    @staticmethod
    def _counts(codes: IntArray, y: IntArray, k: int) -> IntArray:
        """Records per bin (rows) and label (columns)."""
        return np.bincount(codes * k + y, minlength=(_MAX_BINS + 1) * k).reshape(_MAX_BINS + 1, k)

    @staticmethod
    def _coarse_bin(col_grids: list[list[tuple[IntArray, FloatArray]]], carriers: IntArray) -> tuple[IntArray, int]:
        """The column's coarse codes and the coarse bin most of the carriers fall in."""
        coarse = col_grids[0][0][0]
        return coarse, int(np.bincount(coarse[carriers]).argmax())

    @staticmethod
    def _grid_pairs(
        columns: list[str],
        grids: dict[str, list[list[tuple[IntArray, FloatArray]]]],
        discrete: dict[str, bool],
        copies: set[tuple[int, int]],
    ) -> list[tuple[int, int, int, int, int]]:
        """(column a, column b, scale, grid of a, grid of b) to search: grids of one scale are paired; two
        columns of few distinct values have one grid each, searched once."""
        out = []
        for ia, ib in combinations(range(len(columns)), 2):
            if (ia, ib) in copies:
                continue
            for sc in range(len(_SCALES)):
                if sc > 0 and discrete[columns[ia]] and discrete[columns[ib]]:
                    continue
                for ga in range(len(grids[columns[ia]][sc])):
                    for gb in range(len(grids[columns[ib]][sc])):
                        out.append((ia, ib, sc, ga, gb))
        return out

    @staticmethod
    def _rate(codes: IntArray, y: IntArray, b: int, t: int, exclude: Any) -> float:
        """P(label t | bin b) among records outside ``exclude``."""
        inside = (codes == b) & ~exclude
        return float(np.mean(y[inside] == t)) if inside.any() else 0.0
