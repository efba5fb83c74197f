"""The label-noise gate's null tables (benchmarks/label_gate_null.py, docs/adr/0097, 0099): seeded, labels drawn
from the stated p(y | x); on clean ambiguous rings the gate should not reject, and a flipped separable ring is
caught."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench_module import load_benchmark  # tests/detect/bench_module.py
from sklearn.metrics import f1_score

from dataward.detect import from_arrays, from_frame
from dataward.detect._labels import LabelIssues
from dataward.detect.interface import Modality
from dataward.simulate import Roles, simulate

BENCH = load_benchmark("label_gate_null")


@pytest.mark.parametrize("family", BENCH.FAMILIES)
def test_null_tables_are_seeded_and_shaped_as_described(family: str) -> None:
    x, y, shape = BENCH.null_table(family, 3)
    again, y_again, _ = BENCH.null_table(family, 3)
    other = BENCH.null_table(family, 4)[0]
    assert np.array_equal(x, again) and np.array_equal(y, y_again)
    assert x.shape != other.shape or not np.array_equal(x, other)
    assert 150 <= x.shape[0] <= 900 and x.shape[0] == shape["n"] == y.shape[0]
    assert set(np.unique(y)) == set(range(shape["classes"]))
    if family != "logistic":
        assert 2 <= x.shape[1] <= 6 and 1.5 <= shape["a"] <= 5.0
        assert shape["classes"] == (3 if family == "three" else 2)
    with pytest.raises(ValueError, match="unknown family"):
        BENCH.null_table("moons", 0)


def test_ring_labels_follow_the_stated_probability() -> None:
    """Pooled over tables, the share of class 1 among records with ``sigmoid(a (r^2 - 1.4))`` in a band
    matches the band's probability (the labels are drawn from it, nothing else)."""
    p_all, y_all = [], []
    for index in range(20):
        x, y, shape = BENCH.null_table("ring", index)
        p_all.append(1.0 / (1.0 + np.exp(-shape["a"] * (x[:, 0] ** 2 + x[:, 1] ** 2 - 1.4))))
        y_all.append(y)
    p, y = np.concatenate(p_all), np.concatenate(y_all)
    for lo, hi in ((0.0, 0.2), (0.2, 0.8), (0.8, 1.0)):
        band = (p >= lo) & (p < hi)
        se = np.sqrt(p[band].mean() * (1 - p[band].mean()) / band.sum())
        assert abs(y[band].mean() - p[band].mean()) <= 4 * se, (lo, hi)


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_sharp_ring_with_flips_is_caught() -> None:
    """The same rings with ``a = 20`` (classes separable at ``r^2 = 1.4``) and 5 % random flips: the gate
    rejects and the flags find the flips; the unflipped tables stay quiet."""
    scores = []
    for index in range(1, 6):
        x, y, _ = BENCH.null_table("ring", index, sharpness=20.0)
        frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
        frame["label"] = [f"c{t}" for t in y]
        poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.05, seed=index)
        result = LabelIssues().score(from_frame(poisoned.data, label="label"), seed=index)
        assert result.params["noise_p_value"] <= 0.01, index
        scores.append(f1_score(poisoned.truth.mask(), result.flagged))
        clean = LabelIssues().score(from_frame(frame, label="label"), seed=index)
        assert not clean.flagged.any(), index
    assert min(scores) >= 0.45 and np.mean(scores) >= 0.6, scores


@pytest.mark.xfail(strict=True, reason="open: the gate rejects on clean ambiguous rings (docs/adr/0099)")
def test_gate_quiet_on_clean_ambiguous_rings() -> None:
    """Clean rings, ``sigmoid(a (r^2 - 1.4))`` with ``a`` 2.4-4 (broad regions of real ambiguity), no flips:
    the gate should not reject and nothing should be flagged. It rejects on these (p 7e-4 to 0.0074) and flags
    19, 2 and 1 records: the defect of docs/adr/0097 that docs/adr/0099 measured and did not fix."""
    for index in (1, 4, 6):
        x, y, _ = BENCH.null_table("ring", index)
        result = LabelIssues().score(from_arrays(x, y, modality=Modality.TABULAR), seed=index)
        assert result.params["noise_p_value"] > 0.01, index
        assert not result.flagged.any(), index
