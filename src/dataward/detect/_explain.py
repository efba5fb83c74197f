"""What separates a suspicious cluster from the rest of its class: features (tables) or tokens (text).

A cluster found without label disagreement (clean-label poison keeps its labels) is only actionable when
the finding says what the cluster has in common. Two tests, each Bonferroni-corrected over everything it
looked at, report the separating columns or tokens with the effect size a reader can check:

- tabular (and any dense features with names): per column, the Mann-Whitney U test of the cluster against
  the rest of its class (two-sided, normal approximation with tie correction), effect size the AUROC
  (probability that a cluster record has the larger value); the median on each side is quoted from the
  original column when there is one;
- text: per token present in the class, the hypergeometric tail of its count in the cluster (over- or
  under-represented), quoted with its rate in the cluster and in the rest of the class.

At most ``top`` items are named, strongest first, only those with a corrected p-value below ``alpha``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
from scipy.stats import hypergeom, mannwhitneyu

from dataward.detect.interface import IntArray, Representation

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def explain_cluster(
    rep: Representation, members: IntArray, rest: IntArray, *, top: int = 5, alpha: float = 1e-3
) -> dict[str, Any]:
    """``{"features": [...]}`` or ``{"tokens": [...]}`` separating ``members`` from ``rest`` (same class)."""
    if members.size < 2 or rest.size < 2:
        return {}
    if rep.texts is not None:
        return {"tokens": _tokens(rep.texts, members, rest, top, alpha)}
    if rep.feature_names is not None and isinstance(rep.features, np.ndarray):
        return {"features": _features(rep, members, rest, top, alpha)}
    return {}


def _features(rep: Representation, members: IntArray, rest: IntArray, top: int, alpha: float) -> list[dict[str, Any]]:
    x = np.asarray(rep.features, dtype=np.float64)
    names = list(rep.feature_names or ())
    raw = rep.raw_columns or {}
    out: list[tuple[float, dict[str, Any]]] = []
    m = x.shape[1]
    for j in range(m):
        a, b = x[members, j], x[rest, j]
        if np.ptp(np.concatenate([a, b])) == 0:
            continue
        res = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        p = min(1.0, float(res.pvalue) * m)
        if p >= alpha:
            continue
        auroc = float(res.statistic) / (a.size * b.size)
        name = names[j] if j < len(names) else f"column {j}"
        col = raw.get(name)
        src = np.asarray(col, dtype=np.float64) if col is not None else x[:, j]
        item = {
            "feature": name,
            "direction": "higher" if auroc > 0.5 else "lower",
            "auroc": round(auroc, 3),
            "median_cluster": float(f"{np.median(src[members]):.4g}"),
            "median_rest": float(f"{np.median(src[rest]):.4g}"),
            "p_value": float(f"{p:.3g}"),
        }
        out.append((-abs(auroc - 0.5), item))
    out.sort(key=lambda t: t[0])
    return [item for _, item in out[:top]]


def _tokens(texts: tuple[str, ...], members: IntArray, rest: IntArray, top: int, alpha: float) -> list[dict[str, Any]]:
    def sets(idx: IntArray) -> list[set[str]]:
        return [{t.lower() for t in _TOKEN.findall(texts[int(i)])} for i in idx]

    inside, outside = sets(members), sets(rest)
    cin: Counter[str] = Counter(t for s in inside for t in s)
    cout: Counter[str] = Counter(t for s in outside for t in s)
    n_in, n_all = len(inside), len(inside) + len(outside)
    vocab = set(cin) | set(cout)
    m = max(1, len(vocab))
    out: list[tuple[float, dict[str, Any]]] = []
    for tok in vocab:
        k, total = cin.get(tok, 0), cin.get(tok, 0) + cout.get(tok, 0)
        if total < 3:
            continue
        over = float(hypergeom.sf(k - 1, n_all, total, n_in))
        under = float(hypergeom.cdf(k, n_all, total, n_in))
        p = min(1.0, 2.0 * min(over, under) * m)
        if p >= alpha:
            continue
        rate_in, rate_out = k / n_in, cout.get(tok, 0) / max(1, len(outside))
        item = {
            "token": tok,
            "direction": "more" if rate_in > rate_out else "less",
            "rate_cluster": round(rate_in, 3),
            "rate_rest": round(rate_out, 3),
            "p_value": float(f"{p:.3g}"),
        }
        out.append((p, item))
    out.sort(key=lambda t: (t[0], t[1]["token"]))
    return [item for _, item in out[:top]]


def describe(explained: dict[str, Any]) -> str:
    """A short clause for a finding's summary: what the cluster has in common."""
    if explained.get("features"):
        parts = [f"{f['feature']} {f['direction']} (AUROC {f['auroc']:.2f})" for f in explained["features"][:3]]
        return "; separated by " + ", ".join(parts)
    if explained.get("tokens"):
        parts = [f"{t['token']!r} {t['rate_cluster']:.0%} vs {t['rate_rest']:.0%}" for t in explained["tokens"][:3]]
        return "; separating tokens " + ", ".join(parts)
    return ""
