"""Spectral signatures (Tran, Li and Madry, 2018), per class, with a data-driven cut-off.

For each class: centre the class's representations (user embeddings/activations when given, else the
dense view of the features), take the top right-singular vector ``v`` and project. Poisoned records that
share a signal (a trigger) separate from the rest of their class along ``v``. The original paper removes
a fixed 1.5 x (expected poison rate) of each class; we need no rate. Instead the projections are split in
two by 1-D 2-means, and the smaller side is flagged only when both hold:

- it is a minority of the class (at most ``max_fraction``, default 35 %) and has at least 3 records;
- the two sides are well separated: Ashman's D = sqrt(2)|m1 - m2| / sqrt(s1^2 + s2^2) >= ``min_d`` (6).

Skewed but unimodal classes reach D of about 5.5 on clean sklearn digits (2-means splits a long tail off),
so the cut-off sits above that; the method is a ranking signal first and flags only clear clusters (and,
like the original, assumes the poison is a minority of its class). Scores are the
squared projections scaled by the class's split point (0.5 at the boundary).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from dataward.detect._features import dense_view
from dataward.detect.interface import BoolArray, Detector, DetectorResult, Finding, FloatArray, Modality, Representation
from dataward.detect.registry import register


def two_means_1d(values: FloatArray) -> tuple[float, BoolArray]:
    """Best 2-means split of 1-D values: (threshold, boolean mask of the upper side)."""
    order = np.sort(values)
    n = order.size
    csum = np.cumsum(order)
    csq = np.cumsum(order**2)
    best = np.inf
    best_i = 1
    for i in range(1, n):
        left_n, right_n = i, n - i
        left_ss = csq[i - 1] - csum[i - 1] ** 2 / left_n
        right_ss = (csq[-1] - csq[i - 1]) - (csum[-1] - csum[i - 1]) ** 2 / right_n
        ss = left_ss + right_ss
        if ss < best:
            best, best_i = ss, i
    thr = 0.5 * (order[best_i - 1] + order[best_i])
    return float(thr), values > thr


def ashman_d(a: FloatArray, b: FloatArray) -> float:
    if a.size < 2 or b.size < 2:
        return 0.0
    s = np.sqrt(a.var() + b.var())
    return float(np.sqrt(2.0) * abs(a.mean() - b.mean()) / max(s, 1e-12))


@register
class SpectralSignatures(Detector):
    name: ClassVar[str] = "spectral_signatures"
    modalities: ClassVar[frozenset[Modality]] = frozenset(
        {Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING}
    )

    def __init__(self, min_d: float = 6.0, max_fraction: float = 0.35, min_class: int = 20) -> None:
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
        for c in range(len(rep.label_names)):
            idx = np.flatnonzero(y == c)
            if idx.size < self.min_class:
                continue
            r = x[idx] - x[idx].mean(axis=0)
            if not np.any(r):
                continue
            _, _, vt = np.linalg.svd(r, full_matrices=False)
            proj = r @ vt[0]
            # orient so the smaller cluster is on the positive side
            thr, upper = two_means_1d(proj)
            if upper.sum() > (~upper).sum():
                proj = -proj
                thr, upper = two_means_1d(proj)
            d = ashman_d(proj[upper], proj[~upper])
            per_class[rep.label_names[c]] = round(d, 3)
            small = int(upper.sum())
            sep = max(thr, 1e-12)
            spread = np.maximum(proj, 0.0) / sep
            ok = 3 <= small <= self.max_fraction * idx.size and d >= self.min_d
            if ok:
                cls_scores = np.where(upper, 0.5 + 0.5 * np.minimum(1.0, (spread - 1.0) + d / 10.0), 0.49 * spread)
            else:
                cls_scores = np.minimum(0.49, 0.49 * spread * min(1.0, d / self.min_d) ** 2)
            scores[idx] = np.clip(cls_scores, 0.0, 1.0)
            if ok:
                members = idx[upper]
                flagged[members] = True
                name = rep.label_names[c]
                for i in members:
                    reasons[int(i)] = (
                        f"separates from the rest of class {name!r} along its top singular direction "
                        f"(spectral signature, D={d:.1f})",
                    )
                findings.append(
                    Finding(
                        detector=self.name,
                        kind="trigger",
                        summary=(
                            f"class {name!r}: {members.size} of {idx.size} records form a separate cluster "
                            f"along the top singular direction (Ashman D={d:.1f}): a shared hidden signal"
                        ),
                        records=tuple(int(i) for i in members),
                        evidence={
                            "label": name,
                            "ashman_d": round(d, 3),
                            "fraction": round(members.size / idx.size, 4),
                        },
                        severity=0.7,
                    )
                )
        return DetectorResult(
            detector=self.name,
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={"min_d": self.min_d, "max_fraction": self.max_fraction, "ashman_d": per_class},
            seconds=time.perf_counter() - t0,
        )
