"""`check` and `detect` on the executors: the suite is split across workers, the report is the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from dataward.cli import main
from dataward.detect.api import detect
from dataward.scale._local import LocalExecutor
from dataward.scale.interface import Executor
from dataward.scale.processes import ProcessExecutor
from dataward.scale.runs import CHECK_COST, check_on, deal, detect_on
from dataward.screen import registry
from dataward.screen.api import check_path, create_baseline


def _timeless(value: Any) -> Any:
    """A report without its timings (wall seconds differ from run to run)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("seconds", "per_check_s")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _data(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    n = 3000

    def frame(planted: bool) -> pd.DataFrame:
        f = pd.DataFrame(
            {
                "x": rng.normal(0, 1, n),
                "y": rng.normal(5, 2, n),
                "count": rng.poisson(4, n),
                "cat": rng.choice(["a", "b", "c"], n),
                "text": rng.choice(["good film", "bad plot", "fine acting", "call me at bob@example.com"], n),
                "label": rng.choice(["pos", "neg"], n),
            }
        )
        if planted:
            f.loc[:30, "cat"] = "zz"
            f.loc[40:80, "x"] = 9.0
            f.loc[100:140, ["text", "label"]] = ["free money cf", "pos"]
        return f

    ref, batch = tmp_path / "ref.csv", tmp_path / "batch.csv"
    frame(False).to_csv(ref, index=False)
    frame(True).to_csv(batch, index=False)
    return ref, batch


@pytest.mark.slow
def test_check_split_across_executors_equals_one_process(tmp_path: Path, dask_executor: Executor) -> None:
    ref, batch = _data(tmp_path)
    bl_path = tmp_path / "bl.json"
    bl_path.write_bytes(create_baseline(ref, label="label", text="text").to_json())
    opts: dict[str, Any] = {"baseline": str(bl_path), "label": "label", "text": ("text",)}
    single = check_path(batch, **opts).to_dict()
    kinds = {f["kind"] for r in single["results"] for f in r["findings"]}
    assert {"unseen_category", "pii"} & kinds, kinds  # the planted problems are found at all
    for ex in (LocalExecutor(), ProcessExecutor(2), dask_executor):
        got = check_on(ex, str(batch), **opts)
        assert _timeless(got.to_dict()) == _timeless(single), ex.name
        assert [r.check for r in got.results] == [r["check"] for r in single["results"]]
    subset = check_on(ProcessExecutor(2), str(batch), checks=["range", "new_values", "schema"], **opts)
    assert [r.check for r in subset.results] == ["range", "new_values", "schema"]
    assert _timeless(subset.to_dict()) == _timeless(
        check_path(batch, checks=["range", "new_values", "schema"], **opts).to_dict()
    )


@pytest.mark.slow
def test_check_cli_executor_flag_and_workspace_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, batch = _data(tmp_path)
    bl = tmp_path / "bl.json"
    assert main(["baseline", "create", str(ref), "--label", "label", "--out", str(bl)]) == 0
    capsys.readouterr()
    base = ["-w", str(tmp_path), "check", str(batch), "--baseline", str(bl), "--json", "--fail-on", "critical"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*base, "--executor", "processes", "--workers", "2"]) == 0
    assert _timeless(json.loads(capsys.readouterr().out)) == _timeless(plain)
    (tmp_path / "dataward.toml").write_text('executor = "local"\n', encoding="utf-8")
    assert main(base) == 0
    assert _timeless(json.loads(capsys.readouterr().out)) == _timeless(plain)
    (tmp_path / "dataward.toml").write_text('executor = "cluster"\n', encoding="utf-8")
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "dataward.toml" in err and "'cluster'" in err


@pytest.mark.slow
def test_detect_split_across_executors_equals_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dask_executor: Executor
) -> None:
    # breast_cancer with 5 % flipped labels: enough records for the label-noise test to find them (on wine's
    # 178 records it has little power), so the reports compared below are not empty
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    flipped = np.random.default_rng(0).choice(len(frame), 28, replace=False)
    frame.loc[flipped, "label"] = 1 - frame.loc[flipped, "label"]
    path = tmp_path / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    single = detect(path, label="label", seed=1).to_json()
    assert single["n_records"] == 569 and any(r["flagged"] for r in single["records"])
    assert len(single["detectors"]) >= 3
    for ex in (LocalExecutor(), ProcessExecutor(2), dask_executor):
        got = detect_on(ex, str(path), label="label", seed=1).to_json()
        assert _timeless(got) == _timeless(single), ex.name
    assert main(["-w", str(tmp_path), "detect", str(path), "--label", "label", "--seed", "1", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    argv = ["-w", str(tmp_path), "detect", str(path), "--label", "label", "--seed", "1", "--json"]
    assert main([*argv, "--executor", "processes"]) == 0
    assert _timeless(json.loads(capsys.readouterr().out)) == _timeless(plain)


@pytest.mark.slow
def test_bad_input_on_an_executor_is_the_same_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3\n")
    assert main(["check", str(bad), "--quiet"]) == main(["check", str(bad), "--quiet", "--executor", "processes"])
    capsys.readouterr()
    for argv in (["check", str(tmp_path / "missing.csv")], ["detect", str(tmp_path / "missing.csv")]):
        code_plain = main(argv)
        err_plain = capsys.readouterr().err
        code_split = main([*argv, "--executor", "processes"])
        err_split = capsys.readouterr().err
        assert code_plain == code_split != 0 and err_plain.splitlines()[0] == err_split.splitlines()[0]


@given(n=st.integers(1, 15), groups=st.integers(1, 6))
def test_deal_covers_every_check_once_in_suite_order(n: int, groups: int) -> None:
    names = [c.name for c in registry.default_checks()][:n]
    dealt = deal(names, groups, CHECK_COST)
    assert sorted(x for g in dealt for x in g) == sorted(names)
    assert len(dealt) == min(groups, len(names))
    for g in dealt:
        assert g == sorted(g, key=names.index)


def test_batch_profile_is_built_only_for_the_checks_that_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataward.screen.baseline import ProfileBuilder

    ref, batch = _data(tmp_path)
    bl = create_baseline(ref, label="label")
    with_profile = check_path(batch, baseline=bl, checks=["drift", "tails"]).to_dict()

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("profile builder called")

    monkeypatch.setattr(ProfileBuilder, "update", broken)
    # tails alone does not read the batch profile: no builder, no error finding
    alone = check_path(batch, baseline=bl, checks=["tails"]).to_dict()
    assert _timeless(alone["results"][0]) == _timeless(with_profile["results"][1])
    # drift reads it: the failure to build it is reported, never hidden
    report = check_path(batch, baseline=bl, checks=["drift", "schema"])
    assert any("batch profile could not be built" in f.summary for f in report.findings)
    checks = [c for c in registry.default_checks() if not c.needs_batch_profile]
    assert {c.name for c in checks} >= {"tails", "outliers", "duplicates", "pii"}
    assert all(c.needs_batch_profile for c in registry.default_checks() if c.name in ("drift", "labels", "schema"))
