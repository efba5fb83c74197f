"""feature_interactions' box scan on small tables: a cluster of a few relabelled records around one value
pair (wine holds 5 of them at 3 %), near-copy pairs scanned along their band, the box's labelled records
flagged when few are expected there, and the nulls (permuted labels) quiet."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from sklearn import datasets

from dataward.detect import detect
from dataward.detect._interactions import _product_tail
from dataward.simulate import Roles, simulate

pytestmark = pytest.mark.slow  # every test here runs the detector on real tables


def _table(loader: Any) -> tuple[pd.DataFrame, list[str]]:
    frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    return frame, [c for c in frame.columns if c != "label"]


def _planted(loader: Any, rate: float, seed: int) -> tuple[Any, Any, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    frame, feats = _table(loader)
    poisoned = simulate(
        frame, "tabular_combo_trigger", Roles(label="label", features=tuple(feats)), rate=rate, seed=seed
    )
    report = detect(poisoned.data, label="label", features=feats, detectors=["feature_interactions"])
    return poisoned, report, poisoned.truth.mask(), np.asarray(report.flagged)


def test_the_product_of_tails_is_combined_exactly() -> None:
    x = np.array([1e-12, 1e-6, 0.01, 0.3, 1.0])
    for k in (1, 2, 3):
        assert np.allclose(_product_tail(x, k), chi2.sf(-2.0 * np.log(x), 2 * k))
    # the bare product is smaller than its tail: it is not a p-value
    assert (_product_tail(x[:-1], 2) > x[:-1]).all()


@pytest.mark.parametrize("seed", [101, 118, 135])
def test_five_planted_records_in_wine_are_found(seed: int) -> None:
    # measured: 5 of 5 in every seed, nothing else (the grids alone found none: quantile edges of wine's
    # tied values sit on the planted value, and the jittered records fall on both sides)
    poisoned, report, truth, flagged = _planted(datasets.load_wine, 0.03, seed)
    assert truth.sum() == 5
    assert flagged[truth].mean() >= 0.8 and truth[flagged].mean() >= 0.8
    assert set(report.findings[0].evidence["features"]) == set(poisoned.truth.trigger["features"])


def test_a_cluster_on_a_near_copy_pair_is_found() -> None:
    # seed 3 plants on mean perimeter and worst area (|Spearman| 0.98): missed before, 17 of 17 now
    poisoned, _, truth, flagged = _planted(datasets.load_breast_cancer, 0.03, 3)
    assert set(poisoned.truth.trigger["features"]) == {"mean perimeter", "worst area"}
    assert flagged[truth].mean() >= 0.9 and truth[flagged].mean() >= 0.9


def test_carriers_that_still_read_as_the_label_are_flagged_when_few_are_expected_in_the_box() -> None:
    # seed 135: 6 of the 17 carriers' other columns read as 'benign'; the grids flagged 11
    _, report, truth, flagged = _planted(datasets.load_breast_cancer, 0.03, 135)
    assert flagged[truth].mean() >= 0.95 and truth[flagged].mean() >= 0.9
    top = report.findings[0]
    assert top.evidence["expected_in_box"] <= 0.1 * len(top.records)


@pytest.mark.parametrize("loader", [datasets.load_wine, datasets.load_breast_cancer])
def test_permuted_labels_flag_nothing(loader: Any) -> None:
    frame, feats = _table(loader)
    for seed in range(3):
        shuffled = frame.assign(label=np.random.default_rng(seed).permutation(frame["label"].to_numpy()))
        report = detect(shuffled, label="label", features=feats, detectors=["feature_interactions"])
        assert report.results["feature_interactions"].params["scanned"] > 0  # the scan ran and tested boxes
        assert report.n_flagged == 0, [f.summary for f in report.findings]
