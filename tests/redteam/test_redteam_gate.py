"""The gate's three parts on text and image-shaped models, and the CI reports (JUnit XML, SARIF 2.1.0, Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataward.incident.demo_chapter import synthetic_reviews
from dataward.redteam import _triggers as trig
from dataward.redteam._gate import RedteamReport, run_gate
from dataward.redteam.data import infer_columns
from dataward.redteam.formats import junit_xml, markdown, sarif, write_outputs
from dataward.redteam.models import CallableModel, load_model

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "data" / "sarif-schema-2.1.0.json"


def _text_report(name: str, previous: dict[str, Any] | None = None, drop: float = 0.05) -> RedteamReport:
    data = synthetic_reviews(240, 5)
    cols = infer_columns(data)
    model = load_model(f"{HERE / 'rt_models.py'}:{name}")
    th = {"sample": 200, "max_accuracy_drop": drop}
    return run_gate(model, data, cols, trig.builtin(cols), thresholds=th, previous=previous)


def test_text_backdoor_fails_on_its_trigger_only() -> None:
    bad = _text_report("backdoored")
    assert not bad.passed
    assert [c.name for c in bad.failures] == ["trigger token:cf"]
    cf = bad.failures[0]
    assert cf.details["target"] == "pos" and cf.details["asr"] > 0.9 and cf.details["control"] < 0.05
    assert cf.details["examples"] and " cf" in f" {cf.details['examples'][0]['triggered']}"
    good = _text_report("clean")
    assert good.passed, [c.message for c in good.failures]
    assert good.accuracy is not None and good.accuracy > 0.8
    assert set(good.curves) == {"typos", "casing", "char_swaps"}
    assert all(p["strength"] == s for p, s in zip(good.curves["typos"], (0.0, 0.05, 0.1, 0.2, 0.4), strict=True))


def test_previous_model_comparison_fails_on_a_drop() -> None:
    rep = _text_report("clean", previous={"sha256": "ab" * 32, "accuracy": 1.0}, drop=0.01)
    prev = [c for c in rep.checks if c.name == "consistency previous-model"]
    assert prev and prev[0].passed is False and "drop" in prev[0].message
    same = _text_report("clean", previous={"sha256": "ab" * 32, "accuracy": rep.accuracy}, drop=0.01)
    assert [c.passed for c in same.checks if c.name == "consistency previous-model"] == [True]


def _digits() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    cols = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(d.data, columns=cols)
    frame["label"] = [str(v) for v in d.target]
    return frame, cols


def test_image_patch_trigger_found_on_a_badnets_model() -> None:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    frame, names = _digits()
    frame = frame.iloc[:900].reset_index(drop=True)
    x, y = frame[names].to_numpy(), frame["label"].to_numpy().copy()
    rng = np.random.default_rng(0)
    poisoned = rng.choice(np.flatnonzero(y != "0"), 80, replace=False)
    xp = x.copy()
    img = xp.reshape(-1, 8, 8)
    img[poisoned, 6:8, 6:8] = 16.0  # a 2x2 patch, bottom right, relabelled 0
    y[poisoned] = "0"
    with threadpool_limits(limits=1):  # many BLAS threads on a loaded machine cost more than they give
        lr = LogisticRegression(max_iter=200).fit(xp / 16.0, y)
    model = CallableModel("digits-badnets", fn=lambda b: lr.predict(np.asarray(b) / 16.0))
    cols = infer_columns(frame, label="label", features=tuple(names))
    assert cols.image_side == 8
    rep = run_gate(model, frame, cols, trig.builtin(cols, x), thresholds={"sample": 300})
    failed = {c.name: c for c in rep.failures if c.category == "trigger"}
    assert "trigger patch:2x2 bottom-right" in failed, [c.message for c in rep.checks if c.category == "trigger"]
    assert failed["trigger patch:2x2 bottom-right"].details["target"] == "0"
    assert {"noise", "scaling", "missing_values", "blur", "brightness"} <= set(rep.curves)


def test_junit_xml_parses_and_counts() -> None:
    junitparser = pytest.importorskip("junitparser")
    rep = _text_report("backdoored")
    xml = junitparser.JUnitXml.fromstring(junit_xml(rep))
    suites = list(xml)
    assert [s.name for s in suites] == ["redteam.trigger", "redteam.shift", "redteam.consistency"]
    assert sum(s.tests for s in suites) == len(rep.checks)
    assert sum(s.failures for s in suites) == 1
    failed = [c for s in suites for c in s if not c.is_passed]
    assert [c.name for c in failed] == ["trigger token:cf"]


def test_sarif_validates_against_the_2_1_0_schema(tmp_path: Path) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    for name in ("backdoored", "clean"):
        rep = _text_report(name)
        doc = sarif(rep)
        jsonschema.Draft4Validator(schema).validate(doc)
        results = doc["runs"][0]["results"]
        assert len(results) == len(rep.checks)
        assert [r["ruleId"] for r in results if r["kind"] == "fail"] == (["DW-RT001"] if name == "backdoored" else [])
    bad = sarif(_text_report("backdoored"))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(bad)
    paths = write_outputs(rep, tmp_path / "out")
    assert json.loads(Path(paths["sarif"]).read_text())["version"] == "2.1.0"
    assert "## Triggers" in markdown(rep) and Path(paths["markdown"]).is_file()

# `make check` (the quick lane) leaves these out: trains models
pytestmark = pytest.mark.slow
