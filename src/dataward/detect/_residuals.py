"""Single-feature manipulation: a feature that does not fit the record's other features, within its class.

An attacker who biases one feature of some records of one class (a sensor offset, an edited field) can keep
every value inside its marginal range, so range and per-column outlier checks see nothing. The edited value
no longer agrees with the rest of the record: within a class, each feature is predicted from the others by a
shrunk Gaussian model (Ledoit-Wolf precision matrix, the best linear predictor; fitted out of fold), and the
residual is standardised by its class's robust scale (MAD). Columns go through a rank-Gaussian map, except
those in an exact linear relation (kept linear: the map would bend it); a class made of clusters is a
Gaussian mixture chosen by BIC, on the mapped or the raw columns, and each feature is read within the
components its record's other features point to (docs/adr/0098-single-feature-class-mixtures-and-exact-relations.md).

Null and calibration: per class, the pooled |z| of every feature of every record is the reference; a
record's p-value for feature ``j`` is its tail p-value against that reference (conformal rank, extended
beyond the 90th percentile by a generalised Pareto fit, :mod:`dataward.detect._tails`), Bonferroni-corrected
over the features; records are flagged by Benjamini-Hochberg at ``fdr`` over all records. The finding names
the feature, the class and how far the values sit from what the other features predict.

An edit spread over many records (a few percent of the batch) leaves each one only a little odd, far below
that record-level bar, but far more of them than chance on one feature of one class: per (class, feature)
the count of records with p <= 0.05, 0.01 or 0.001 is tested against a two-way model of chance (the class's
rate times the feature's rate in the other classes; :func:`excess_table`), with Benjamini-Hochberg at
``fdr`` over every class x feature (docs/adr/0062-single-feature-excess-per-class.md). A discovered excess
is a finding naming the feature; it flags its records only from medium severity on (Bonferroni p <= 1e-3),
and ranks them by their p-value on that one feature.

Label noise: records of other classes relabelled into a class bend its model, and natural records then
look edited. An excess must also be a discovery (Benjamini-Hochberg at ``fdr``) among the records that read
as their label by their 5 nearest records' labels, with the class models fitted on those alone (an
intersection-union test; it can only remove findings; docs/adr/0084-single-feature-label-noise-view.md).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from dataward.core.evidence import severity_of_evidence
from dataward.detect._tails import benjamini_hochberg, strength_score, tail_pvalues
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

_MAD = 1.4826  # MAD -> standard deviation for a normal distribution


def rank_gauss(x: FloatArray) -> FloatArray:
    """Each column mapped through its empirical CDF to a standard normal (ties share their mid-rank)."""
    from scipy.stats import norm, rankdata

    n = x.shape[0]
    ranks = rankdata(x, axis=0, method="average")
    return np.asarray(norm.ppf(ranks / (n + 1.0)), dtype=np.float64)


def conditional_residuals(
    x: FloatArray,
    folds: IntArray,
    weights: FloatArray | None = None,
    mixture: tuple[int, str] = (1, "full"),
    seed: int = 0,
) -> FloatArray:
    """Out-of-fold residual of each feature given the others (x: one class's records, standardised).

    ``weights`` (0/1) leaves records out of the fits (a trimmed second pass), never out of the output.
    ``mixture`` (components, covariance type; :func:`class_mixture`) models a class made of clusters: each
    feature's residual is then read within the components its record's *other* features point to.
    """
    from sklearn.covariance import LedoitWolf

    n, d = x.shape
    out = np.zeros((n, d))
    n_folds = int(folds.max()) + 1
    use = np.ones(n, dtype=bool) if weights is None else weights > 0
    for f in range(n_folds):
        train, test = (folds != f) & use, folds == f
        if train.sum() < 3 or not test.any():
            continue
        if mixture[0] > 1:
            out[test] = _mixture_residuals(x[train], x[test], mixture, seed + f)
            continue
        mean = x[train].mean(axis=0)
        precision = LedoitWolf().fit(x[train] - mean).precision_
        diag = np.diag(precision).copy()
        diag[diag <= 0] = 1.0
        # residual of x_j on the rest = (Theta (x - mean))_j / Theta_jj for a Gaussian model
        out[test] = ((x[test] - mean) @ precision) / diag
    return out


_MIXTURE_SAMPLE = 4000  # records a mixture is chosen and fitted on (all records are read by it)


def _sample(n: int, seed: int) -> IntArray:
    """At most :data:`_MIXTURE_SAMPLE` of ``n`` positions, a seeded sample (all of them if fewer)."""
    if n <= _MIXTURE_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, _MIXTURE_SAMPLE, replace=False))


def mixture_params(n_components: int, kind: str, d: int) -> int:
    """Free parameters of a Gaussian mixture in d dimensions (means, covariances, weights)."""
    return n_components * d + (n_components if kind == "full" else 1) * d * (d + 1) // 2 + n_components - 1


def class_mixture(x: FloatArray, seed: int, max_components: int = 3) -> tuple[tuple[int, str], float]:
    """The Gaussian mixture (components, covariance type) that BIC prefers for one class's records.

    One Gaussian unless a mixture is clearly better: a class made of clusters (a bimodal class) does not
    fit one Gaussian, and the misfit reads as an edit of the features that separate the clusters. A mixture
    is a candidate only when the class has more records than it has free parameters (BIC is meaningless,
    and a full covariance singular, below that). Returns the choice and its BIC.
    """
    from sklearn.mixture import GaussianMixture

    n, d = x.shape
    best, choice = np.inf, (1, "full")
    for k in range(1, max_components + 1):
        for kind in ("full", "tied"):
            if k == 1 and kind == "tied":
                continue
            if k > 1 and mixture_params(k, kind, d) >= n:
                continue
            gm = GaussianMixture(k, covariance_type=kind, reg_covar=1e-4, n_init=2, random_state=seed).fit(x)
            bic = float(gm.bic(x))
            if bic < best:
                best, choice = bic, (k, kind)
    return choice, best


def rank_gauss_log_jacobian(raw: FloatArray, gauss: FloatArray, rows: IntArray) -> FloatArray:
    """``log dg/dx`` of the rank-Gaussian map g of each column at the records ``rows``: a Gaussian kernel
    density of the column (all records) over the standard normal density at the mapped value."""
    from scipy.stats import gaussian_kde, norm

    out = np.zeros((rows.size, raw.shape[1]))
    reference = _sample(raw.shape[0], 0)
    for j in range(raw.shape[1]):
        column = raw[:, j]
        if column.std() <= 0:
            continue
        density = gaussian_kde(column[reference])(column[rows])
        out[:, j] = np.log(np.maximum(density, 1e-300)) - norm.logpdf(gauss[rows, j])
    return out


def class_representation(
    raw: FloatArray, gauss: FloatArray, rows: IntArray, cols: IntArray, seed: int
) -> tuple[FloatArray, tuple[int, str]]:
    """One class's model columns and mixture: rank-Gaussian (exact linear relations kept linear) or every
    column affinely standardised, whichever BIC prefers for the raw values, each with its best mixture.

    The rank-Gaussian map tames heavy tails, but it bends a class made of clusters (a steep empirical CDF
    inside a mode, flat between modes), and the bend reads as an edit; on such a class the raw values can
    be the better model. The two are compared on one scale, the density of the raw values: the map's
    log-Jacobian enters the likelihood. Rank-Gaussian, one Gaussian, when no mixture fits the class's
    records (:func:`class_mixture`).
    """
    raw_c, gauss_c = raw[np.ix_(rows, cols)], gauss[np.ix_(rows, cols)]
    xg, exact = linear_where_exact(raw_c, gauss_c)
    d = xg.shape[1]
    if mixture_params(2, "tied", d) >= rows.size:
        return xg, (1, "full")
    scale = gauss_c.std(axis=0) / np.maximum(raw_c.std(axis=0), 1e-300)
    xs = (raw_c - raw_c.mean(axis=0)) * scale + gauss_c.mean(axis=0)
    sample = _sample(rows.size, seed)  # the choice is made on a sample of a large class
    n = sample.size
    mix_g, bic_g = class_mixture(xg[sample], seed)
    mix_s, bic_s = class_mixture(xs[sample], seed)
    log_jac = rank_gauss_log_jacobian(raw[:, cols], gauss[:, cols], rows[sample])
    log_jac[:, exact] = np.log(scale[exact])
    # BIC of the raw values = BIC of the mapped values - 2 x the log-Jacobian summed over the records
    if bic_s - 2.0 * n * float(np.log(scale).sum()) < bic_g - 2.0 * float(log_jac.sum()):
        return xs, mix_s
    return xg, mix_g


def _mixture_residuals(train: FloatArray, test: FloatArray, mixture: tuple[int, str], seed: int) -> FloatArray:
    """Each test record's feature j as a normal score of its conditional distribution given its other
    features under a Gaussian mixture fitted on ``train`` (components by the mixture's hard assignment, each
    with a Ledoit-Wolf covariance; "tied": one pooled within-component covariance). The components are
    weighted by how well each explains the record's *other* features, so an edit of j does not move the
    record into another component. A fold whose mixture has a component too small to fit is read as one
    component, on the same scale."""
    from scipy.special import logsumexp, ndtr, ndtri
    from sklearn.covariance import LedoitWolf
    from sklearn.mixture import GaussianMixture

    k, kind = mixture
    d = train.shape[1]
    sample = _sample(train.shape[0], seed)
    gm = GaussianMixture(k, covariance_type=kind, reg_covar=1e-4, n_init=2, random_state=seed).fit(train[sample])
    labels = gm.predict(train)
    sizes = np.bincount(labels, minlength=k)
    if sizes.min() < d + 2:
        k, labels, sizes = 1, np.zeros_like(labels), np.asarray([labels.size])
    means = np.stack([train[labels == c].mean(axis=0) for c in range(k)])
    centred_train = train - means[labels]
    if kind == "tied":
        precisions = [LedoitWolf(assume_centered=True).fit(centred_train).precision_] * k
    else:
        precisions = [LedoitWolf(assume_centered=True).fit(centred_train[labels == c]).precision_ for c in range(k)]
    log_joint = np.zeros((k, test.shape[0], d))  # log p(component) + log p(other features | component)
    z_within = np.zeros((k, test.shape[0], d))
    for c in range(k):
        theta = precisions[c]
        diag = np.maximum(np.diag(theta), 1e-12)
        centred = test - means[c]
        a = centred @ theta
        _sign, logdet = np.linalg.slogdet(theta)
        log_full = 0.5 * logdet - 0.5 * np.einsum("ij,ij->i", a, centred) - 0.5 * d * np.log(2 * np.pi)
        resid = a / diag  # x_j minus its conditional mean given the rest, within component c
        log_cond = 0.5 * np.log(diag) - 0.5 * diag * resid**2 - 0.5 * np.log(2 * np.pi)
        log_joint[c] = np.log(sizes[c] / sizes.sum()) + log_full[:, None] - log_cond
        # read against the component's own residual spread, not the shrunk model's conditional variance:
        # shrinkage inflates the latter the more, the better a feature is predicted, and by a different
        # factor in each component, which no one scale per feature undoes
        members = centred_train[labels == c] @ theta / diag
        spread = _MAD * np.median(np.abs(members - np.median(members, axis=0)), axis=0)
        z_within[c] = resid / np.maximum(spread, np.maximum(0.5 * members.std(axis=0), 1e-12))
    weight = np.exp(log_joint - logsumexp(log_joint, axis=0))
    lower, upper = (weight * ndtr(z_within)).sum(axis=0), (weight * ndtr(-z_within)).sum(axis=0)
    with np.errstate(divide="ignore"):
        z = np.where(lower < upper, ndtri(np.maximum(lower, 1e-300)), -ndtri(np.maximum(upper, 1e-300)))
    return np.asarray(z, dtype=np.float64)


_EXACT = 1e-8  # relative variance below which a linear relation between columns is exact (see below)


def exact_relation_columns(raw: FloatArray) -> BoolArray:
    """The columns that take part in an exact linear relation among one class's raw values (a column that
    is a linear combination of others), robust to a minority of records that break it (an edit of one).

    Each column is regressed on the others, then refitted on the half of the records it fits best
    (concentration steps, as in least trimmed squares), so records off the relation do not hide it. Exact
    means the residual variance on that half is below :data:`_EXACT` of the column's variance: values kept
    to 5 significant digits or more (float32 has 7) keep an exact relation that far, and no natural
    dependence comes near it.
    """
    n, d = raw.shape
    found = np.zeros(d, dtype=bool)
    # only columns with a robust scale: where most of the class shares one value (blank pixels), half the
    # records fit any relation among such columns exactly
    live = np.flatnonzero(np.median(np.abs(raw - np.median(raw, axis=0)), axis=0) > 0)
    if live.size < 2 or n < 2 * live.size + 2:
        return found
    x = np.column_stack([(raw[:, live] - raw[:, live].mean(axis=0)) / raw[:, live].std(axis=0), np.ones(n)])
    for j in range(live.size):
        others = np.delete(x, j, axis=1)
        use = np.ones(n, dtype=bool)
        for _ in range(3):
            coef = np.linalg.lstsq(others[use], x[use, j], rcond=None)[0]
            residual = np.abs(x[:, j] - others @ coef)
            use = residual <= np.median(residual)
        found[live[j]] = float(np.mean(residual[use] ** 2)) <= _EXACT
    return found


def linear_where_exact(raw: FloatArray, gauss: FloatArray) -> tuple[FloatArray, BoolArray]:
    """One class's model columns: rank-Gaussian, except those in an exact linear relation, which keep their
    raw values (affinely matched to the rank-Gaussian column's mean and spread in the class).

    A rank-Gaussian map is monotone but not linear, so it turns an exact linear relation (a column that is a
    sum or a combination of others) into a curved one: its residuals are then the curvature, structure
    rather than noise, and scaled by the near-zero residual scale of a column so well predicted they read as
    edits (README, the false-alarm row). On the raw values the relation stays exact and an edit of any of its
    columns breaks it. Returns the columns and which of them are linear.
    """
    exact = exact_relation_columns(raw)
    if not exact.any():
        return gauss, exact
    out = gauss.copy()
    r = raw[:, exact]
    sd = np.maximum(r.std(axis=0), 1e-300)
    out[:, exact] = (r - r.mean(axis=0)) / sd * gauss[:, exact].std(axis=0) + gauss[:, exact].mean(axis=0)
    return out, exact


def unflagged_on_common_scale(scores: FloatArray, pvalues: FloatArray, flagged: BoolArray) -> FloatArray:
    """Unflagged records' scores as ``0.49 L / (L + 1)`` with ``L = -log10 p`` (flagged ones unchanged).

    The ensemble ranks unflagged records by a power mean of the detector scores (ADR 0003, 0085). Mapped
    linearly up to twice the flag line, this detector's unflagged scores stayed below 0.14 where the
    other tabular detectors reach 0.3-0.5 for their top 1 %, so a record only this detector finds odd was
    averaged away (ADR 0050). The map is monotone: the detector's own ranking is unchanged.
    """
    with np.errstate(divide="ignore"):
        strength = -np.log10(np.clip(np.asarray(pvalues, dtype=np.float64), 1e-300, 1.0))
    out: FloatArray = np.where(np.asarray(flagged, dtype=bool), scores, 0.49 * strength / (strength + 1.0))
    return out


_CELL_LEVELS = (0.05, 0.01, 0.001)  # record p-value cut-offs a feature's excess is counted at
_READ_MAX = 4000  # records read per class for the label-noise view
_FLAG_P = 1e-3  # an excess flags its records from medium severity on (dataward.core.evidence)


def dispersion(k: FloatArray, expected: FloatArray, rate: FloatArray, trials: FloatArray, live: BoolArray) -> float:
    """The counts' over-dispersion: the median Pearson ratio ``(k - e)^2 / e`` of the live cells over the
    median the same ratio has when every cell's count is exactly binomial (``trials``, ``rate``); at least 1.

    The typical cell defines the dispersion, not the outliers. The chi-square(1) median (0.455) is the
    large-count limit; at the 0.001 cut-off a class expects a count below one, where the ratio is discrete
    and its null median is far from 0.455, which used to inflate or deflate the dispersion at random
    (docs/adr/0080-single-feature-dispersion-exact-null-median.md). The null median is the pooled
    distribution's: each live cell weighs equally.
    """
    from scipy.stats import binom

    cells = np.flatnonzero(live.ravel())
    if cells.size == 0:
        return 1.0
    observed = float(np.median(((k - expected) ** 2 / np.maximum(expected, 1e-12)).ravel()[cells]))
    values: list[FloatArray] = []
    weights: list[FloatArray] = []
    for c in cells:
        n, p, e = int(trials.ravel()[c]), float(rate.ravel()[c]), float(expected.ravel()[c])
        hi = int(min(n, binom.ppf(1.0 - 1e-9, n, p)))
        support = np.arange(hi + 1, dtype=np.float64)
        values.append((support - e) ** 2 / max(e, 1e-12))
        weights.append(binom.pmf(support, n, p) / cells.size)
    v, w = np.concatenate(values), np.concatenate(weights)
    order = np.argsort(v, kind="stable")
    cumulative = np.cumsum(w[order])
    null_median = float(v[order][min(int(np.searchsorted(cumulative, 0.5 * cumulative[-1])), v.size - 1)])
    return max(1.0, observed / max(null_median, 1e-12))


def excess_table(
    p_by_class: list[FloatArray], mask: BoolArray, prior: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per (class, feature): the p-value of its excess of small record p-values, the cut-off it was found
    at, and the count chance explains there; Bonferroni over the cut-offs.

    ``p_by_class[c]`` holds class c's record x feature p-values (every feature; ``mask[c, j]`` says whether
    feature j is tested in class c). An edit made to many records of one class on one feature leaves each
    record only a little odd, but together far more of them than chance on that one feature. Chance is a
    two-way model of the counts: a class's rate (from all its features) times the feature's rate relative
    to its class in the *other* classes (some features are heavier-tailed than others everywhere; an
    edit confined to one class does not raise its own expectation), shrunk to 1 by ``prior`` pseudo-counts.
    The counts' remaining over-dispersion is estimated from the median cell and applied as a
    quasi-binomial (counts and trials divided by it); the tail is the regularised incomplete beta.
    """
    from scipy.special import betainc

    n_classes, d = mask.shape
    sizes = np.asarray([pc.shape[0] for pc in p_by_class], dtype=np.float64)
    best = np.ones((n_classes, d))
    level = np.full((n_classes, d), _CELL_LEVELS[0])
    chance = np.zeros((n_classes, d))
    if n_classes == 0:  # no class large enough to model
        return best, level, chance
    for a in _CELL_LEVELS:
        k = np.asarray([(pc <= a).sum(axis=0) for pc in p_by_class], dtype=np.float64) * mask
        tested = mask.sum(axis=1)
        rate = np.where(tested > 0, k.sum(axis=1) / np.maximum(sizes * tested, 1.0), 0.0)  # per class
        base = sizes * rate  # per class: a typical feature's count
        if not np.any(base > 0):
            continue
        k_all, b_all = k.sum(axis=0), (base[:, None] * mask).sum(axis=0)
        factor = (k_all[None, :] - k + prior) / (b_all[None, :] - base[:, None] * mask + prior)
        expected = base[:, None] * factor
        live = mask & (expected > 0)
        r = np.clip(expected / np.maximum(sizes[:, None], 1.0), 1e-12, 1.0 - 1e-12)
        phi = dispersion(k, expected, r, np.broadcast_to(sizes[:, None], k.shape), live)
        kk, nn = k / phi, sizes[:, None] / phi
        tail = np.ones((n_classes, d))
        hit = live & (k > expected) & (kk > 0)
        tail[hit] = betainc(kk[hit], np.maximum(nn - kk, 1e-9)[hit] + 1.0, r[hit])
        better = tail < best
        best[better], level[better], chance[better] = tail[better], a, expected[better]
    return np.minimum(1.0, best * len(_CELL_LEVELS)), level, chance


@register
class FeatureResiduals(Detector):
    """Flags records with one feature far from what their other features predict, within their class."""

    name: ClassVar[str] = "feature_residuals"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    needs_labels: ClassVar[bool] = True

    def __init__(self, fdr: float = 0.01, folds: int = 5, min_class: int = 20, mixtures: bool = True) -> None:
        if not 0.0 < fdr < 1.0:
            raise TypeError(f"fdr must be in (0, 1), not {fdr!r}")
        self.fdr = float(fdr)
        self.folds = int(folds)
        self.min_class = int(min_class)
        self.mixtures = bool(mixtures)

    @staticmethod
    def _zscores(
        x: FloatArray,
        folds: IntArray,
        weights: FloatArray | None,
        mixture: tuple[int, str] = (1, "full"),
        seed: int = 0,
    ) -> FloatArray:
        res = conditional_residuals(x, folds, weights, mixture, seed)
        ref = res
        med = np.median(ref, axis=0)
        mad = _MAD * np.median(np.abs(ref - med), axis=0)
        # discrete columns (pixel counts, small integers) have a MAD near 0: never scale below half the s.d.
        mad = np.maximum(mad, np.maximum(0.5 * ref.std(axis=0), 1e-6))
        return np.asarray(np.abs(res - med) / mad, dtype=np.float64)

    @staticmethod
    def _class_z(
        x: FloatArray, folds: IntArray, use: BoolArray, mixture: tuple[int, str] = (1, "full"), seed: int = 0
    ) -> FloatArray:
        """Robust residual z of one class's records (fits on the records in ``use`` only), two passes."""
        z = FeatureResiduals._zscores(x, folds, use.astype(np.float64), mixture, seed)
        # second pass without the least typical tenth: a manipulated share of the class must not teach the
        # model its own edit
        worst_z = z.max(axis=1)
        keep = use & (worst_z <= np.quantile(worst_z[use], 0.9)) if use.any() else use
        return FeatureResiduals._zscores(x, folds, keep.astype(np.float64), mixture, seed)

    @staticmethod
    def _reads_as_label(x: FloatArray, y: IntArray, classes: list[int], seed: int) -> BoolArray:
        """Whether each record reads as its label by its 5 nearest records' labels (at most
        :data:`_READ_MAX` records read per class, a seeded sample; unread ones count as reading as theirs)."""
        from dataward.detect._spectral import ClassReader

        n = y.shape[0]
        out = np.ones(n, dtype=bool)
        labelled = np.flatnonzero(y >= 0)
        if labelled.size < 3:
            return out
        reader = ClassReader(x[labelled], y[labelled], seed)
        rng = np.random.default_rng(seed)
        pos = np.full(n, -1, dtype=np.int64)
        pos[labelled] = np.arange(labelled.size)
        for c in classes:
            idx = np.flatnonzero(y == c)
            if idx.size > _READ_MAX:
                idx = np.sort(rng.choice(idx, _READ_MAX, replace=False))
            out[idx] = reader.read(pos[idx]) == c
        return out

    @staticmethod
    def _cells(
        z: FloatArray, scaled: BoolArray, y: IntArray, classes: list[int], rows: BoolArray | None = None
    ) -> list[tuple[int, int, IntArray, FloatArray, tuple[float, float, float]]]:
        """Every (class, feature) with a robust scale: its records, their p-values against the class's
        pooled reference of those features, and :func:`excess_table` of them.

        A feature without a robust scale within the class (more than half the class shares one value, as
        pixels that are mostly blank) is left out: its rare other values are large residuals by
        construction, far more often than the pooled rate, and would be read as an edit.
        """
        out: list[tuple[int, int, IntArray, FloatArray, tuple[float, float, float]]] = []
        d = z.shape[1]
        members, p_by_class, mask = [], [], np.zeros((len(classes), d), dtype=bool)
        for row, c in enumerate(classes):
            idx = np.flatnonzero((y == c) if rows is None else (y == c) & rows)
            cols = np.flatnonzero(scaled[idx[0]]) if idx.size else np.zeros(0, dtype=np.int64)
            p = np.ones((idx.size, d))
            if cols.size >= 2:
                zz = z[np.ix_(idx, cols)]
                p[:, cols] = tail_pvalues(zz.ravel(), zz.ravel()).reshape(zz.shape)
                mask[row, cols] = True
            members.append(idx)
            p_by_class.append(p)
        best, level, chance = excess_table(p_by_class, mask)
        for row, c in enumerate(classes):
            for j in np.flatnonzero(mask[row]):
                cell = (float(best[row, j]), float(level[row, j]), float(chance[row, j]))
                out.append((int(c), int(j), members[row], p_by_class[row][:, j], cell))
        return out

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        n = rep.n_records
        params: dict[str, Any] = {
            "fdr": self.fdr,
            "folds": self.folds,
            "min_class": self.min_class,
            "mixtures": self.mixtures,
        }
        x = np.asarray(rep.features, dtype=np.float64) if rep.features is not None else None
        if x is None or x.ndim != 2 or x.shape[1] < 2 or rep.labels is None:
            return DetectorResult(self.name, np.zeros(n), np.zeros(n, dtype=bool), {}, skipped="needs 2+ features")
        y = np.asarray(rep.labels, dtype=np.int64)
        d = x.shape[1]
        names = list(rep.feature_names or [f"feature {j}" for j in range(d)])
        rng = np.random.default_rng(seed)
        z_all = np.full((n, d), np.nan)  # robust residual z of each record's features, within its class
        p_pool = np.ones((n, d))  # ... as p-values against its class's pooled reference
        scaled = np.zeros((n, d), dtype=bool)  # the feature has a robust scale within the record's class
        classes_used = []
        fits: dict[int, tuple[IntArray, IntArray, IntArray, FloatArray, tuple[int, str]]] = {}
        gauss = rank_gauss(x)  # heavy-tailed and skewed columns would dominate a linear model's residuals
        for c in np.unique(y[y >= 0]):
            idx = np.flatnonzero(y == c)
            if idx.size < max(self.min_class, self.folds * 2):
                continue
            spread = gauss[idx].std(axis=0)
            cols = np.flatnonzero(spread > 1e-6)  # a constant column within the class carries nothing
            if cols.size < 2:
                continue
            folds = rng.permutation(np.arange(idx.size) % self.folds).astype(np.int64)
            if self.mixtures:
                xg, mixture = class_representation(x, gauss, idx, cols, seed)
            else:
                xg, mixture = linear_where_exact(x[idx][:, cols], gauss[idx][:, cols])[0], (1, "full")
            z = self._class_z(xg, folds, np.ones(idx.size, dtype=bool), mixture, seed)
            fits[int(c)] = (idx, cols, folds, xg, mixture)
            # one pooled reference per class (every feature of every record, the trimmed ones included, so
            # the tail stays conservative): per-feature tails are too thin to fit on a few hundred records
            p = tail_pvalues(z.ravel(), z.ravel()).reshape(z.shape)
            z_all[np.ix_(idx, cols)] = z
            p_pool[np.ix_(idx, cols)] = p
            raw = x[idx][:, cols]
            scaled[np.ix_(idx, cols)] = (np.median(np.abs(raw - np.median(raw, axis=0)), axis=0) > 0)[None, :]
            classes_used.append(int(c))
        best = np.argmin(p_pool, axis=1)
        rows = np.arange(n)
        n_cols = np.maximum(np.isfinite(z_all).sum(axis=1), 1)
        pvalues = np.minimum(1.0, p_pool[rows, best] * n_cols)
        worst = best.astype(np.int64)
        zmax = np.nan_to_num(z_all[rows, best])
        flagged = benjamini_hochberg(pvalues, self.fdr)
        cells = self._cells(z_all, scaled, y, classes_used)
        # features whose excess of odd values within a class is a discovery (BH over every class x feature)
        cell_p = np.asarray([cell[4][0] for cell in cells]) if cells else np.ones(0)
        cell_found = benjamini_hochberg(cell_p, self.fdr)
        noise_p: dict[tuple[int, int], float] = {}
        if cell_found.any():
            # the label-noise view: under label noise a class holds records of other classes, which bend its
            # model and make natural records look edited; the excess must also be a discovery among the
            # records that read as their label, with the class models fitted on those alone
            # (docs/adr/0084-single-feature-label-noise-view.md)
            as_label = self._reads_as_label(gauss, y, classes_used, seed)
            z_label = np.full((n, d), np.nan)
            for c in classes_used:
                idx, cols, folds, xg, mixture = fits[c]
                z_label[np.ix_(idx, cols)] = self._class_z(xg, folds, as_label[idx], mixture, seed)
            for c, j, _m, _pj, cell in self._cells(z_label, scaled, y, classes_used, rows=as_label):
                noise_p[(c, j)] = cell[0]
            in_view = np.asarray([noise_p.get((cell[0], cell[1]), 1.0) for cell in cells], dtype=np.float64)
            cell_found &= benjamini_hochberg(in_view, self.fdr)
        excess: list[tuple[int, int, list[int], float, float]] = []
        in_excess = np.zeros(n, dtype=bool)
        for (c, j, members, pj, (pc, level, chance)), ok in zip(cells, cell_found, strict=True):
            if ok:
                recs = [int(r) for r in members[pj <= level]]
                p_cell = min(1.0, pc * len(cells))
                excess.append((c, j, recs, p_cell, chance))
                # a low-severity excess (Bonferroni p above 1e-3) is worth a look, not an alarm: reported only
                if p_cell <= _FLAG_P:
                    in_excess[recs] = True
        for r in np.flatnonzero(in_excess).tolist():  # the reason names the feature of the excess it is in
            worst[r] = next(j for _c, j, recs, p_cell, _e in excess if p_cell <= _FLAG_P and r in recs)
            zmax[r] = z_all[r, worst[r]]
        flagged |= in_excess
        # ranking only: within a discovered excess, the feature is no longer one of d tried at random, so
        # its records are ordered by their p-value on that feature (flags and p-values stay as they are)
        ranked = pvalues.copy()
        for (_c, _j, members, pj, _cell), ok in zip(cells, cell_found, strict=True):
            if ok:
                ranked[members] = np.minimum(ranked[members], pj)
        scores = unflagged_on_common_scale(
            strength_score(pvalues, flagged, 2.0 * -np.log10(self.fdr / max(n, 1))), ranked, flagged
        )
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        label_names = rep.label_names
        groups: dict[tuple[int, int], list[int]] = {}
        for i in np.flatnonzero(flagged).tolist():
            if not in_excess[i]:
                groups.setdefault((int(y[i]), int(worst[i])), []).append(i)
            reasons[i] = (f"{names[worst[i]]} is {zmax[i]:.1f} robust s.d. from what its other features predict",)
        for c, j, recs, p_cell, chance in sorted(excess, key=lambda e: e[3]):
            label = label_names[c] if c < len(label_names) else str(c)
            z_recs = z_all[recs, j]
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="feature_manipulation",
                    summary=(
                        f"feature {names[j]!r}: {len(recs)} records labelled {label!r} are off what their other "
                        f"features predict, {chance:.1f} expected by chance (within-class model)"
                    ),
                    records=tuple(recs),
                    evidence={
                        "feature": names[j],
                        "label": label,
                        "expected_by_chance": round(chance, 2),
                        "label_noise_p_value": noise_p.get((c, j), 1.0),
                        "median_robust_z": round(float(np.median(z_recs)), 3),
                        "p_value": p_cell,
                        "fdr": self.fdr,
                    },
                    score=severity_of_evidence(p_cell, len(recs) / max(n, 1), cap="high").score,
                    p_value=p_cell,
                )
            )
        for (c, j), recs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            label = label_names[c] if c < len(label_names) else str(c)
            p_group = float(min(pvalues[recs]))
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="feature_manipulation",
                    summary=(
                        f"feature {names[j]!r} of {len(recs)} records labelled {label!r} does not fit their other "
                        f"features (median {np.median(zmax[recs]):.1f} robust s.d. off; within-class model)"
                    ),
                    records=tuple(recs),
                    evidence={
                        "feature": names[j],
                        "label": label,
                        "median_robust_z": round(float(np.median(zmax[recs])), 3),
                        "p_value": p_group,
                        "fdr": self.fdr,
                    },
                    score=0.6 if len(recs) >= 3 else 0.4,
                    p_value=p_group,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={**params, "classes": classes_used},
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )
