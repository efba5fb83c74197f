"""Clean real data raise no alarm (issue 15): a fast subset of benchmarks/false_alarms.py.

On every data set: no finding at high or critical, at most 1 % of records flagged at medium or above by
``detect`` and by ``check``, and ``check`` passes (exit 0) with the source licence declared and PII at warn.
The full table (every data set, and ``screen`` in a workspace) is the benchmark's job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_module import load_benchmark  # tests/detect/bench_module.py

from dataward.detect import detect

BENCH = load_benchmark("false_alarms")
HAVE_SHARED = (BENCH.DATA / "sentiment" / "yelp_labelled.txt").exists()
SLOW = pytest.mark.slow


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        # the three longest run in `make test` only (the quick lane keeps wine and uniform)
        pytest.param("yelp", marks=[pytest.mark.skipif(not HAVE_SHARED, reason="shared data not present"), SLOW]),
        pytest.param(
            "templated_text", marks=[pytest.mark.skipif(not HAVE_SHARED, reason="shared data not present"), SLOW]
        ),
        pytest.param("breast_cancer", marks=SLOW),
        "wine",
        "uniform",
        pytest.param("gaussian_classes", marks=SLOW),
    ],
)
def test_clean_data_set_raises_no_alarm(name: str, tmp_path: Path) -> None:
    path, cols = BENCH.DATASETS[name](tmp_path)
    det = BENCH.run_detect(path, cols)
    chk = BENCH.run_check(path, cols)
    for tool, res in (("detect", det), ("check", chk)):
        assert BENCH.RANK.get(res["max_severity"], 0) < BENCH.RANK["high"], (tool, res["findings"])
        assert res["flagged"] <= 0.01, (tool, res["flagged"], res["findings"])
    assert chk["exit"] == 0, chk["findings"]


def test_spectral_signatures_quiet_on_uniform_columns_with_unrelated_labels() -> None:
    # the case: uniform numeric columns, labels unrelated to them; even with the cheap D cut-off
    # switched off, the column-permutation null must keep every class unflagged
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.uniform(0, 1, (1500, 4)), columns=list("abcd"))
    frame["label"] = rng.choice(["x", "y", "z"], 1500)
    report = detect(
        frame, label="label", detectors=["spectral_signatures"], params={"spectral_signatures": {"min_d": 0}}
    )
    result = report.results["spectral_signatures"]
    assert not result.flagged.any() and not result.findings
    assert result.pvalues is not None and result.pvalues.min() == 1.0


def test_spectral_signatures_still_find_a_planted_cluster() -> None:
    # the null must not blind the detector: a tight cluster planted in one class is found, with a p-value
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1500, 6))
    y = rng.choice(["x", "y"], 1500)
    members = np.flatnonzero(y == "x")[:40]
    x[members] += 6.0
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(6)])
    frame["label"] = y
    result = detect(frame, label="label", detectors=["spectral_signatures"]).results["spectral_signatures"]
    assert set(members) <= set(np.flatnonzero(result.flagged))
    assert result.findings and result.findings[0].p_value is not None and result.findings[0].p_value < 1e-3


@pytest.mark.slow
def test_screen_in_a_workspace_raises_no_alarm(tmp_path: Path) -> None:
    """The screen column: `dataward screen B` (acquire into a fresh workspace, default checks, PII at warn)
    on a clean table is quiet, and the batch really went through both engines."""
    path, cols = BENCH.DATASETS["wine"](tmp_path)
    res = BENCH.run_screen(path, cols)
    assert res["n"] == 178
    assert res["checks"]["detection"] == "passed" and res["checks"]["screening"] == "passed", res["checks"]
    assert BENCH.RANK.get(res["max_severity"], 0) < BENCH.RANK["high"], res["findings"]
    assert res["flagged"] <= 0.01, res["findings"]
