"""Calibrated evidence: p-values against stated nulls, false-discovery control, and the one severity scale.

Pure functions (arrays in, arrays out), shared by the detectors, the fusion in :mod:`dataward.detect.api`,
the screening rules and the workflow's severity mapping (docs/adr/0021-calibrated-alarms.md):

- :func:`benjamini_hochberg`: which of m p-values are discoveries at false discovery rate ``q``;
- :func:`conformal_pvalues`: p-values of test scores against scores drawn under the null (a clean
  baseline, or a permutation of the batch);
- :func:`empirical_null_pvalues`: Efron's empirical null for a batch of scores without any reference (the
  bulk of the batch is the null: centre and spread from its median and MAD);
- :func:`severity_of_evidence`: p-value (already corrected for multiplicity) and effect size to severity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from dataward.core.severity import Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: the false discovery rate fusion and the screening rules control (one in twenty discoveries may be false)
FDR = 0.05
#: severity cut-offs on the multiplicity-corrected p-value (see :func:`severity_of_evidence`)
P_MEDIUM = 1e-3
P_HIGH = 1e-8
P_CRITICAL = 1e-16
#: effect-size floors: share of the batch a finding must cover for high and critical
SHARE_HIGH = 0.001
SHARE_CRITICAL = 0.01


def benjamini_hochberg(pvalues: npt.ArrayLike, q: float = FDR) -> BoolArray:
    """Discoveries among ``pvalues`` at false discovery rate ``q`` (Benjamini and Hochberg, 1995).

    Valid for independent or positively dependent (PRDS) p-values; NaN counts as 1.
    """
    p = np.nan_to_num(np.asarray(pvalues, dtype=np.float64).ravel(), nan=1.0)
    m = p.size
    out = np.zeros(m, dtype=bool)
    if m == 0:
        return out
    order = np.argsort(p, kind="stable")
    passed = np.flatnonzero(p[order] <= q * np.arange(1, m + 1) / m)
    if passed.size:
        out[order[: passed[-1] + 1]] = True
    return out


def bh_adjusted(pvalues: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values): ``q_i <= q`` exactly when ``i`` is a discovery at q."""
    p = np.nan_to_num(np.asarray(pvalues, dtype=np.float64).ravel(), nan=1.0)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


def conformal_pvalues(scores: npt.ArrayLike, null_scores: npt.ArrayLike) -> FloatArray:
    """p_i = (1 + #{null >= s_i}) / (1 + n_null): valid when the null scores are exchangeable with a clean
    record's score (large score = suspicious)."""
    s = np.asarray(scores, dtype=np.float64)
    ref = np.sort(np.asarray(null_scores, dtype=np.float64).ravel())
    above = ref.size - np.searchsorted(ref, s, side="left")
    out: FloatArray = np.asarray((1.0 + above) / (1.0 + ref.size), dtype=np.float64)
    return out


def empirical_null_pvalues(scores: npt.ArrayLike, *, min_scale: float = 1e-3) -> FloatArray:
    """One-sided p-values of scores in [0, 1] against the batch's own bulk (Efron's empirical null).

    Scores go to the logit scale; the null is normal with the median as centre and 1.4826 MAD as spread,
    both robust to a poisoned minority (< 50 %). A point mass (MAD 0: most records score alike) leaves only
    records above the mass with small p-values, scaled by ``min_scale``.
    """
    from scipy.special import logit, ndtr

    s = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0), 1e-6, 1 - 1e-6)
    z = logit(s)
    centre = float(np.median(z))
    spread = 1.4826 * float(np.median(np.abs(z - centre)))
    if spread <= min_scale:
        spread = max(float(np.std(z)), 1.0)
    out: FloatArray = ndtr(-(z - centre) / spread)
    return out


def fisher_exact_greater(hits_in: int, n_in: int, hits_all: int, n_all: int) -> float:
    """P(at least ``hits_in`` of the ``n_in`` records of a subset carry a property that ``hits_all`` of the
    ``n_all`` records carry), under random subsets (hypergeometric upper tail)."""
    from scipy.stats import hypergeom

    return float(hypergeom.sf(hits_in - 1, n_all, hits_all, n_in))


def severity_of_evidence(p_value: float | None, share: float = 0.0, *, cap: str = "critical") -> Severity:
    """The one mapping from evidence to severity (info < low < medium < high < critical).

    ``p_value`` must already be corrected for the number of hypotheses the rule tried (Bonferroni or BH
    adjusted); ``share`` is the fraction of the batch the finding covers. Cut-offs:

    - p > 0.05: ``info`` (no evidence); 1e-3 < p <= 0.05: ``low`` (worth a look, not an alarm);
    - p <= 1e-3: ``medium`` (flags records);
    - p <= 1e-8 and share >= 0.1 %: ``high`` (blocks approval at the default ``--fail-on high``);
    - p <= 1e-16 and share >= 1 %: ``critical``.

    ``cap`` bounds the result for rules whose kind of finding cannot justify more (natural label noise is
    at most medium: it is real, but not an attack). ``None`` (an uncalibrated rule) maps to ``low``.
    """
    if p_value is None or not np.isfinite(p_value):
        level = Severity.LOW
    elif p_value <= P_CRITICAL and share >= SHARE_CRITICAL:
        level = Severity.CRITICAL
    elif p_value <= P_HIGH and share >= SHARE_HIGH:
        level = Severity.HIGH
    elif p_value <= P_MEDIUM:
        level = Severity.MEDIUM
    elif p_value <= FDR:
        level = Severity.LOW
    else:
        level = Severity.INFO
    bound = Severity.coerce(cap)
    return level if level.rank <= bound.rank else bound


def score_of_severity(severity: str) -> float:
    """A representative 0..1 detector severity for a level (:attr:`Severity.score`)."""
    return Severity.coerce(severity).score


def as_pvalue(value: Any) -> float | None:
    """A finite float in [0, 1], or None."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    return min(1.0, max(0.0, p)) if np.isfinite(p) else None
