"""Use the library where one exists (issue #13): the bench grades with scikit-learn, the audit's intervals come
from scipy. These pin that the numbers did not move: each is checked against the closed forms the code used
before (kept here as independent references) over a grid and random inputs, edge cases included."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import beta, norm, rankdata

from dataward.simulate.bench import auroc, score_flags
from dataward.workflow.audit import interval


def _wilson_reference(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return min(lo, p), max(hi, p)


def _clopper_pearson_reference(k: int, n: int, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_intervals_from_scipy_are_the_former_numbers(confidence: float) -> None:
    for n in (1, 2, 5, 20, 40, 250, 1000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            assert interval(k, n, confidence, "wilson") == pytest.approx(
                _wilson_reference(k, n, confidence), abs=1e-12
            ), (k, n)
            assert interval(k, n, confidence, "clopper-pearson") == pytest.approx(
                _clopper_pearson_reference(k, n, confidence), abs=1e-9
            ), (k, n)


def test_interval_edges() -> None:
    from dataward.errors import InputError

    assert interval(0, 0) == (0.0, 1.0)
    lo, hi = interval(0, 30, 0.95, "wilson")
    assert lo == 0.0 and 0 < hi < 1
    with pytest.raises(ValueError):
        interval(5, 3)
    with pytest.raises(InputError, match="unknown interval method"):
        interval(1, 3, 0.95, "agresti")


def _auroc_reference(scores: Any, truth: Any) -> float | None:
    pos = int(truth.sum())
    neg = int(truth.size - pos)
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _flags_reference(flagged: Any, truth: Any) -> tuple[float, float, float]:
    tp = int(np.sum(flagged & truth))
    fp = int(np.sum(flagged & ~truth))
    fn = int(np.sum(~flagged & truth))
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def test_bench_metrics_from_scikit_learn_are_the_former_numbers() -> None:
    rng = np.random.default_rng(0)
    cases: list[tuple[Any, Any, Any]] = []
    for _ in range(150):
        n = int(rng.integers(1, 60))
        truth = rng.random(n) < rng.uniform(0, 0.5)
        scores = np.round(rng.random(n) + 0.4 * truth, int(rng.integers(1, 3)))  # rounding makes ties
        flagged = rng.random(n) < rng.uniform(0, 0.5)
        cases.append((flagged, scores, truth))
    z = np.zeros(8, dtype=bool)
    o = np.ones(8, dtype=bool)
    s = np.linspace(0, 1, 8)
    cases += [(z, s, z), (z, s, o), (o, s, z), (o, s, o), (z, s, s > 0.5), (s > 0.5, s, z)]
    for flagged, scores, truth in cases:
        got = score_flags("x", flagged, scores, truth, 0.0)
        p, r, f = _flags_reference(flagged, truth)
        assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f), abs=1e-12), (flagged, truth)
        ref = _auroc_reference(scores, truth)
        assert (got.auroc is None) == (ref is None)
        if ref is not None:
            assert got.auroc == pytest.approx(ref, abs=1e-12)
            assert auroc(scores, truth) == got.auroc


# ------------------------------------------------------------------------------- one licence allow-list


def test_the_default_gate_and_screening_share_one_licence_list() -> None:
    from dataward.screen.policy import DEFAULT_ALLOWED_LICENCES
    from dataward.workflow.approval_policy import default_policy_text, parse_policy

    policy = parse_policy(default_policy_text(), "the default policy")
    lists = {tuple(sorted(t.licence_allow)) for t in policy.tiers.values()}
    assert lists
    text = default_policy_text()
    start = text.index("licence_allow = [")
    listed = [w.strip().strip('"') for w in text[start + len("licence_allow = [") : text.index("]", start)].split(",")]
    assert sorted(w for w in listed if w) == sorted(DEFAULT_ALLOWED_LICENCES)
    assert all(lst == tuple(sorted(DEFAULT_ALLOWED_LICENCES)) for lst in lists)


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("MIT", True),
        ("GPL-3.0-only", False),
        ("MIT OR GPL-3.0-only", True),
        ("MIT AND GPL-3.0-only", False),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", False),
        ("(MIT OR GPL-3.0-only) AND Apache-2.0", True),
        ("Apache-2.0 WITH LLVM-exception", True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", False),
        ("mit", True),
    ],
)
def test_gate_and_screening_judge_licences_alike(expression: str, ok: bool) -> None:
    from dataward.screen.licences import allowed
    from dataward.workflow.approval_policy import licence_allowed

    allow = ("MIT", "Apache-2.0")
    assert allowed(expression, allow) is ok
    assert licence_allowed(expression, list(allow))[0] is ok


def test_licence_judgement_is_cached_not_reparsed() -> None:
    from dataward.screen import licences
    from dataward.workflow.approval_policy import licence_allowed

    licence_allowed("MIT OR ISC", ["MIT"])
    before = licences._parsed.cache_info().hits
    for _ in range(50):
        assert licence_allowed("MIT OR ISC", ["MIT"])[0]
    assert licences._parsed.cache_info().hits - before == 50
    assert licences._licensing.cache_info().currsize == 1
    ok, why = licence_allowed("MIT OR (", ["MIT"])
    assert not ok and "does not parse" in why
