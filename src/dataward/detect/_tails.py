"""Tail p-values for outlier-style scores, and Benjamini-Hochberg, shared by the score-based detectors.

A conformal p-value (rank among a reference) cannot go below ``1 / (n + 1)``, too coarse to survive a
multiplicity correction on a few hundred records. Peaks over threshold extends it: above the reference's
``1 - tail`` quantile ``u`` the exceedances are modelled by a generalised Pareto distribution (the
Pickands-Balkema-de Haan limit for any continuous tail), so ``p(s) = tail * GPD.sf(s - u)`` beyond ``u``
and the plain conformal rank below it. The reference includes every record: poisoned ones fatten the tail
and make the p-values conservative, never anti-conservative.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from dataward.detect.interface import BoolArray, FloatArray

_TAIL = 0.1
_MIN_EXCEEDANCES = 15


def tail_pvalues(reference: FloatArray, scores: FloatArray) -> FloatArray:
    """One-sided p-values of ``scores`` (large = suspicious) against ``reference`` (conformal + GPD tail)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64)[np.isfinite(reference)])
    s = np.asarray(scores, dtype=np.float64)
    if ref.size < 2:
        return np.ones_like(s)
    # conformal: share of the reference at or above the score (with the +1 that keeps it valid)
    above = ref.size - np.searchsorted(ref, s, side="left")
    p = (1.0 + above) / (ref.size + 1.0)
    u = float(np.quantile(ref, 1.0 - _TAIL))
    exceed = ref[ref > u] - u
    if exceed.size >= _MIN_EXCEEDANCES and float(np.ptp(exceed)) > 0:
        try:
            shape, _, scale = stats.genpareto.fit(exceed, floc=0.0)
        except (ValueError, RuntimeError, FloatingPointError):
            return np.clip(p, 0.0, 1.0)
        shape = max(float(shape), 0.0)  # a light tail is not allowed to make p-values smaller than exponential
        hi = s > u
        tail_p = (exceed.size / ref.size) * stats.genpareto.sf(s[hi] - u, shape, loc=0.0, scale=scale)
        p[hi] = np.minimum(p[hi], np.maximum(tail_p, 1e-300))
    return np.clip(p, 0.0, 1.0)


def benjamini_hochberg(pvalues: FloatArray, q: float) -> BoolArray:
    """Records rejected by the Benjamini-Hochberg step-up procedure at false discovery rate ``q``."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= q * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if passed.any():
        out[order[: int(np.flatnonzero(passed).max()) + 1]] = True
    return out


def strength_score(pvalues: FloatArray, flagged: BoolArray, scale: float) -> FloatArray:
    """Scores on [0, 1] ranked by p-value: flagged records in [0.5, 1], the rest below 0.5.

    ``scale`` is the -log10 p-value mapped to 1 (e.g. twice the flag line's).
    """
    with np.errstate(divide="ignore"):
        strength = np.clip(-np.log10(np.maximum(pvalues, 1e-300)) / max(scale, 1e-9), 0.0, 1.0)
    return np.where(flagged, 0.5 + 0.5 * strength, 0.49 * strength)
