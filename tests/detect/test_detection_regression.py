"""Quick detection regression: a small seeded grid whose scores are pinned in detection_regression.json.

A change to a detector or the simulator that loses more than 0.02 on any row fails. To re-pin after an
intended improvement, run this file as a script (it rewrites the JSON) and commit the diff with the reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score
from text_corpus import sentiment_frame  # tests/detect/text_corpus.py

from dataward.detect import detect, registry
from dataward.detect.api import load_builtin_detectors
from dataward.detect.representation import from_frame
from dataward.simulate import Roles, simulate

PINNED = Path(__file__).with_name("detection_regression.json")
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TOLERANCE = 0.02
ENSEMBLE = "ensemble"  # every detector that applies, fused as `dataward detect` fuses them

# (row name, data set, attack, rate, seed, attack params, detector, metric)
GRID: list[tuple[str, str, str, float, int, dict[str, Any], str, str]] = [
    ("sentiment combo-2 1%", "sentiment", "text-combo-trigger", 0.01, 7, {"n_words": 2}, "text_combos", "f1"),
    ("sentiment combo-3 3%", "sentiment", "text-combo-trigger", 0.03, 8, {"n_words": 3}, "text_combos", "f1"),
    ("sentiment token 1%", "sentiment", "text-trigger", 0.01, 7, {"trigger": "cf"}, "text_triggers", "f1"),
    ("wine combo 3%", "wine", "tabular_combo_trigger", 0.03, 1, {}, "feature_interactions", "f1"),
    ("digits-table combo 3%", "digits", "tabular_combo_trigger", 0.03, 1, {}, "feature_interactions", "f1"),
    ("digits-table combo 1%", "digits", "tabular_combo_trigger", 0.01, 7, {}, "feature_interactions", "f1"),
    ("breast_cancer combo 3%", "breast_cancer", "tabular_combo_trigger", 0.03, 2, {}, "feature_interactions", "f1"),
    ("wine single-feature 3%", "wine", "single_feature", 0.03, 1, {}, "feature_residuals", "auroc"),
    ("breast_cancer single-feature 3%", "breast_cancer", "single_feature", 0.03, 2, {}, "feature_residuals", "auroc"),
    (
        "digits patch anywhere 1%",
        "digits-img",
        "badnets",
        0.01,
        7,
        {"location": "random", "size": 3, "value": "checker"},
        "patch_triggers",
        "f1",
    ),
    (
        "digits-16 random patch anywhere 3%",
        "digits16-img",
        "badnets",
        0.03,
        8,
        {"location": "random", "size": 3, "value": "random"},
        "patch_triggers",
        "f1",
    ),
    ("digits blended 1%", "digits-img", "blended", 0.01, 7, {"alpha": 0.2}, "patch_triggers", "f1"),
    # the whole ensemble (FDR-controlled fusion): natural label noise must not dilute a found trigger
    (
        "ensemble digits patch anywhere 1%",
        "digits-img",
        "badnets",
        0.01,
        7,
        {"location": "random", "size": 3, "value": "checker"},
        ENSEMBLE,
        "f1",
    ),
    ("ensemble sentiment combo-2 1%", "sentiment", "text-combo-trigger", 0.01, 7, {"n_words": 2}, ENSEMBLE, "f1"),
    ("ensemble digits blended 0.3%", "digits-img", "blended", 0.003, 7, {"alpha": 0.2}, ENSEMBLE, "f1"),
    # a phrase found as it stands and as its words anywhere: the report must open with the phrase (ADR 0108)
    (
        "ensemble sentiment phrase 1% named",
        "sentiment",
        "text-trigger",
        0.01,
        7,
        {"trigger": "per my last email", "position": "start"},
        ENSEMBLE,
        "named",
    ),
    # an ordinary word (natural carriers in both classes) planted where texts open: pure only there (ADR 0110;
    # F1 0.13 before positional candidates)
    (
        "ensemble sentiment ordinary word at the start 1%",
        "sentiment",
        "text-trigger",
        0.01,
        7,
        {"trigger": "every", "position": "start"},
        ENSEMBLE,
        "f1",
    ),
    # five planted images (0.3 %) at random positions: tested first because their content votes elsewhere
    (
        "digits patch anywhere 0.3%",
        "digits-img",
        "badnets",
        0.003,
        7,
        {"location": "random", "size": 3, "value": "checker"},
        "patch_triggers",
        "f1",
    ),
    (
        "ensemble digits-16 random patch anywhere 0.3%",
        "digits16-img",
        "badnets",
        0.003,
        8,
        {"location": "random", "size": 3, "value": "random"},
        ENSEMBLE,
        "f1",
    ),
]


def _frame(name: str) -> tuple[pd.DataFrame, Roles, dict[str, Any]]:
    if name == "sentiment":
        return sentiment_frame(), Roles(label="label", text="text"), {"label": "label", "text": "text"}
    from sklearn import datasets

    if name in ("digits-img", "digits16-img"):  # images: 8x8, or upscaled to 16x16 (bilinear)
        from scipy.ndimage import zoom

        d = datasets.load_digits()
        scale = 2 if name == "digits16-img" else 1
        images = [np.asarray(np.clip(zoom(im * 255 / 16, scale, order=1), 0, 255), np.uint8) for im in d.images]
        frame = pd.DataFrame({"image": images, "label": [str(v) for v in d.target]})
        return frame, Roles(label="label", image="image"), {"label": "label", "image": "image"}
    if name == "digits":
        d = datasets.load_digits()
        frame = pd.DataFrame(d.data, columns=[f"px{i}" for i in range(64)])
        frame["label"] = d.target
    else:
        loader = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}[name]
        frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    feats = [c for c in frame.columns if c != "label"]
    return frame, Roles(label="label", features=tuple(feats)), {"label": "label", "features": feats}


def measure(row: tuple[str, str, str, float, int, dict[str, Any], str, str]) -> float:
    _, dataset, attack, rate, seed, params, detector, metric = row
    frame, roles, kwargs = _frame(dataset)
    poisoned = simulate(frame, attack, roles, rate=rate, seed=seed, params=params or None)
    rep = from_frame(poisoned.data, **kwargs)
    truth = poisoned.truth.mask()
    if detector == ENSEMBLE:
        report = detect(rep, seed=0)
        if metric == "named":  # 1 when the report's first finding is a trigger quoting the planted one
            top = report.findings[0] if report.findings else None
            quoted = str(top.evidence.get("trigger", "")) if top is not None and top.kind == "trigger" else ""
            return float(quoted.lower() == str(params["trigger"]).lower())
        return float(f1_score(truth, report.flagged, zero_division=0.0))
    load_builtin_detectors()
    result = registry.get(detector)().score(rep, seed=0)
    if metric == "auroc":
        return float(roc_auc_score(truth, result.scores))
    return float(f1_score(truth, result.flagged, zero_division=0.0))


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "sentiment").exists(), reason="needs the shared data sets")
@pytest.mark.parametrize("row", GRID, ids=[r[0] for r in GRID])
def test_no_row_loses_more_than_tolerance(row: tuple[str, str, str, float, int, dict[str, Any], str, str]) -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert row[0] in pinned, f"row {row[0]!r} is not pinned: run this file as a script to pin it"
    got = measure(row)
    assert got >= pinned[row[0]] - TOLERANCE, f"{row[0]}: {got:.3f} < pinned {pinned[row[0]]:.3f} - {TOLERANCE}"


def test_pinned_rows_are_meaningful() -> None:
    """The pins themselves must describe working detectors (a pinned 0 would let everything pass)."""
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert set(pinned) == {r[0] for r in GRID}
    assert min(pinned.values()) >= 0.5 and np.isfinite(list(pinned.values())).all()


if __name__ == "__main__":
    # ``--new``: measure and pin only the rows not pinned yet (the others keep their measured pins)
    old = json.loads(PINNED.read_text(encoding="utf-8")) if "--new" in sys.argv else {}
    values = {row[0]: old[row[0]] if row[0] in old else round(measure(row), 4) for row in GRID}
    PINNED.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    json.dump(values, sys.stdout, indent=2)
