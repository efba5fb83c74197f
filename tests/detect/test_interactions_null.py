"""feature_interactions on clean data whose classes are defined by interactions (digits as a table): a
stroke pair that makes a '4' is label-skewed beyond each range alone, but the carriers' other pixels agree
with their label, so it is not a trigger (it was flagged at critical before the masked test had to stand
on its own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from dataward.detect import detect
from dataward.simulate import Roles, simulate

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _digits_table() -> tuple[pd.DataFrame, list[str]]:
    d = datasets.load_digits()
    frame = pd.DataFrame(d.data, columns=[f"px{i}" for i in range(64)])
    frame["label"] = [str(v) for v in d.target]
    return frame, [f"px{i}" for i in range(64)]


def test_natural_interactions_of_clean_digits_are_not_triggers() -> None:
    frame, feats = _digits_table()
    report = detect(frame, label="label", features=feats, detectors=["feature_interactions"])
    assert report.n_flagged == 0, [f.summary for f in report.findings]
    assert not report.findings


def test_a_planted_combination_is_still_found_and_its_findings_list_what_they_flag() -> None:
    frame, feats = _digits_table()
    poisoned = simulate(frame, "tabular_combo_trigger", Roles(label="label", features=tuple(feats)), rate=0.03, seed=11)
    report = detect(poisoned.data, label="label", features=feats, detectors=["feature_interactions"])
    truth = poisoned.truth.mask()
    flagged = np.asarray(report.flagged)
    assert flagged.any()
    precision = truth[flagged].mean()
    recall = flagged[truth].mean()
    # measured on this seed: precision 1.00, recall 0.43 (the rest of the carriers' pixels agree with the
    # target often enough that the masked test cannot pass for every cell): precision is the property kept
    assert precision >= 0.9 and recall >= 0.4, (precision, recall)
    for f in report.findings:
        assert set(f.records) <= set(np.flatnonzero(flagged).tolist())
        assert f.evidence["masked_p_value"] * 60 < 0.01
