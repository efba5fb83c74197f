"""BadNets / blended attacks and the patch-trigger detector on sklearn digits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from dataward.detect import detect
from dataward.simulate import Roles, SimulationError, simulate
from dataward.simulate.bench import score_flags

ROLES = Roles(label="label", image="image")


def digits_frame() -> pd.DataFrame:
    x, y = load_digits(return_X_y=True)
    images = [np.rint(row.reshape(8, 8) * 255 / 16).astype(np.uint8) for row in x]
    return pd.DataFrame({"image": images, "label": y})


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    return digits_frame()


def test_badnets_stamps_patch_and_relabels(digits: pd.DataFrame) -> None:
    result = simulate(digits, "badnets", ROLES, rate=0.02, target="7", seed=4, params={"size": 2})
    changed = list(result.truth.changed)
    assert len(changed) == round(0.02 * len(digits))
    for i in changed:
        assert digits["label"].iloc[i] != 7
        assert result.data["label"].iloc[i] == 7
        assert (result.data["image"].iloc[i][6:8, 6:8] == 255).all()
    assert result.truth.trigger is not None and result.truth.trigger["rows"] == [6, 7]
    # the input frame is not modified
    assert not any(digits["label"].iloc[i] == 7 for i in changed)
    assert not all((digits["image"].iloc[i][6:8, 6:8] == 255).all() for i in changed)
    with pytest.raises(SimulationError):
        simulate(digits, "badnets", ROLES, rate=0.02, params={"location": "nowhere"})


@pytest.mark.slow
@pytest.mark.parametrize(("rate", "location"), [(0.01, "bottom-right"), (0.03, "top-left")])
def test_patch_trigger_is_named_and_its_carriers_flagged(digits: pd.DataFrame, rate: float, location: str) -> None:
    result = simulate(digits, "badnets", ROLES, rate=rate, target="2", seed=9, params={"location": location})
    report = detect(result.data, label="label", image="image", seed=1, detectors=["patch_triggers"])
    truth = result.truth.mask()
    res = report.results["patch_triggers"]
    score = score_flags("patch", res.flagged, res.scores, truth, 0.0)
    assert score.f1 >= 0.95, score
    top = report.findings[0]
    assert top.kind == "trigger"
    trig = top.evidence["trigger"]
    assert trig["rows"] == result.truth.trigger["rows"]  # type: ignore[index]
    assert trig["cols"] == result.truth.trigger["cols"]  # type: ignore[index]
    assert np.allclose(trig["values"], 1.0)
    assert top.evidence["label"] == "2"
    assert set(top.records) == set(result.truth.changed)


@pytest.mark.slow
def test_patch_detector_quiet_on_clean_digits(digits: pd.DataFrame) -> None:
    report = detect(digits, label="label", image="image", detectors=["patch_triggers"])
    assert report.n_flagged == 0
    assert not report.findings


def test_blended_attack_changes_pixels_and_labels(digits: pd.DataFrame) -> None:
    result = simulate(digits, "blended", ROLES, rate=0.05, target="1", seed=2)
    i = result.truth.changed[0]
    assert result.data["label"].iloc[i] == 1
    assert not np.array_equal(result.data["image"].iloc[i], digits["image"].iloc[i])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rate", "size", "value", "target", "seed"),
    [(0.01, 3, "random", "5", 21), (0.03, 2, "checker", "3", 22), (0.01, 4, 128, "9", 23)],
)
def test_patch_anywhere_is_found_whatever_its_position(
    digits: pd.DataFrame, rate: float, size: int, value: object, target: str, seed: int
) -> None:
    """A pattern stamped at a different position in every image (no fixed pixel to find) is still found:
    pattern, size, rate, target and seeds differ from the benchmark's 3x3 checker on '0'."""
    params = {"location": "random", "size": size, "value": value}
    result = simulate(digits, "badnets", ROLES, rate=rate, target=target, seed=seed, params=params)
    origins = result.truth.trigger["origins"]  # type: ignore[index]
    assert len({tuple(v) for v in origins.values()}) > 5  # really at varying positions
    report = detect(result.data, label="label", image="image", seed=seed, detectors=["patch_triggers"])
    res = report.results["patch_triggers"]
    score = score_flags("patch", res.flagged, res.scores, result.truth.mask(), 0.0)
    assert score.f1 >= 0.95, score
    top = report.findings[0]
    assert top.kind == "trigger" and top.evidence["trigger"]["anywhere"]
    assert top.evidence["label"] == target
    assert top.evidence["p_value"] < 0.01
    # the positions it reports are where the simulator put the patch (within the patch)
    for rec, (r, c) in top.evidence["trigger"]["positions"].items():
        r0, c0 = origins[rec]
        assert r0 <= r <= r0 + size - 1 and c0 <= c <= c0 + size - 1


@pytest.mark.slow
def test_patch_anywhere_needs_the_content_to_disagree(digits: pd.DataFrame) -> None:
    """Attacking the null: the same random-position pattern stamped on images *of the target class* (a
    label-pure rare pattern whose carriers look like their label) is not a trigger and is not flagged."""
    rng = np.random.default_rng(3)
    frame = digits.copy()
    images = list(frame["image"])
    own = np.flatnonzero(frame["label"].to_numpy() == 4)[:20]
    patch = np.indices((3, 3)).sum(axis=0) % 2 * 255
    for i in own:
        img = images[i].copy()
        r, c = rng.integers(0, 6, size=2)
        img[r : r + 3, c : c + 3] = patch
        images[i] = img
    frame["image"] = pd.Series(images, index=frame.index, dtype=object)
    report = detect(frame, label="label", image="image", detectors=["patch_triggers"])
    assert report.n_flagged == 0, [f.summary for f in report.findings]


@pytest.mark.slow
@pytest.mark.parametrize(("size", "value", "target", "seed"), [(3, "random", "5", 31), (3, "checker", "2", 32)])
def test_a_few_planted_records_are_found_at_any_position(
    digits: pd.DataFrame, size: int, value: object, target: str, seed: int
) -> None:
    """0.3 % (5 images): the purity tail alone cannot pass Bonferroni over every window code, and natural
    label-pure strokes outrank it; the codes whose carriers' content votes for other classes are tested
    first, and the joint test (purity x masked disagreement) is strong enough for five records."""
    params = {"location": "random", "size": size, "value": value}
    result = simulate(digits, "badnets", ROLES, rate=0.003, target=target, seed=seed, params=params)
    truth = result.truth.mask()
    assert truth.sum() == 5
    report = detect(result.data, label="label", image="image", seed=seed, detectors=["patch_triggers"])
    flagged = report.results["patch_triggers"].flagged
    assert (flagged & truth).sum() >= 4 and (flagged & ~truth).sum() <= 1
    assert report.findings[0].evidence["label"] == target


@pytest.mark.slow
def test_a_few_own_class_carriers_of_a_rare_pattern_are_not_flagged(digits: pd.DataFrame) -> None:
    """The null at 0.3 %: five images of one class carrying a rare pattern at random positions (label-pure,
    but their content agrees with their label) pass the screen's purity but not the masked test."""
    rng = np.random.default_rng(5)
    frame = digits.copy()
    images = list(frame["image"])
    patch = np.indices((3, 3)).sum(axis=0) % 2 * 255
    for i in np.flatnonzero(frame["label"].to_numpy() == 6)[:5]:
        img = images[i].copy()
        r, c = rng.integers(0, 6, size=2)
        img[r : r + 3, c : c + 3] = patch
        images[i] = img
    frame["image"] = pd.Series(images, index=frame.index, dtype=object)
    report = detect(frame, label="label", image="image", detectors=["patch_triggers"])
    assert report.n_flagged == 0, [f.summary for f in report.findings]
