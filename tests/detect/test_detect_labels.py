"""Label-issue detector and label-flip attacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_wine

from dataward.detect import detect, from_arrays
from dataward.detect._labels import LabelIssues
from dataward.detect.interface import Modality
from dataward.simulate import Roles, SimulationError, simulate
from dataward.simulate.bench import score_flags


def _wine_frame() -> pd.DataFrame:
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].map({0: "a", 1: "b", 2: "c"})
    return frame


def test_random_flip_attack_records_truth_and_leaves_input_alone() -> None:
    frame = _wine_frame()
    before = frame.copy()
    result = simulate(frame, "label_flip", Roles(label="label"), rate=0.1, seed=3)
    pd.testing.assert_frame_equal(frame, before)
    changed = list(result.truth.changed)
    assert len(changed) == round(0.1 * len(frame))
    assert all(result.data["label"].iloc[i] != frame["label"].iloc[i] for i in changed)
    untouched = np.setdiff1d(np.arange(len(frame)), changed)
    assert (result.data["label"].iloc[untouched] == frame["label"].iloc[untouched]).all()
    assert result.truth.how[changed[0]].startswith("label ")


def test_targeted_flip_moves_source_class_to_target() -> None:
    frame = _wine_frame()
    result = simulate(
        frame, "targeted_flip", Roles(label="label"), rate=0.05, target="c", seed=1, params={"source": "a"}
    )
    changed = list(result.truth.changed)
    assert (frame["label"].iloc[changed] == "a").all()
    assert (result.data["label"].iloc[changed] == "c").all()
    assert result.truth.target == "c"
    with pytest.raises(SimulationError):
        simulate(frame, "targeted_flip", Roles(label="label"), rate=0.05, target="zzz")


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.05, 0.10])
def test_label_issues_find_random_flips_on_digits(rate: float) -> None:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(11)
    idx = rng.choice(len(y), round(rate * len(y)), replace=False)
    noisy = y.copy()
    noisy[idx] = (noisy[idx] + rng.integers(1, 10, idx.size)) % 10
    truth = np.zeros(len(y), dtype=bool)
    truth[idx] = True
    rep = from_arrays(x / 16.0, noisy, modality=Modality.IMAGE)
    result = LabelIssues().score(rep, seed=0)
    score = score_flags("labels", result.flagged, result.scores, truth, 0.0)
    assert score.f1 >= 0.92, score
    assert score.auroc is not None and score.auroc > 0.99
    # flagged records sit at or above 0.5, the others below
    assert result.scores[result.flagged].min() >= 0.5 > result.scores[~result.flagged].max()
    some = int(np.flatnonzero(result.flagged & truth)[0])
    assert "labelled" in result.reasons[some][0]
    assert result.findings and result.findings[0].kind == "label_issue"


def test_label_issues_quiet_on_clean_wine_and_deterministic() -> None:
    frame = _wine_frame()
    first = detect(frame, label="label", seed=5, detectors=["label_issues"])
    second = detect(frame, label="label", seed=5, detectors=["label_issues"])
    assert first.n_flagged <= 0.01 * len(frame) + 1
    np.testing.assert_array_equal(first.scores, second.scores)
