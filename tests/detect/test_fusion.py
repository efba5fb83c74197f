"""Calibrated evidence and fusion: BH against a reference implementation, valid nulls, FDR over findings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from dataward.core.evidence import (
    benjamini_hochberg,
    bh_adjusted,
    conformal_pvalues,
    empirical_null_pvalues,
    severity_of_evidence,
)
from dataward.detect.api import combine
from dataward.detect.interface import DetectorResult, Finding, Modality, Representation


@pytest.mark.parametrize("seed", range(20))
def test_benjamini_hochberg_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=int(rng.integers(0, 30)))])
    rng.shuffle(p)
    adjusted = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose(bh_adjusted(p), adjusted, rtol=1e-12)
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), adjusted <= 0.05)


def test_nulls_are_valid_on_null_data() -> None:
    # under each null's assumption the p-values are super-uniform, P(p <= t) <= t: exchangeable scores for
    # the conformal one, a logit-normal bulk for the empirical null
    rng = np.random.default_rng(0)
    ref, test = rng.normal(size=5000), rng.normal(size=5000)
    for p in (conformal_pvalues(test, ref), empirical_null_pvalues(special.expit(test))):
        for t in (0.01, 0.05, 0.2):
            assert np.mean(p <= t) <= t * 1.25 + 0.003
    assert not benjamini_hochberg(conformal_pvalues(test, ref)).any()


def test_severity_follows_evidence_and_effect_size() -> None:
    assert severity_of_evidence(0.5) == "info"
    assert severity_of_evidence(0.01) == "low"
    assert severity_of_evidence(1e-4, 0.5) == "medium"
    assert severity_of_evidence(1e-10, 0.0001) == "medium"  # strong but tiny: not high
    assert severity_of_evidence(1e-10, 0.01) == "high"
    assert severity_of_evidence(1e-20, 0.02) == "critical"
    assert severity_of_evidence(1e-20, 0.02, cap="medium") == "medium"
    assert severity_of_evidence(None) == "low"


def _rep(n: int) -> Representation:
    return Representation(
        modality=Modality.TABULAR, n_records=n, ids=tuple(map(str, range(n))), features=np.zeros((n, 1))
    )


def _result(
    name: str, n: int, flagged: list[int], findings: tuple[Finding, ...], p: np.ndarray | None = None
) -> DetectorResult:
    mask = np.zeros(n, dtype=bool)
    mask[flagged] = True
    return DetectorResult(name, mask * 0.8, mask, {i: ("why",) for i in flagged}, findings, pvalues=p)


def test_fusion_drops_findings_the_fdr_rejects_and_attributes_trigger_records() -> None:
    n = 100
    trigger = Finding.scored(
        check="trig", kind="trigger", summary="token 'cf'", records=(1, 2, 3), evidence={}, score=0.8, p_value=1e-12
    )
    weak = Finding.scored(
        check="weak", kind="outlier", summary="a few odd ones", records=(50, 51), evidence={}, score=0.5, p_value=0.4
    )
    labels = Finding.scored(
        check="label_issues",
        kind="label_issue",
        summary="4 record(s) labelled 'a' look like 'b'",
        records=(2, 3, 70, 71),
        evidence={},
        score=0.55,
    )
    results = {
        "trig": _result("trig", n, [1, 2, 3], (trigger,)),
        "weak": _result("weak", n, [50, 51], (weak,)),
        "label_issues": _result("label_issues", n, [2, 3, 70, 71], (labels,)),
    }
    report = combine(_rep(n), results, [])
    assert set(np.flatnonzero(report.flagged)) == {1, 2, 3, 70, 71}  # weak finding rejected by BH
    by_detector = {f.check: f for f in report.findings}
    assert "weak" not in by_detector
    assert by_detector["label_issues"].records == (70, 71)  # 2 and 3 are the trigger's
    assert by_detector["label_issues"].summary.startswith("2 record(s)")
    assert all(r.detector != "label_issues" for r in report.reasons[2])
    assert report.fusion["records_attributed_to_triggers"] == 2 and report.fusion["records_dropped_by_fdr"] == 2
    assert report.pvalues is not None and report.pvalues.shape == (n,)
