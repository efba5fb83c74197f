"""Spectral signatures (Tran, Li and Madry, 2018), per class, with a data-driven cut-off.

For each class: centre the class's representations (user embeddings/activations when given, else the
dense view of the features), take the top right-singular vector ``v`` and project. Poisoned records that
share a signal (a trigger) separate from the rest of their class along ``v``. The original paper removes
a fixed 1.5 x (expected poison rate) of each class; we need no rate. Instead the projections are split in
two by 1-D 2-means, and the smaller side is flagged only when both hold:

- it is a minority of the class (at most ``max_fraction``, default 35 %) and has at least 3 records;
- the two sides are well separated: Ashman's D = sqrt(2)|m1 - m2| / sqrt(s1^2 + s2^2) >= ``min_d`` (6);
- the separation is unlikely under a null without a hidden cluster (calibrated, ADR 0021): each column of
  the class is permuted independently (``null_rounds`` = 24 times, on at most 4,000 rows), which keeps
  every marginal (skew, heavy tails, discreteness) and destroys any joint cluster; the same statistic is
  computed on each copy and a normal fitted to those D values gives the p-value of the observed D (the
  "Gaussian null" of the statistic, which extrapolates into the tail the rounds cannot reach). The
  p-value is Bonferroni-corrected over the classes tried and must be at most ``alpha`` (1e-3).

Skewed but unimodal classes reach D of about 5.5 on clean sklearn digits (2-means splits a long tail off),
and uniform columns with unrelated labels give a broad top direction whose 2-means split looks like a
cluster to D alone; the permutation null is what tells them apart from a planted cluster. Like the
original, the method assumes the poison is a minority of its class. Scores are the squared projections
scaled by the class's split point (0.5 at the boundary); per-record p-values are the class's corrected
p-value for the records of a flagged cluster and 1 elsewhere; finding severity follows
:func:`dataward.core.evidence.severity_of_evidence`.

Clean-label poison (docs/adr/0063-clean-label-position-between-classes.md) keeps its labels and is moved
toward another class: every record is also placed between its class and each other class along the pair's
discriminant (:func:`pair_positions`), which ranks it, raised where the record sits nearer the pair's line in
the whitened space than its class does (:func:`between_strength`; a blend of two records does,
docs/adr/0094-clean-label-spread-off-the-pairs-line.md); a cluster of a class sitting between 30 % and 80 % of
the way to another class, split off with Ashman's D >= ``between_min_d`` (4.5) and beating the
column-permutation null along that fixed direction (Bonferroni over the pairs), is a ``clean_label``
finding naming the other class and the separating features.

Random label flips split off too (docs/adr/0083-spectral-label-noise-null.md): the records flipped into a
class are records of their source classes, far from it along its top direction and toward their source. Each
record is read by the labels of its 5 nearest other records (:class:`ClassReader`); a flip reads as its
source, a planted cluster that keeps one label reads as that label (its records are each other's
neighbours). Both findings must also beat label noise: a top-direction split its label-noise null
(:func:`label_noise_null_pvalue`: the records reading as the class column-permuted, each record reading as
another class ``s`` replaced by a random record of ``s``; or the count of those records beyond uniform
noise, :func:`flip_rate_pvalue`, which tells a targeted flip), a between-classes cluster the same split, band and
column-permutation null among the class's records that read as its label.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dataward.core.evidence import score_of_severity, severity_of_evidence
from dataward.detect._explain import describe, explain_cluster
from dataward.detect._features import dense_view
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


def two_means_1d(values: FloatArray) -> tuple[float, BoolArray]:
    """Best 2-means split of 1-D values: (threshold, boolean mask of the upper side)."""
    order = np.sort(values)
    n = order.size
    csum = np.cumsum(order)
    csq = np.cumsum(order**2)
    i = np.arange(1, n)  # left side holds order[:i]; vectorised (a Python loop cost seconds at 100k)
    left_ss = csq[i - 1] - csum[i - 1] ** 2 / i
    right_ss = (csq[-1] - csq[i - 1]) - (csum[-1] - csum[i - 1]) ** 2 / (n - i)
    best_i = int(i[np.argmin(left_ss + right_ss)]) if n > 1 else 1
    thr = 0.5 * (order[best_i - 1] + order[min(best_i, n - 1)])
    return float(thr), values > thr


def ashman_d(a: FloatArray, b: FloatArray) -> float:
    if a.size < 2 or b.size < 2:
        return 0.0
    s = np.sqrt(a.var() + b.var())
    return float(np.sqrt(2.0) * abs(a.mean() - b.mean()) / max(s, 1e-12))


def split_separation(r: FloatArray) -> tuple[FloatArray, float, BoolArray, float]:
    """Project centred rows ``r`` on their top singular direction and split in two: (projection, threshold,
    upper-side mask with the smaller side on top, Ashman's D)."""
    # the top right-singular vector is the top eigenvector of r'r (d x d): no n x d U matrix at 100k rows
    _, vecs = np.linalg.eigh(r.T @ r)
    proj = r @ vecs[:, -1]
    thr, upper = two_means_1d(proj)
    if upper.sum() > (~upper).sum():  # orient so the smaller cluster is on the positive side
        proj = -proj
        thr, upper = two_means_1d(proj)
    return proj, thr, upper, ashman_d(proj[upper], proj[~upper])


def permutation_null_pvalue(r: FloatArray, d: float, rounds: int, seed: int, max_rows: int = 4000) -> float:
    """p-value of Ashman's D = ``d`` against copies of ``r`` with each column permuted independently."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    if r.shape[0] > max_rows:
        r = r[rng.choice(r.shape[0], max_rows, replace=False)]
    null = np.empty(rounds)
    for b in range(rounds):
        perm = np.column_stack([rng.permutation(r[:, j]) for j in range(r.shape[1])])
        perm = perm - perm.mean(axis=0)
        null[b] = split_separation(perm)[3] if np.any(perm) else 0.0
    spread = max(float(null.std(ddof=1)), 0.05 * max(float(null.mean()), 1e-3), 1e-6)
    return float(norm.sf((d - float(null.mean())) / spread))


class ClassReader:
    """The class each record reads as from its features: the majority label of its ``k`` nearest other
    records (self excluded, so no fold is needed) in a reference sample of at most ``max_ref`` records.

    A randomly flipped record reads as its source class (its neighbours are that class's records); a cluster
    of planted records that keep one label reads as that label (its neighbours are each other).
    """

    def __init__(self, x: FloatArray, y: IntArray, seed: int, k: int = 5, max_ref: int = 20_000) -> None:
        from sklearn.neighbors import NearestNeighbors

        n = y.shape[0]
        rng = np.random.default_rng(seed)
        self.ref = np.sort(rng.choice(n, max_ref, replace=False)) if n > max_ref else np.arange(n)
        self.k = int(min(k, max(1, self.ref.size - 1)))
        self.x, self.y = x, y
        self.n_classes = int(y.max()) + 1 if y.size else 1
        self.nn = NearestNeighbors(n_neighbors=self.k + 1).fit(x[self.ref])
        self._cache: dict[int, int] = {}

    def read(self, idx: IntArray) -> IntArray:
        todo = np.asarray([i for i in idx if int(i) not in self._cache], dtype=np.int64)
        if todo.size:
            _, nb = self.nn.kneighbors(self.x[todo])
            for i, row in zip(todo, self.ref[nb], strict=True):
                votes = np.bincount(self.y[row[row != i][: self.k]], minlength=self.n_classes)
                self._cache[int(i)] = int(np.argmax(votes))
        return np.asarray([self._cache[int(i)] for i in idx], dtype=np.int64)


def label_noise_null_pvalue(
    x: FloatArray,
    y: IntArray,
    members: IntArray,
    statistic: Callable[[FloatArray], float],
    d: float,
    reader: ClassReader,
    rounds: int,
    seed: int,
    max_rows: int = 4000,
) -> float:
    """p-value of the class's separation ``d`` against copies of the class under label noise.

    Under class-conditional label noise a flipped record is a record of its source class, placed at random.
    So each copy keeps what the class would be without a planted cluster: its records that read as the class
    (:class:`ClassReader`) with each column permuted independently (the column-permutation null), and every
    record that reads as another class ``s`` replaced by a random record labelled ``s`` that reads as ``s``
    (as many flips from ``s`` as the class holds, placed as ``s``'s records are). ``statistic`` (the same
    separation as observed, on the rows of a copy) of ``rounds`` copies, Gaussian fit as the other nulls.
    Flips give about the observed separation; a cluster that reads as its label, or whose records share a
    signal their source class's records lack, beats it."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    if members.size > max_rows:
        members = np.sort(rng.choice(members, max_rows, replace=False))
    a = int(np.bincount(y[members]).argmax())
    reads = reader.read(members)
    own = members[reads == a]
    pools: dict[int, IntArray] = {}
    for s in np.unique(reads[reads != a]):
        cand = np.flatnonzero(y == s)
        need = int(np.sum(reads == s))
        if cand.size > max(60, 4 * need):
            cand = rng.choice(cand, max(60, 4 * need), replace=False)
        agree = cand[reader.read(cand) == s]
        pools[int(s)] = agree if agree.size else cand
    null = np.empty(rounds)
    base = x[own]
    for b in range(rounds):
        parts = [np.column_stack([rng.permutation(base[:, j]) for j in range(base.shape[1])])] if own.size else []
        for s, pool in pools.items():
            parts.append(x[rng.choice(pool, int(np.sum(reads == s)), replace=True)])
        copy = np.vstack(parts)
        null[b] = statistic(copy - copy.mean(axis=0))
    spread = max(float(null.std(ddof=1)), 0.05 * max(float(null.mean()), 1e-3), 1e-6)
    return float(norm.sf((d - float(null.mean())) / spread))


def flip_rate_pvalue(y: IntArray, a: int, reader: ClassReader, seed: int, max_rows: int = 4000) -> float:
    """p-value of the records labelled ``a`` that read as another class being more than uniform label noise
    predicts (a targeted flip: many records of one class relabelled ``a``), Bonferroni over the sources.

    Records are read (:class:`ClassReader`; a seeded sample of ``max_rows`` above that many) into a table of
    label by reading class. Under noise that spreads over the labels alike, every off-diagonal cell holds the
    same share of the records reading as its class; that share is pooled over the cells other than the one
    tested (one pseudo-count each way), and the records labelled ``a`` reading as ``s`` are binomial on the
    records reading as ``s`` with it.
    """
    from scipy.stats import binom

    n = y.shape[0]
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
    labels, reads = y[rows], reader.read(rows)
    k = reader.n_classes
    joint = np.zeros((k, k))
    np.add.at(joint, (labels, reads), 1.0)  # joint[label, read]
    best = 1.0
    read_totals = joint.sum(axis=0)
    present = joint.sum(axis=1) > 0
    sources = [t for t in range(k) if t != a and read_totals[t] > 0]
    for src in sources:
        # uniform noise: every off-diagonal cell holds the same share of its reading class; pooled over the
        # cells other than the one tested
        cells = [(t, r) for r in range(k) for t in range(k) if t != r and present[t] and read_totals[r] > 0]
        cells = [cell for cell in cells if cell != (a, src)]
        flips = sum(float(joint[t, r]) for t, r in cells)
        exposure = sum(float(read_totals[r]) for _, r in cells)
        share = (flips + 1.0) / (exposure + 2.0)
        best = min(best, float(binom.sf(float(joint[a, src]) - 1, int(read_totals[src]), share)))
    return min(1.0, best * max(1, len(sources)))


def _split_along(w: FloatArray) -> Callable[[FloatArray], float]:
    """Ashman's D of the oriented split of rows projected on ``w`` (:func:`oriented_split`)."""
    return lambda rows: oriented_split(rows @ w)[1]


@dataclass(frozen=True)
class PairPosition:
    """The records of class ``a`` placed on the line from ``a``'s median (0) to class ``b``'s median (1)."""

    a: int
    b: int
    members: IntArray
    direction: FloatArray
    position: FloatArray
    #: robust z, within A, of each record's squared whitened distance from A's median off the pair's line
    #: (:func:`off_line_spread`); a blend of two records sits closer to the line than A's own records
    off_line: FloatArray | None = None


def pair_positions(
    x: FloatArray,
    y: IntArray,
    classes: list[int],
    *,
    shrink: float = 0.1,
    min_separation: float = 2.0,
    off_line: bool = False,
) -> list[PairPosition]:
    """Each ordered pair of separated classes (A, B) with the records of A placed between A and B.

    The records of A are projected on the pair's discriminant direction (pooled within-class covariance
    shrunk toward a multiple of the identity by ``shrink``, so that 64 pixels and 180 records give a stable
    direction) and placed on the line from A's median (0) to B's median (1). Medians, not means, so that a
    poisoned share of A does not drag A's origin. Pairs whose projections are not separated by at least
    ``min_separation`` (Ashman's D with robust spreads) are skipped: where two classes overlap, "halfway
    between them" says nothing. With ``off_line`` each pair also carries :func:`off_line_spread`.
    """
    members = {c: np.flatnonzero(y == c) for c in classes}
    means: dict[int, FloatArray] = {}
    scatter: dict[int, FloatArray] = {}
    for c, idx in members.items():
        # one copy of the class, centred in place (at 1M texts each copy of a large class is 0.4 GiB)
        r = x[idx]
        means[c] = r.mean(axis=0)
        r -= means[c]
        # two buffers, as before: numpy computes ``r.T @ r`` of one buffer by syrk, whose rounding differs
        scatter[c] = r.T @ r.copy()
        del r
    d = x.shape[1]
    medians = {c: np.median(x[idx], axis=0) for c, idx in members.items()} if off_line else {}
    out: list[PairPosition] = []
    for a in classes:
        ia = members[a]
        for b in classes:
            if a == b:
                continue
            ib = members[b]
            cov = (scatter[a] + scatter[b]) / (ia.size + ib.size)
            cov = (1.0 - shrink) * cov + shrink * (np.trace(cov) / d) * np.eye(d)
            try:
                w = np.linalg.solve(cov, means[b] - means[a])
            except np.linalg.LinAlgError:
                continue
            pa, pb = x[ia] @ w, x[ib] @ w
            ma, mb = float(np.median(pa)), float(np.median(pb))
            sa = 1.4826 * float(np.median(np.abs(pa - ma)))
            sb = 1.4826 * float(np.median(np.abs(pb - mb)))
            if mb - ma <= 0 or np.sqrt(2.0) * (mb - ma) < min_separation * np.hypot(sa, sb):
                continue
            off = off_line_spread(x[ia], cov, means[b] - means[a], medians[a]) if off_line else None
            out.append(PairPosition(a, b, ia, w / (mb - ma), (pa - ma) / (mb - ma), off))
    return out


def off_line_spread(r: FloatArray, cov: FloatArray, delta: FloatArray, origin: FloatArray) -> FloatArray:
    """Robust z, within the class, of each row's squared distance from ``origin`` (the class's coordinate-wise
    median) off the line of the pair's discriminant, in the space whitened by the pair's (shrunk) pooled
    covariance ``cov``.

    In that space the discriminant is the direction of the mean difference ``delta``; what is left after
    removing it is the record's spread within its class. A record moved part of the way toward a record of
    another class is an average of two records, and an average of two independent deviations has half the
    variance: it sits nearer the line than the class's own records (ADR 0094). Median and MAD of the class,
    so that a poisoned share does not set the scale."""
    from scipy.linalg import solve_triangular

    chol = np.linalg.cholesky(cov)
    z = solve_triangular(chol, (r - origin).T, lower=True).T
    e = solve_triangular(chol, delta, lower=True)
    e /= max(float(np.linalg.norm(e)), 1e-12)
    along = z @ e
    off = np.einsum("ij,ij->i", z, z) - along**2
    mid = float(np.median(off))
    mad = 1.4826 * float(np.median(np.abs(off - mid)))
    out: FloatArray = (off - mid) / max(mad, 1e-12)
    return out


def between_classes(pairs: list[PairPosition], n: int) -> tuple[FloatArray, IntArray]:
    """How far each record has moved from its class toward another one: ``(t, toward)``, the largest
    position over the pairs and that class (-1 where no pair applies)."""
    t = np.zeros(n)
    toward = np.full(n, -1, dtype=np.int64)
    for pair in pairs:
        better = pair.position > t[pair.members]
        t[pair.members[better]] = pair.position[better]
        toward[pair.members[better]] = pair.b
    return t, toward


#: a record tighter than its class raises its position by at most this many robust spreads of the off-line
#: distance (ADR 0094): with the default weight 0.5 a record counts at most twice as far between the classes
OFF_LINE_BOUND = 2.0


def between_strength(pairs: list[PairPosition], n: int, off_line_weight: float) -> FloatArray:
    """The ranking strength of each record as moved toward another class, in [0, 1]: over the pairs, the
    largest ``2 t (1 + off_line_weight * min(OFF_LINE_BOUND, max(0, -z_off)))`` (``t`` the position,
    saturating at halfway; ``z_off`` the robust z of the record's spread off the pair's line,
    :func:`off_line_spread`; ADR 0063, ADR 0094).

    Only a record *nearer* the line than its class's median is raised, in proportion to its position: a blend
    of two records is tighter than the class, while a record far off the line is an outlier of another kind
    (a patch, a flipped record with its own oddities) and keeps ADR 0063's position, so no record scores lower
    than the position alone gave it, and records at the class's core (``t`` near 0) stay there."""
    out = np.zeros(n)
    for pair in pairs:
        v = 2.0 * pair.position
        if pair.off_line is not None and off_line_weight:
            v = v * (1.0 + off_line_weight * np.clip(-pair.off_line, 0.0, OFF_LINE_BOUND))
        out[pair.members] = np.maximum(out[pair.members], np.clip(v, 0.0, 1.0))
    return out


def oriented_split(pos: FloatArray) -> tuple[BoolArray, float]:
    """2-means split of 1-D positions: (mask of the side toward the other class, Ashman's D), an empty mask
    when that side is not the smaller one."""
    _, upper = two_means_1d(pos)
    if upper.sum() > (~upper).sum():
        return np.zeros(pos.size, dtype=bool), 0.0
    return upper, ashman_d(pos[upper], pos[~upper])


def fixed_direction_null_pvalue(
    r: FloatArray, w: FloatArray, d: float, rounds: int, seed: int, max_rows: int = 4000
) -> float:
    """p-value of Ashman's D = ``d`` of the split along ``w`` against copies of the class ``r`` with each
    column permuted independently (marginals kept, any joint cluster destroyed), Gaussian fit as above."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    if r.shape[0] > max_rows:
        r = r[rng.choice(r.shape[0], max_rows, replace=False)]
    null = np.empty(rounds)
    for b in range(rounds):
        proj = np.column_stack([rng.permutation(r[:, j]) for j in range(r.shape[1])]) @ w
        _, upper = two_means_1d(proj)
        null[b] = ashman_d(proj[upper], proj[~upper]) if 0 < upper.sum() < proj.size else 0.0
    spread = max(float(null.std(ddof=1)), 0.05 * max(float(null.mean()), 1e-3), 1e-6)
    return float(norm.sf((d - float(null.mean())) / spread))


@register
class SpectralSignatures(Detector):
    name: ClassVar[str] = "spectral_signatures"
    modalities: ClassVar[frozenset[Modality]] = frozenset(
        {Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING}
    )

    def __init__(
        self,
        min_d: float = 6.0,
        max_fraction: float = 0.35,
        min_class: int = 20,
        null_rounds: int = 24,
        alpha: float = 1e-3,
        between_min_d: float = 4.5,
        between_band: tuple[float, float] = (0.3, 0.8),
        off_line_weight: float = 0.5,
    ) -> None:
        self.off_line_weight = float(off_line_weight)
        self.between_min_d = float(between_min_d)
        self.between_band = (float(between_band[0]), float(between_band[1]))
        self.null_rounds = int(null_rounds)
        self.alpha = float(alpha)
        self.min_d = float(min_d)
        self.max_fraction = float(max_fraction)
        self.min_class = int(min_class)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        assert rep.labels is not None
        n = rep.n_records
        x = dense_view(rep, seed)
        y = rep.labels
        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        per_class: dict[str, float] = {}
        pvalues = np.ones(n)
        classes = [c for c in range(len(rep.label_names)) if int(np.sum(y == c)) >= self.min_class]
        p_per_class: dict[str, float] = {}
        noise_per_class: dict[str, float] = {}
        reader: ClassReader | None = None
        for c in classes:
            idx = np.flatnonzero(y == c)
            r = x[idx]  # a copy, centred in place
            r -= r.mean(axis=0)
            if not np.any(r):
                continue
            proj, thr, upper, d = split_separation(r)
            per_class[rep.label_names[c]] = round(d, 3)
            small = int(upper.sum())
            sep = max(thr, 1e-12)
            spread = np.maximum(proj, 0.0) / sep
            candidate = 3 <= small <= self.max_fraction * idx.size and d >= self.min_d
            p_adj = 1.0
            if candidate:  # the null costs rounds of SVDs: only for splits that pass the cheap conditions
                p_adj = min(1.0, permutation_null_pvalue(r, d, self.null_rounds, seed + c) * len(classes))
                p_per_class[rep.label_names[c]] = float(f"{p_adj:.3g}")
            ok = candidate and p_adj <= self.alpha
            if ok:  # and the split must beat label noise too: flips into the class split off as well
                reader = reader or ClassReader(x, y, seed)
                p_noise = label_noise_null_pvalue(
                    x, y, idx, lambda m: split_separation(m)[3], d, reader, self.null_rounds, seed + 104729 + c
                )
                # the copies keep as many flips as the class holds: a targeted flip is told by its count
                p_rate = flip_rate_pvalue(y, c, reader, seed + 7 * c)
                p_noise = min(1.0, 2.0 * min(p_noise, p_rate) * len(classes))
                noise_per_class[rep.label_names[c]] = float(f"{p_noise:.3g}")
                ok = p_noise <= self.alpha
                p_adj = max(p_adj, p_noise)
            if ok:
                cls_scores = np.where(upper, 0.5 + 0.5 * np.minimum(1.0, (spread - 1.0) + d / 10.0), 0.49 * spread)
            else:
                cls_scores = np.minimum(0.49, 0.49 * spread * min(1.0, d / max(self.min_d, 1.0)) ** 2)
            scores[idx] = np.clip(cls_scores, 0.0, 1.0)
            if ok:
                members = idx[upper]
                flagged[members] = True
                pvalues[members] = p_adj
                name = rep.label_names[c]
                for i in members:
                    reasons[int(i)] = (
                        f"separates from the rest of class {name!r} along its top singular direction "
                        f"(spectral signature, D={d:.1f}, p={p_adj:.1e} against a column-permutation null)",
                    )
                level = severity_of_evidence(p_adj, members.size / max(1, n), cap="high")
                # clean-label poison keeps its labels: say what the cluster has in common
                explained = explain_cluster(rep, members, idx[~upper])
                findings.append(
                    Finding.scored(
                        check=self.name,
                        kind="trigger",
                        summary=(
                            f"class {name!r}: {members.size} of {idx.size} records form a separate cluster "
                            f"along the top singular direction (Ashman D={d:.1f}, p={p_adj:.1e}): a shared "
                            "hidden signal" + describe(explained)
                        ),
                        records=tuple(int(i) for i in members),
                        evidence={
                            "label": name,
                            "ashman_d": round(d, 3),
                            "fraction": round(members.size / idx.size, 4),
                            "p_value": p_adj,
                            "null": f"column permutation within the class, {self.null_rounds} rounds",
                            **explained,
                        },
                        score=score_of_severity(level),
                        p_value=p_adj,
                    )
                )
        between: dict[str, float] = {}
        between_noise: dict[str, float] = {}
        if len(classes) >= 2:
            # records moved from their class toward another without relabelling (clean-label poison): ranked
            # by their position between the two classes, flagged as a cluster when one stands out (ADR 0063)
            pairs = pair_positions(x, y, classes, off_line=self.off_line_weight > 0)
            strength = between_strength(pairs, n, self.off_line_weight)
            # the position saturates at halfway, raised for a record nearer the pair's line than its class
            # (ADR 0094); the top direction's unflagged score is halved so that it does not drown the position
            scores = np.where(flagged, scores, np.maximum(0.5 * scores, 0.49 * strength))
            findings += self._between_findings(
                rep, x, pairs, flagged, scores, pvalues, reasons, between, between_noise, seed, reader
            )
        return DetectorResult(
            detector=self.name,
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={
                "min_d": self.min_d,
                "max_fraction": self.max_fraction,
                "alpha": self.alpha,
                "ashman_d": per_class,
                "p_values": p_per_class,
                "between_min_d": self.between_min_d,
                "between_band": list(self.between_band),
                "off_line_weight": self.off_line_weight,
                "between_p_values": between,
                "label_noise_p_values": noise_per_class,
                "between_ashman_d_reading_as_label": between_noise,
            },
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )

    def _between_split_ok(
        self, pair: PairPosition, upper: BoolArray, d: float, flagged: BoolArray, size: int | None = None
    ) -> bool:
        """The cheap conditions of a between-classes cluster: 3 records to ``max_fraction`` of the class (of
        ``size`` records, default all), Ashman's D >= ``between_min_d``, its median position inside the band
        (records that sit at the other class are label issues, not moved records), none flagged already."""
        small = int(upper.sum())
        total = pair.members.size if size is None else size
        if not (3 <= small <= self.max_fraction * total and d >= self.between_min_d):
            return False
        lo, hi = self.between_band
        return lo <= float(np.median(pair.position[upper])) <= hi and not flagged[pair.members[upper]].any()

    @staticmethod
    def _reads_as_label(reader: ClassReader, pair: PairPosition, seed: int, max_read: int = 4000) -> BoolArray:
        """Which records of the pair's class read as their label (:class:`ClassReader`); in a class of more
        than ``max_read`` records a seeded sample of that many is read and the rest count as reading so (the
        neighbour queries stay bounded at a million records; unread flips are kept, as before ADR 0083)."""
        members = pair.members
        keep = np.ones(members.size, dtype=bool)
        read = np.arange(members.size)
        if members.size > max_read:
            read = np.sort(np.random.default_rng(seed + pair.a).choice(members.size, max_read, replace=False))
        keep[read] = reader.read(members[read]) == pair.a
        return keep

    def _between_findings(
        self,
        rep: Representation,
        x: FloatArray,
        pairs: list[PairPosition],
        flagged: BoolArray,
        scores: FloatArray,
        pvalues: FloatArray,
        reasons: dict[int, tuple[str, ...]],
        p_out: dict[str, float],
        noise_out: dict[str, float],
        seed: int,
        reader: ClassReader | None = None,
    ) -> list[Finding]:
        """Per class, the strongest cluster of records sitting between it and another class, when its split
        along the pair's direction beats the column-permutation null (Bonferroni over the pairs)."""
        n = rep.n_records
        names = rep.label_names
        hi = self.between_band[1]
        assert rep.labels is not None
        y = rep.labels
        best: dict[int, tuple[float, PairPosition, BoolArray, float, BoolArray]] = {}
        for pair in pairs:
            upper, d = oriented_split(pair.position)
            if not self._between_split_ok(pair, upper, d, flagged):
                continue
            # records flipped into the class sit toward their source class too, read as it and are label
            # noise: the cluster must also stand among the records that read as their label (ADR 0083)
            reader = reader or ClassReader(x, y, seed)
            keep = self._reads_as_label(reader, pair, seed)
            kept = upper & keep
            d_kept = 0.0
            if keep.sum() > 3:
                kept_upper, d_kept = oriented_split(pair.position[keep])
                kept = np.zeros(pair.members.size, dtype=bool)
                kept[np.flatnonzero(keep)[kept_upper]] = True
            noise_out[f"{names[pair.a]}->{names[pair.b]}"] = round(d_kept, 3)
            if not self._between_split_ok(pair, kept, d_kept, flagged, int(keep.sum())):
                continue
            if pair.a not in best or d_kept > best[pair.a][3]:
                best[pair.a] = (d, pair, upper, d_kept, keep)
        out: list[Finding] = []
        for a, (d, pair, upper, d_kept, keep) in sorted(best.items()):
            r = x[pair.members]  # a copy, centred in place
            r -= r.mean(axis=0)
            p_raw = fixed_direction_null_pvalue(r, pair.direction, d, self.null_rounds, seed + 7919 * a + pair.b)
            p_adj = min(1.0, p_raw * max(1, len(pairs)))
            key = f"{names[a]}->{names[pair.b]}"
            p_out[key] = float(f"{p_adj:.3g}")
            if p_adj > self.alpha:
                continue
            # the same null among the records that read as their label (both must fall)
            r = x[pair.members[keep]]
            r -= r.mean(axis=0)
            p_raw = fixed_direction_null_pvalue(r, pair.direction, d_kept, self.null_rounds, seed + 7919 * a + pair.b)
            p_kept = min(1.0, p_raw * max(1, len(pairs)))
            p_out[f"{key} (reading as {names[a]})"] = float(f"{p_kept:.3g}")
            if p_kept > self.alpha:
                continue
            p_adj = max(p_adj, p_kept)
            members = pair.members[upper]
            where = float(np.median(pair.position[upper]))
            flagged[members] = True
            pvalues[members] = p_adj
            scores[members] = 0.5 + 0.5 * np.clip(pair.position[upper] / max(hi, 1e-12), 0.0, 1.0)
            for i in members:
                reasons[int(i)] = (
                    f"labelled {names[a]!r} but sits {pair.position[np.flatnonzero(pair.members == i)[0]]:.0%} "
                    f"of the way to class {names[pair.b]!r}, in a cluster of {members.size} such records "
                    f"(clean-label poison?, D={d:.1f}, p={p_adj:.1e} against a column-permutation null)",
                )
            explained = explain_cluster(rep, members, pair.members[~upper])
            level = severity_of_evidence(p_adj, members.size / max(1, n), cap="high")
            out.append(
                Finding.scored(
                    check=self.name,
                    kind="clean_label",
                    summary=(
                        f"class {names[a]!r}: {members.size} of {pair.members.size} records sit {where:.0%} of "
                        f"the way to class {names[pair.b]!r} as one cluster (Ashman D={d:.1f}, p={p_adj:.1e}): "
                        "moved toward that class without relabelling, or mislabelled" + describe(explained)
                    ),
                    records=tuple(int(i) for i in members),
                    evidence={
                        "label": names[a],
                        "toward": names[pair.b],
                        "position": round(where, 3),
                        "ashman_d": round(d, 3),
                        "fraction": round(members.size / pair.members.size, 4),
                        "p_value": p_adj,
                        "null": f"column permutation within the class, {self.null_rounds} rounds, "
                        f"Bonferroni over {len(pairs)} class pairs",
                        **explained,
                    },
                    score=score_of_severity(level),
                    p_value=p_adj,
                )
            )
        return out
