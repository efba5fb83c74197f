"""``dataward doctor`` finds, and with --fix removes, unreferenced objects and stale temporary files only."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.errors import AuthorizationError
from dataward.log.query import show_entries
from dataward.log.verify import verify_log
from dataward.maintenance import collect_garbage

HOUR = 3600


def _age_everything(root: Path, seconds: float) -> None:
    """Make every file in the store look old, so only references (not the grace period) protect them."""
    old = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def planted(env: Any) -> dict[str, Any]:
    batches = []
    for i in range(2):
        p = env.path / f"d{i}.csv"
        p.write_bytes(f"a,b\n{i},x\n".encode())
        batches.append(acquire(env.ws, env.ingester, "vendor", [p]).id)
    root = Path(env.ws.objects.root)
    stray = env.ws.objects.put_bytes("quarantine", b"nobody names me\n")
    (root / "incoming").mkdir(exist_ok=True)
    stale = root / "incoming" / "stale-temp"
    stale.write_bytes(b"half written")
    _age_everything(root, 2 * HOUR)
    fresh = root / "incoming" / "fresh-temp"
    fresh.write_bytes(b"a running command is writing this")
    return {"batches": batches, "stray": stray, "stale": stale, "fresh": fresh, "root": root}


@pytest.mark.slow
def test_doctor_reports_only_the_planted_garbage(env: Any, planted: dict[str, Any]) -> None:
    report = collect_garbage(env.ws, None)
    assert report["unreferenced_objects"] == [f"quarantine/{planted['stray']}"]
    assert report["stale_temp_files"] == ["incoming/stale-temp"]
    assert report["removed"] is False
    assert env.ws.objects.exists("quarantine", planted["stray"]) and planted["stale"].exists()
    # a grace longer than their age protects even unreferenced files
    assert collect_garbage(env.ws, None, grace_seconds=3 * HOUR)["unreferenced_objects"] == []


def test_doctor_fix_removes_garbage_keeps_everything_referenced(
    env: Any, planted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(planted["root"])
    assert env.cli("doctor", "--fix", "--json", principal="admin") == 0
    out = json.loads(capsys.readouterr().out)["storage"]
    assert out["removed"] is True and len(out["unreferenced_objects"]) == 1 and len(out["stale_temp_files"]) == 1
    after = _files(planted["root"])
    assert before - after == {f"quarantine/{planted['stray'][:2]}/{planted['stray']}", "incoming/stale-temp"}
    assert planted["fresh"].exists()
    for b in list_batches(env.ws):
        assert verify_batch(env.ws, b.id).ok, b.id
    assert verify_log(env.ws).ok
    entry = show_entries(env.ws, action="workspace.doctor")[0]
    assert entry.details["objects_removed"] == 1 and entry.details["temp_files_removed"] == 1
    # idempotent: nothing left to find
    again = collect_garbage(env.ws, None)
    assert again["unreferenced_objects"] == [] and again["stale_temp_files"] == []


def test_doctor_fix_is_admin_only(env: Any, planted: dict[str, Any]) -> None:
    with pytest.raises(AuthorizationError):
        collect_garbage(env.ws, env.ingester, fix=True)
    assert env.ws.objects.exists("quarantine", planted["stray"])


@pytest.mark.slow
def test_a_batch_object_younger_than_the_grace_is_kept_even_unreferenced(env: Any, planted: dict[str, Any]) -> None:
    young = env.ws.objects.put_bytes("quarantine", b"published, batch not committed yet\n")
    report = collect_garbage(env.ws, None)
    assert f"quarantine/{young}" not in report["unreferenced_objects"]
    assert f"quarantine/{young}" in collect_garbage(env.ws, None, grace_seconds=0)["unreferenced_objects"]
