"""The Python API: detect() on every modality, the report contract, the simulator's file round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

import dataward
from dataward.detect import DetectionError, detect, from_frame
from dataward.detect.interface import Modality
from dataward.simulate import Roles, attack_names, simulate
from dataward.simulate.bench import auroc, bench_report
from dataward.simulate.io import simulate_file


def test_public_api_exports_detect() -> None:
    import dataward.detect as package

    assert "detect_poison" in dataward.__all__
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    report = dataward.detect_poison(frame, label="label", detectors=["near_duplicates"])
    assert report.n_records == len(frame)
    assert dataward.detect is package  # the package, in every import order
    # the former spelling still works, with a deprecation warning naming the new one
    with pytest.warns(DeprecationWarning, match="detect_poison"):
        old = dataward.detect(frame, label="label", detectors=["near_duplicates"])  # type: ignore[operator]
    assert old.n_records == len(frame)
    from dataward import detect_poison

    assert detect_poison is package.detect


def test_every_attack_is_listed() -> None:
    assert set(attack_names()) >= {
        "label_flip",
        "targeted_flip",
        "badnets",
        "blended",
        "feature_shift",
        "clean_label",
        "dup_flood",
        "tabular_trigger",
    }


@pytest.mark.slow
def test_report_contract_and_determinism() -> None:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.1, seed=7)
    a = detect(poisoned.data, label="label", seed=3)
    b = detect(poisoned.data, label="label", seed=3)
    ja, jb = a.to_json(), b.to_json()
    for payload in (ja, jb):
        payload.pop("seconds")
        for d in payload["detectors"]:
            d.pop("seconds")
            d["params"].pop("seconds", None)
        for r in payload["results"]:  # the same runs in check's shape: timings differ, nothing else
            r.pop("seconds")
            r["stats"].pop("seconds", None)
    assert ja == jb
    assert set(ja) >= {"n_records", "records", "findings", "detectors"}
    json.dumps(ja, allow_nan=False)
    sev = [f["evidence"]["score"] for f in ja["findings"]]  # the detector's 0..1 severity
    assert sev == sorted(sev, reverse=True)
    assert all(0 <= r["score"] <= 1 for r in ja["records"])
    assert all(r["flagged"] == (r["score"] >= ja["threshold"]) for r in ja["records"])
    scores = bench_report(a, poisoned.truth)
    # every flip found; precision 0.90 on this seed (0.72 while a feature_residuals excess on class 1's
    # flavanoids held five natural records beside one flip, before its label-noise view, ADR 0084)
    assert scores[0].name == "ensemble" and scores[0].recall == 1.0 and scores[0].f1 >= 0.9
    by_name = {s.name: s for s in scores}
    assert by_name["label_issues"].f1 >= 0.85
    assert "flagged" in a.summary()


@pytest.mark.slow
def test_clean_breast_cancer_false_alarms_low() -> None:
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    report = detect(frame, label="label")
    assert report.n_flagged <= 0.015 * len(frame)


@pytest.mark.slow
def test_tabular_trigger_is_named() -> None:
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    result = simulate(frame, "tabular_trigger", Roles(label="label"), rate=0.03, seed=2, target="1")
    report = detect(result.data, label="label", detectors=["tabular_shortcuts"])
    top = report.findings[0]
    feature = result.truth.params["feature"]
    assert top.kind == "trigger" and feature in top.evidence["trigger"]
    assert set(top.records) == set(result.truth.changed)


@pytest.mark.slow
def test_feature_shift_and_dup_flood_are_found() -> None:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    shifted = simulate(frame, "feature_shift", Roles(label="label"), rate=0.05, seed=1, params={"shift": 8})
    rep = detect(shifted.data, label="label")
    assert auroc(rep.results["class_outliers"].scores, shifted.truth.mask()) > 0.9  # type: ignore[operator]
    flood = simulate(frame, "dup_flood", Roles(label="label"), rate=0.05, seed=1, params={"sources": 1})
    assert len(flood.data) == len(frame) + 9
    rep = detect(flood.data, label="label")
    dup = rep.results["near_duplicates"]
    assert set(np.flatnonzero(dup.flagged)) == set(flood.truth.changed)
    assert any(f.kind == "duplicate_cluster" and "flood" in f.summary for f in rep.findings)


@pytest.mark.slow
def test_clean_label_attack_keeps_labels_and_ranks_above_chance() -> None:
    x, y = load_digits(return_X_y=True)
    frame = pd.DataFrame({"image": [np.rint(r.reshape(8, 8) * 255 / 16).astype(np.uint8) for r in x], "label": y})
    result = simulate(frame, "clean_label", Roles(label="label", image="image"), rate=0.03, seed=0, target="3")
    assert (result.data["label"] == frame["label"]).all()
    changed = list(result.truth.changed)
    assert (frame["label"].iloc[changed] == 3).all()
    report = detect(result.data, label="label", image="image", detectors=["label_issues"])
    value = auroc(report.results["label_issues"].scores, result.truth.mask())
    assert value is not None and value > 0.7


def test_text_and_instruction_frames() -> None:
    texts = [f"review {i} {'good great' if i % 2 else 'bad awful'} film" for i in range(120)]
    rep = from_frame(pd.DataFrame({"text": texts, "label": [i % 2 for i in range(120)]}))
    assert rep.modality is Modality.TEXT and rep.texts is not None and rep.features.shape[0] == 120
    report = detect(pd.DataFrame({"text": texts, "label": [i % 2 for i in range(120)]}))
    assert report.n_records == 120
    chat = pd.DataFrame(
        {"prompt": [f"q{i} about cats" for i in range(30)], "response": [f"a{i} on cats" for i in range(30)]}
    )
    rep2 = from_frame(chat)
    assert rep2.modality is Modality.INSTRUCTION and rep2.labels is None
    assert rep2.prompts is not None and rep2.prompts[3] == "q3 about cats"
    with pytest.raises(DetectionError):
        from_frame(chat, prompt="prompt")  # --prompt without --response


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_simulate_file_round_trip(tmp_path: Path, fmt: str) -> None:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    src = tmp_path / f"wine.{fmt}"
    if fmt == "csv":
        frame.to_csv(src, index=False)
    elif fmt == "jsonl":
        frame.to_json(src, orient="records", lines=True)
    else:
        frame.to_parquet(src)
    data_path, truth = simulate_file(src, "targeted_flip", tmp_path / "out", rate=0.05, target="2", seed=1)
    assert data_path.name == f"wine.{fmt}"
    report = detect(data_path, label="label")
    assert report.n_records == truth.n_records == len(frame)
    flagged = set(np.flatnonzero(report.flagged))
    assert len(flagged & set(truth.changed)) >= 0.6 * len(truth.changed)


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_activation_clustering_is_opt_in() -> None:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    default = detect(frame, label="label")
    assert "activation_clustering" not in default.results
    chosen = detect(frame, label="label", detectors=["activation_clustering"])
    assert chosen.results["activation_clustering"].skipped is None
    assert chosen.n_flagged <= 0.05 * len(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1.0, 2.0], "label": ["x", "y"]}),
        pd.DataFrame({"image": [np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8)], "label": ["x", "y"]}),
        pd.DataFrame({"c": ["r", "g", "b"] * 10, "label": ["x", "y"] * 15}),
        pd.DataFrame({"a": np.arange(50.0), "label": ["x"] * 49 + ["y"]}),
    ],
    ids=["two-records", "two-images", "categorical-only", "one-record-class"],
)
def test_tiny_or_uninformative_data_raises_no_alarm(frame: pd.DataFrame) -> None:
    report = detect(frame)
    assert report.n_flagged == 0


def test_texts_without_words_are_a_clear_error() -> None:
    with pytest.raises(DetectionError, match="contain no words"):
        detect(pd.DataFrame({"text": ["!!", "??", "..", "!!"], "label": ["x", "y", "x", "y"]}))
