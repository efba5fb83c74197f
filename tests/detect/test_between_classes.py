"""Clean-label poison by position: records of one class moved toward another without relabelling.

spectral_signatures places each class's records on the line between its median and every other class's
(ADR 0063): a cluster sitting between two classes is a ``clean_label`` finding naming the other class and
the separating features; clean classes and label flips (records that sit *at* the other class) are not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn.metrics import roc_auc_score

from dataward.detect import detect
from dataward.detect._spectral import between_classes, between_strength, pair_positions
from dataward.simulate import Roles, simulate


def _digits() -> tuple[pd.DataFrame, list[str]]:
    d = datasets.load_digits()
    frame = pd.DataFrame(d.data, columns=[f"px{i}" for i in range(64)])
    frame["label"] = [str(v) for v in d.target]
    return frame, [c for c in frame.columns if c != "label"]


def test_position_is_halfway_for_midpoints_and_near_zero_for_the_class() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (200, 5))
    b = rng.normal(0.0, 1.0, (200, 5)) + np.array([8.0, 0, 0, 0, 0])
    mid = 0.5 * a[:10] + 0.5 * b[:10]
    x = np.vstack([a[10:], mid, b])
    y = np.array([0] * 190 + [0] * 10 + [1] * 200)
    t, toward = between_classes(pair_positions(x, y, [0, 1]), len(y))
    assert np.all(np.abs(t[190:200] - 0.5) < 0.2) and np.all(toward[190:200] == 1)
    assert np.median(t[:190]) < 0.1 and np.mean(t[:190] > 0.3) < 0.02


def test_overlapping_classes_give_no_position() -> None:
    x = np.random.default_rng(1).normal(size=(300, 4))
    y = np.repeat([0, 1], 150)
    assert pair_positions(x, y, [0, 1]) == []


def test_clean_label_cluster_is_found_ranked_and_explained() -> None:
    frame, feats = _digits()
    poisoned = simulate(frame, "clean_label", Roles(label="label", features=tuple(feats)), rate=0.01, seed=101)
    truth = poisoned.truth.mask()
    report = detect(poisoned.data, label="label", features=feats, detectors=["spectral_signatures"])
    result = report.results["spectral_signatures"]
    assert roc_auc_score(truth, result.scores) > 0.95
    found = [f for f in report.findings if f.kind == "clean_label"]
    assert len(found) == 1
    (finding,) = found
    assert finding.evidence["label"] == "0" and finding.evidence["toward"] == "1"
    assert 0.3 <= finding.evidence["position"] <= 0.8
    recs = np.asarray(finding.records)
    assert truth[recs].mean() > 0.9 and truth[recs].sum() >= 0.9 * truth.sum()
    assert finding.evidence["features"] and finding.evidence["features"][0]["p_value"] < 1e-3


def test_clean_digits_and_flipped_digits_raise_no_clean_label_finding() -> None:
    frame, feats = _digits()
    clean = detect(frame, label="label", features=feats, detectors=["spectral_signatures"])
    assert not [f for f in clean.findings if f.kind == "clean_label"]
    # flipped records labelled A also sit between A and their true class, but read as that class: label
    # noise, not a moved cluster (ADR 0083), so no clean-label finding holds them
    flipped = simulate(frame, "label_flip", Roles(label="label", features=tuple(feats)), rate=0.05, seed=3)
    report = detect(flipped.data, label="label", features=feats, detectors=["spectral_signatures"])
    assert not [f for f in report.findings if f.kind == "clean_label"]


def _clean_label_auroc(frame: pd.DataFrame) -> list[float]:
    """The ensemble's AUROC on 3 % clean-label poison of ``frame``, one per benchmark seed."""
    cols = [c for c in frame.columns if c != "label"]
    areas = []
    for seed in (101, 118, 135):
        poisoned = simulate(frame, "clean_label", Roles(label="label", features=tuple(cols)), rate=0.03, seed=seed)
        report = detect(poisoned.data, seed=seed, label="label", features=cols)
        areas.append(float(roc_auc_score(poisoned.truth.mask(), report.scores)))
    return areas


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_ensemble_ranks_clean_label_wine_above_the_issue_target() -> None:
    # issue 15's bar for clean-label poison at 3 % (5 records of 178 moved halfway toward class 1): the
    # ensemble's AUROC over the benchmark's seeds; spectral_signatures ranks them best and the cubic mean
    # keeps its order where the root-mean-square averaged it with other detectors' natural outliers (ADR 0085)
    d = datasets.load_wine(as_frame=True)
    frame = d.frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    areas = _clean_label_auroc(frame)
    assert np.mean(areas) >= 0.90, areas


def test_blends_sit_nearer_the_pairs_line_than_records_at_the_same_position() -> None:
    # a record moved a third of the way toward a record of another class averages two independent
    # deviations, so its spread off the line between the classes is about half a natural record's (ADR 0094);
    # records of the class's own tail at the same position keep their full spread and rank below the blends
    rng = np.random.default_rng(0)
    d, k = 30, 40
    shift = np.r_[6.0, np.zeros(d - 1)]
    a = rng.normal(0.0, 1.0, (300, d))
    b = rng.normal(0.0, 1.0, (300, d)) + shift
    blends = 0.65 * rng.normal(0.0, 1.0, (k, d)) + 0.35 * b[:k]
    tail = rng.normal(0.0, 1.0, (k, d)) + 0.35 * shift  # as far along, full spread
    x = np.vstack([a, blends, tail, b])
    y = np.array([0] * (300 + 2 * k) + [1] * 300)
    pairs = pair_positions(x, y, [0, 1], off_line=True)
    (pair,) = [p for p in pairs if p.a == 0]
    assert pair.off_line is not None
    blend_at, tail_at = np.arange(300, 300 + k), np.arange(300 + k, 300 + 2 * k)  # class 0 comes first
    assert abs(np.median(pair.position[blend_at]) - np.median(pair.position[tail_at])) < 0.1  # t cannot tell
    assert np.median(pair.off_line[blend_at]) < -0.8 and abs(np.median(pair.off_line[:300])) < 0.3
    truth = np.r_[np.ones(k), np.zeros(k)]
    plain, strength = between_strength(pairs, len(y), 0.0), between_strength(pairs, len(y), 0.5)
    t_only = roc_auc_score(truth, np.r_[plain[blend_at], plain[tail_at]])
    with_off = roc_auc_score(truth, np.r_[strength[blend_at], strength[tail_at]])
    assert with_off > 0.62 and with_off > t_only + 0.12, (t_only, with_off)


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_ensemble_ranks_clean_label_breast_cancer_above_the_issue_target() -> None:
    # issue 15's bar at 3 % (17 benign records moved halfway toward malignant ones), benchmark seeds: 0.892
    # with the position alone, where malignant records of that class's broad natural tail toward benign sat
    # beside the poison; the poison sits nearer the pair's line than its class, which raises it (ADR 0094)
    d = datasets.load_breast_cancer(as_frame=True)
    frame = d.frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].map({0: "malignant", 1: "benign"})
    areas = _clean_label_auroc(frame)
    assert np.mean(areas) >= 0.90, areas
