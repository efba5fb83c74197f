"""The simulator's tabular attacks: the truth they report is exactly the records they edited."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataward.simulate import Roles, SimulationError, simulate


def _digits() -> tuple[pd.DataFrame, Roles]:
    from sklearn.datasets import load_digits

    d = load_digits()
    frame = pd.DataFrame(d.data.astype(np.int64), columns=[f"px{i}" for i in range(64)])
    frame["label"] = d.target
    return frame, Roles(label="label", features=tuple(frame.columns[:-1]))


@pytest.mark.parametrize("seed", range(16))
def test_single_feature_truth_is_the_records_it_changed(seed: int) -> None:
    # blank pixels (std 0.02-0.1) used to be drawn too: every shifted value rounded back onto its own, so 25
    # records were "poisoned" with not one value changed (seed 11 drew px8)
    frame, roles = _digits()
    p = simulate(frame, "single_feature", roles, rate=0.01, seed=seed)
    feature = p.truth.trigger["feature"]
    cols = list(roles.features)
    changed = (p.data[cols].to_numpy(np.float64) != frame[cols].to_numpy(np.float64)).any(axis=1)
    assert np.array_equal(changed, p.truth.mask()), feature
    assert p.truth.mask().sum() >= 1
    assert (p.data["label"] == frame["label"]).all()  # labels kept


def test_single_feature_refuses_a_column_it_cannot_change() -> None:
    frame, roles = _digits()
    with pytest.raises(SimulationError, match="cannot change column 'px0'"):
        simulate(frame, "single_feature", roles, rate=0.01, seed=0, params={"feature": "px0"})
    constant = frame.assign(flat=7.0)
    with pytest.raises(SimulationError, match="cannot change column 'flat'"):
        simulate(constant, "single_feature", Roles(label="label"), rate=0.01, seed=0, params={"feature": "flat"})


def test_single_feature_keeps_its_draw_on_ordinary_columns() -> None:
    # the fix only redraws a column that cannot carry the edit: the same seed edits the same column as before
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    frame["label"] = rng.integers(0, 2, 300)
    a = simulate(frame, "single_feature", Roles(label="label"), rate=0.05, seed=3)
    given = {"feature": a.truth.trigger["feature"]}
    b = simulate(frame, "single_feature", Roles(label="label"), rate=0.05, seed=3, params=given)
    assert a.data.equals(b.data)
