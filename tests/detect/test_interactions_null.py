"""feature_interactions on clean data whose classes are defined by interactions (digits as a table): a
stroke pair that makes a '4' is label-skewed beyond each range alone, but the carriers' other pixels agree
with their label, so it is not a trigger (it was flagged at critical before the masked test had to stand
on its own)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from dataward.detect import detect
from dataward.detect._interactions import _noise_tail
from dataward.detect._shortcuts import _masked_majority
from dataward.simulate import Roles, simulate

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _digits_table() -> tuple[pd.DataFrame, list[str]]:
    d = datasets.load_digits()
    frame = pd.DataFrame(d.data, columns=[f"px{i}" for i in range(64)])
    frame["label"] = [str(v) for v in d.target]
    return frame, [f"px{i}" for i in range(64)]


def _planted_on_digits(rate: float, seed: int) -> tuple[Any, Any, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A simulated combination trigger on digits-as-table, the detector's report, the truth and its flags."""
    frame, feats = _digits_table()
    roles = Roles(label="label", features=tuple(feats))
    poisoned = simulate(frame, "tabular_combo_trigger", roles, rate=rate, seed=seed)
    report = detect(poisoned.data, label="label", features=feats, detectors=["feature_interactions"])
    return poisoned, report, poisoned.truth.mask(), np.asarray(report.flagged)


def test_natural_interactions_of_clean_digits_are_not_triggers() -> None:
    frame, feats = _digits_table()
    report = detect(frame, label="label", features=feats, detectors=["feature_interactions"])
    assert report.n_flagged == 0, [f.summary for f in report.findings]
    assert not report.findings


def test_a_planted_combination_is_still_found_and_its_findings_list_what_they_flag() -> None:
    _, report, truth, flagged = _planted_on_digits(rate=0.03, seed=11)
    assert flagged.any()
    precision = truth[flagged].mean()
    recall = flagged[truth].mean()
    # measured on this seed: precision 1.00, recall 1.00 (0.43 while cells needed 80 % purity and 16 bins)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    for f in report.findings:
        assert set(f.records) <= set(np.flatnonzero(flagged).tolist())
        assert f.evidence["masked_p_value"] * 60 < 0.01


def test_clean_tables_and_shuffled_labels_flag_nothing() -> None:
    """The nulls, on real tables: unmodified breast_cancer and wine (near-copies such as radius and area sit
    in one slice, not an interaction), and digits with its labels shuffled (no label follows any cell)."""
    for loader in (datasets.load_breast_cancer, datasets.load_wine):
        frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
        frame["label"] = frame["label"].astype(str)
        feats = [c for c in frame.columns if c != "label"]
        report = detect(frame, label="label", features=feats, detectors=["feature_interactions"])
        assert report.n_flagged == 0, [f.summary for f in report.findings]
    frame, feats = _digits_table()
    frame["label"] = np.random.default_rng(3).permutation(frame["label"].to_numpy())
    report = detect(frame, label="label", features=feats, detectors=["feature_interactions"])
    assert report.n_flagged == 0, [f.summary for f in report.findings]


def test_a_combination_shared_with_natural_records_of_other_classes_is_found() -> None:
    """Digits at 1 %: the planted pixel pair is common in other classes too (natural records of other labels
    in the cell outnumber no purity bar), the records labelled with the target are still the poison."""
    poisoned, report, truth, flagged = _planted_on_digits(rate=0.01, seed=21)
    assert flagged.any()
    assert truth[flagged].mean() >= 0.9 and flagged[truth].mean() >= 0.8
    assert set(poisoned.truth.trigger["features"]) == set(report.findings[0].evidence["features"])


def _flipped(name: str, rate: float, seed: int) -> tuple[pd.DataFrame, list[str], np.ndarray[Any, Any]]:
    """A real table with a random ``rate`` of its labels flipped (the simulator's ``label_flip``)."""
    if name == "digits-table":
        frame, feats = _digits_table()
    else:
        frame = datasets.load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
        frame["label"] = frame["label"].astype(str)
        feats = [c for c in frame.columns if c != "label"]
    flipped = simulate(frame, "label_flip", Roles(label="label", features=tuple(feats)), rate=rate, seed=seed)
    return flipped.data, feats, flipped.truth.mask()


@pytest.mark.parametrize(("name", "rate", "seed"), [("breast_cancer", 0.10, 2), ("digits-table", 0.05, 0)])
def test_random_label_flips_form_no_trigger(name: str, rate: float, seed: int) -> None:
    """Random flips land where their source class lives: a box of breast_cancer or a cell of digits where
    that class is common holds several, whose masked content reads as the source class. Against the label's
    natural disagreement that was a trigger (measured before the label-noise null: 3 findings on
    breast_cancer 10 % seed 2, 4 on digits 5 % seed 0, 29 and 37 records flagged); against the share of the
    label among records of the same classes elsewhere it is not."""
    data, feats, _ = _flipped(name, rate, seed)
    report = detect(data, label="label", features=feats, detectors=["feature_interactions"])
    assert not report.findings, [f.summary for f in report.findings]
    assert report.n_flagged == 0


def test_a_planted_combination_amid_random_flips_is_still_found() -> None:
    """breast_cancer, a combination trigger at 3 % and 5 % random flips on top: the trigger's records are
    still flagged, and the flips are left to the label checks (none of them inside a trigger finding)."""
    frame = datasets.load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    feats = [c for c in frame.columns if c != "label"]
    roles = Roles(label="label", features=tuple(feats))
    planted = simulate(frame, "tabular_combo_trigger", roles, rate=0.03, seed=2)
    noisy = simulate(planted.data, "label_flip", roles, rate=0.05, seed=0)
    trigger, flips = planted.truth.mask(), noisy.truth.mask() & ~planted.truth.mask()
    report = detect(noisy.data, label="label", features=feats, detectors=["feature_interactions"])
    flagged = np.asarray(report.flagged)
    assert report.findings
    assert flagged[trigger].mean() >= 0.9, flagged[trigger].mean()
    assert trigger[flagged].mean() >= 0.9, trigger[flagged].mean()
    assert not (flagged & flips).any()
    assert planted.truth.trigger is not None
    for f in report.findings:
        assert f.evidence["label_noise_p_value"] * 90 < 0.01
        assert set(f.evidence["features"]) == set(planted.truth.trigger["features"])


def _cell_tails(seed: int, rate: float, plant: int = 0, cells: int = 200) -> np.ndarray[Any, Any]:
    """The label-noise tail of random cells (the nearest 8-40 records of a random centre in two of the
    columns that do not separate the classes, those two masked) of three Gaussian classes with a random
    ``rate`` of flipped labels; with ``plant``, that many carriers of other classes relabelled to the cell's
    class first (a trigger's records)."""
    rng = np.random.default_rng(seed)
    n, dim, k_cls = 600, 8, 3
    truth = rng.integers(k_cls, size=n)
    x = rng.normal(size=(n, dim)) + 3.0 * np.eye(k_cls, dim)[truth]
    y = truth.copy()
    flip = rng.random(n) < rate
    y[flip] = (y[flip] + rng.integers(1, k_cls, int(flip.sum()))) % k_cls
    refs = np.arange(n)
    out = []
    for _ in range(cells):
        a, b = rng.choice(np.arange(k_cls, dim), 2, replace=False)
        c = rng.integers(n)
        near = np.argsort(np.abs(x[:, a] - x[c, a]) + np.abs(x[:, b] - x[c, b]))
        carriers = np.sort(near[: rng.integers(8, 40)])
        t = int(rng.integers(k_cls))
        labels = y.copy()
        labels[carriers[truth[carriers] != t][:plant]] = t
        labelled = carriers[labels[carriers] == t]
        if labelled.size == 0:
            continue
        drop = np.array([a, b])
        majority = _masked_majority(x, labels, labelled, refs, drop, 5)
        out.append(_noise_tail(x, labels, carriers, labelled, majority, refs, drop, t, 5))
    return np.array(out)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2])
def test_the_label_noise_tail_is_a_p_value_under_random_flips(rate: float) -> None:
    """Under random flips a cell's flipped records follow its records of their source class: the tail is
    not small more often than its level says (measured: at most 1 % of 200 cells at 0.05, 0.5 % at 0.01)."""
    p = _cell_tails(0, rate)
    assert p.size >= 190
    assert np.mean(p <= 0.05) <= 0.05
    assert np.mean(p <= 0.01) <= 0.02


def test_the_label_noise_tail_finds_relabelled_carriers_beyond_the_noise() -> None:
    """Six carriers of other classes relabelled to the cell's class, on top of 10 % random flips: far more
    than the share of that label among their classes elsewhere (measured: median tail 3e-4)."""
    planted = _cell_tails(1, 0.1, plant=6, cells=30)
    assert np.median(planted) <= 1e-3
    assert np.mean(planted <= 0.05) >= 0.9
