"""feature_residuals: its unflagged scores on the ensemble's common scale (ADR 0050), its null, its recall."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.metrics import roc_auc_score

from dataward.detect._residuals import FeatureResiduals, unflagged_on_common_scale
from dataward.detect.representation import from_frame
from dataward.simulate import Roles, simulate


def _frame(loader: object) -> tuple[pd.DataFrame, list[str]]:
    frame = loader(as_frame=True).frame.rename(columns={"target": "label"})  # type: ignore[operator]
    frame["label"] = frame["label"].astype(str)
    return frame, [c for c in frame.columns if c != "label"]


def test_common_scale_is_monotone_below_the_threshold_and_keeps_flagged_scores() -> None:
    p = np.array([1.0, 0.5, 0.1, 1e-2, 1e-4, 1e-12])
    flagged = np.array([False, False, False, False, False, True])
    before = np.array([0.0, 0.01, 0.05, 0.1, 0.2, 0.9])
    after = unflagged_on_common_scale(before, p, flagged)
    assert after[-1] == 0.9
    assert np.all(np.diff(after[:-1]) > 0)
    assert after[0] == 0.0 and np.all(after[:-1] < 0.49)


def test_clean_wine_is_quiet() -> None:
    frame, cols = _frame(load_wine)
    rep = from_frame(frame, label="label", features=cols)
    result = FeatureResiduals().score(rep, seed=1)
    assert not result.flagged.any()
    assert result.scores.max() < 0.49


def test_single_feature_edit_ranks_high_on_breast_cancer() -> None:
    frame, cols = _frame(load_breast_cancer)
    poisoned = simulate(frame, "single_feature", Roles(label="label", features=tuple(cols)), rate=0.03, seed=2)
    rep = from_frame(poisoned.data, label="label", features=cols)
    result = FeatureResiduals().score(rep, seed=2)
    assert roc_auc_score(poisoned.truth.mask(), result.scores) >= 0.85
