"""spectral_signatures against label noise (ADR 0083).

Random flips into a class split off from it along its top singular direction and sit toward their source
class, so before ADR 0083 they formed ``trigger`` and ``clean_label`` findings (iris 10 %, wine 5 %,
digits 5-10 %). A flipped record reads as its source class; each finding must now also beat label noise,
while planted clusters (a patch relabelled to one class, records moved toward another class) stay found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from dataward.detect import detect, from_frame
from dataward.detect._features import dense_view
from dataward.detect._spectral import ClassReader, flip_rate_pvalue, label_noise_null_pvalue, split_separation
from dataward.simulate import Roles, simulate


def _table(name: str) -> pd.DataFrame:
    bunch = getattr(datasets, f"load_{name}")()
    frame = pd.DataFrame(bunch.data, columns=[f"f{i}" for i in range(bunch.data.shape[1])])
    frame["label"] = [str(bunch.target_names[t]) for t in bunch.target]
    return frame


def _spectral(
    frame: pd.DataFrame, seed: int, image: str | None = None
) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, Any]]:
    report = detect(frame, label="label", image=image, seed=seed, detectors=["spectral_signatures"])
    result = report.results["spectral_signatures"]
    return [(f.kind, f.records) for f in result.findings], dict(result.params)


# the runs that made findings of flips before (trigger: iris, wine; clean_label: digits)
@pytest.mark.parametrize(
    ("name", "rate", "seed"),
    [("iris", 0.10, 0), ("iris", 0.10, 1), ("wine", 0.05, 0), ("digits", 0.05, 0), ("digits", 0.10, 2)],
)
def test_random_flips_make_no_spectral_finding(name: str, rate: float, seed: int) -> None:
    frame = _table(name)
    flipped = simulate(frame, "label_flip", Roles(label="label"), rate=rate, seed=seed)
    found, params = _spectral(flipped.data, seed)
    assert found == []
    # the column-permutation null alone still rejects: it is the label-noise test that holds them back
    rejected = [p for p in params["p_values"].values() if p <= 1e-3]
    rejected += [p for k, p in params["between_p_values"].items() if "reading as" not in k and p <= 1e-3]
    assert rejected or params["between_ashman_d_reading_as_label"]


def test_flipped_records_read_as_their_source_class() -> None:
    frame = _table("digits")
    flipped = simulate(frame, "label_flip", Roles(label="label"), rate=0.10, seed=1)
    truth = flipped.truth.mask()
    rep = from_frame(flipped.data, label="label")
    assert rep.labels is not None
    reads = ClassReader(dense_view(rep, 1), rep.labels, 1).read(np.flatnonzero(truth))
    source = np.asarray([rep.label_names.index(frame["label"].iloc[i]) for i in np.flatnonzero(truth)])
    assert np.mean(reads == source) > 0.9  # flips read as where they came from
    assert np.mean(reads == rep.labels[truth]) < 0.05  # almost never as the label they were given


def _gaussian_classes(seed: int, flips: float, planted: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three Gaussian classes of 200 in 12 dimensions, ``flips`` of the labels moved to another class at
    random, and ``planted`` records of classes 1 and 2 given an offset of 6 on the last 3 columns and
    relabelled 0 (a backdoor). Returns (x, labels, the planted records)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, 12))
    centres[1, 0] = centres[2, 1] = 6.0
    y_true = np.repeat([0, 1, 2], 200)
    x = centres[y_true] + rng.normal(size=(600, 12))
    y = y_true.copy()
    flip = rng.random(600) < flips
    y[flip] = (y[flip] + rng.integers(1, 3, flip.sum())) % 3
    poison = rng.choice(np.flatnonzero((y_true != 0) & ~flip), planted, replace=False)
    x[poison, 9:] += 6.0
    y[poison] = 0
    return x, y, poison


def _noise_p(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    idx = np.flatnonzero(y == 0)
    d = split_separation(x[idx] - x[idx].mean(axis=0))[3]
    reader = ClassReader(x, y, seed)
    return label_noise_null_pvalue(x, y, idx, lambda m: split_separation(m)[3], d, reader, 24, seed)


def test_label_noise_null_holds_for_flips_and_rejects_a_shared_signal() -> None:
    """Flips alone (10 %): the class's split is what label noise gives; 20 relabelled records sharing one
    offset (a backdoor, under 5 % flips) are far beyond it."""
    flips_only = [_noise_p(*_gaussian_classes(seed, 0.10, 0)[:2], seed) for seed in range(6)]
    assert min(flips_only) > 1e-3 and np.median(flips_only) > 0.05
    for seed in range(3):
        x, y, _ = _gaussian_classes(seed, 0.05, 20)
        assert _noise_p(x, y, seed) < 1e-6


def test_planted_attacks_stay_found() -> None:
    # clean-label: records of '0' moved halfway toward '1', labels kept (they read as '0')
    frame = _table("digits")
    moved = simulate(frame, "clean_label", Roles(label="label"), rate=0.01, seed=118)
    truth = moved.truth.mask()
    found, _ = _spectral(moved.data, 118)
    held = [r for kind, recs in found if kind == "clean_label" for r in recs]
    assert truth[held].mean() > 0.9 and truth[held].sum() >= 0.9 * truth.sum()
    # badnets: a patch on images of other digits, relabelled '0'
    d = datasets.load_digits()
    images = [np.rint(row.reshape(8, 8) * 255 / 16).astype(np.uint8) for row in d.data]
    pics = pd.DataFrame({"image": images, "label": [str(t) for t in d.target]})
    patched = simulate(pics, "badnets", Roles(label="label", image="image"), rate=0.03, target="0", seed=101)
    truth = patched.truth.mask()
    found, _ = _spectral(patched.data, 101, image="image")
    held = [r for kind, recs in found if kind == "trigger" for r in recs]
    assert held and truth[held].mean() > 0.9 and truth[held].sum() >= 0.9 * truth.sum()


def test_a_targeted_flip_is_more_than_label_noise() -> None:
    """Records of one class all relabelled as another (the simulator's targeted flip) read as their source
    like random flips do; their count, against the rate the other label/reading cells show, tells them."""
    frame = _table("wine")
    for seed in (1, 2):
        flipped = simulate(frame, "targeted_flip", Roles(label="label"), rate=0.05, target="class_2", seed=seed)
        truth = flipped.truth.mask()
        found, params = _spectral(flipped.data, seed)
        held = [r for kind, recs in found if kind == "trigger" for r in recs]
        assert held and truth[held].all() and truth[held].sum() == truth.sum()
        assert params["label_noise_p_values"]["class_2"] <= 1e-3
    # random flips at the same rate: no source of any class is over-represented
    flipped = simulate(frame, "label_flip", Roles(label="label"), rate=0.05, seed=0)
    rep = from_frame(flipped.data, label="label")
    assert rep.labels is not None
    reader = ClassReader(dense_view(rep, 0), rep.labels, 0)
    assert min(flip_rate_pvalue(rep.labels, a, reader, 0) for a in range(3)) > 1e-3
