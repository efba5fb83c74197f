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


def test_patch_detector_quiet_on_clean_digits(digits: pd.DataFrame) -> None:
    report = detect(digits, label="label", image="image", detectors=["patch_triggers"])
    assert report.n_flagged == 0
    assert not report.findings


def test_blended_attack_changes_pixels_and_labels(digits: pd.DataFrame) -> None:
    result = simulate(digits, "blended", ROLES, rate=0.05, target="1", seed=2)
    i = result.truth.changed[0]
    assert result.data["label"].iloc[i] == 1
    assert not np.array_equal(result.data["image"].iloc[i], digits["image"].iloc[i])
