"""What a red-team run hands the CLI beside its report is a frozen value whose JSON keeps the keys
`dataward redteam --json` printed before (issue #13: no dict crosses a package boundary)."""

from __future__ import annotations

import dataclasses

import pytest

from dataward.incident.api import Resolution
from dataward.redteam.api import ModelLineage, RedteamRecord
from dataward.store.redteam_repo import RedteamResultRow


def test_an_unrecorded_run_says_so_and_names_no_result() -> None:
    rec = RedteamRecord(("builtin: 3",), None, "given")
    assert not rec.recorded
    assert rec.to_json() == {
        "trigger_sources": ["builtin: 3"],
        "lineage": None,
        "clean_set": "given",
        "recorded": False,
    }


def test_a_recorded_run_names_its_result_and_attestation() -> None:
    row = RedteamResultRow("r-1", "a" * 64, "m.onnx", "train@2", False, 0.91, 2, "tom", "t0", "d" * 64)
    lineage = ModelLineage("a" * 64, "run-7", "train@2", ())
    rec = RedteamRecord(("builtin: 3", "intel f: 1"), lineage, "given", row)
    got = rec.to_json()
    assert rec.recorded and got["recorded"] is True
    assert got["result"] == "r-1" and got["attestation"] == "d" * 64
    assert got["lineage"] == {"run": "run-7", "version": "train@2"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.clean_set = "x"  # type: ignore[misc]


def test_a_resolution_dry_run_and_applied_keep_their_json() -> None:
    plan = {"rollbacks": [{"dataset": "train", "without": ["b-1"]}], "retrain": []}
    dry = Resolution("i-1", False, plan)
    assert dry.to_json() == {"incident": "i-1", "applied": False, "plan": plan, "versions": [], "revoked": []}
    done = Resolution("i-1", True, plan, ("train@3",), ("b-1",))
    assert done.to_json()["versions"] == ["train@3"] and done.to_json()["revoked"] == ["b-1"]
