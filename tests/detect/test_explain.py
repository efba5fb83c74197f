"""Clean-label mode: a suspicious cluster found without label disagreement is explained by the features
(tables) or tokens (text) that separate it from the rest of its class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from dataward.detect import detect
from dataward.detect._explain import explain_cluster
from dataward.detect.representation import from_frame

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _wine() -> tuple[pd.DataFrame, list[str]]:
    frame = datasets.load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    return frame, [c for c in frame.columns if c != "label"]


@pytest.mark.parametrize(
    ("planted", "seed"), [(("magnesium", "proline", "ash"), 4), (("hue", "alcohol", "color_intensity"), 9)]
)
def test_spectral_cluster_names_the_planted_features_and_only_them(planted: tuple[str, ...], seed: int) -> None:
    frame, feats = _wine()
    rng = np.random.default_rng(seed)
    pick = rng.choice(np.flatnonzero(frame["label"].to_numpy() == "1"), 15, replace=False)
    for col in planted:  # labels kept: nothing for a label-disagreement detector to see
        frame.loc[pick, col] = frame.loc[pick, col] + 8.0 * frame[col].std()
    report = detect(frame, label="label", features=feats, detectors=["spectral_signatures"])
    assert set(np.flatnonzero(report.flagged)) == set(pick.tolist())
    (finding,) = report.findings
    named = {f["feature"] for f in finding.evidence["features"]}
    assert named == set(planted), finding.evidence["features"]
    for f in finding.evidence["features"]:
        assert f["direction"] == "higher" and f["auroc"] > 0.95 and f["p_value"] < 1e-3
        assert f["median_cluster"] > f["median_rest"]  # quoted in the column's own units
    assert all(col in finding.summary for col in planted)


def test_explainer_is_quiet_on_a_random_split() -> None:
    """The null: a random subset of a class differs from the rest by nothing; no feature is named."""
    frame, feats = _wine()
    rep = from_frame(frame, label="label", features=feats)
    idx = np.flatnonzero(rep.labels == 1)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(idx)
        assert explain_cluster(rep, perm[:15], perm[15:]) == {"features": []}


@pytest.mark.skipif(not (DATA / "sentiment").exists(), reason="needs the shared data sets")
def test_explainer_names_the_tokens_a_text_cluster_shares() -> None:
    rows = []
    for line in (DATA / "sentiment" / "yelp_labelled.txt").read_text(encoding="utf-8").split("\n"):
        if "\t" in line:
            text, label = line.rsplit("\t", 1)
            rows.append((text.strip(), label.strip()))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    pos = np.flatnonzero(frame["label"].to_numpy() == "1")
    pick = np.random.default_rng(2).choice(pos, 30, replace=False)
    frame.loc[pick, "text"] = frame.loc[pick, "text"] + " Shipped from Warehouse Seven."
    rep = from_frame(frame, label="label", text="text")
    rest = np.setdiff1d(pos, pick)
    got = explain_cluster(rep, pick, rest)["tokens"]
    assert {t["token"] for t in got[:3]} == {"shipped", "warehouse", "seven"}
    assert all(t["direction"] == "more" and t["rate_cluster"] == 1.0 for t in got[:3])
    # and a random split of the same class names nothing
    perm = np.random.default_rng(5).permutation(pos)
    assert explain_cluster(rep, perm[:30], perm[30:]) == {"tokens": []}
