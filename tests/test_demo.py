"""End-to-end: the demo story (make demo) runs to the end and each step shows what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_story_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "DATAWARD_DEMO_DIR": str(tmp_path / "demo"), "COLUMNS": "200"}
    env.pop("DATAWARD_WORKSPACE", None)
    env.pop("DATAWARD_PRINCIPAL", None)
    r = subprocess.run(
        [sys.executable, "-m", "dataward.demo"], env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # the poisoned web delivery: trigger named, policy refuses, batch rejected
    assert "p0 = 16 and p1 = 16 and p8 = 16 and p9 = 16" in out
    assert "policy refuses approval" in out and "rejected (was audited)" in out
    # the clean delivery: two approvers, the acquirer refused, released, trained through dataward.open
    assert "Approval 2 of 2 by bob" in out and "ingrid may not batch.approve" in out
    assert "Version digits@1" in out and "trained on 900 verified records" in out
    assert "Batches are never read directly" in out
    # red team and incident response (when that chapter is installed)
    if "Red-team and respond" in out:
        assert "redteam: FAILED" in out and "redteam PASSED" in out and "traced to batch" in out
    # the log verifies, then an edit of the catalog is caught and named
    assert "column 'principal' was changed ('mallory'" in out
    # one keyring per person, outside the workspace; acting as someone whose key one lacks is refused
    assert "is not in your keyring" in out
    people = tmp_path / "demo" / "people"
    assert sorted(p.name for p in people.iterdir() if p.is_dir()) == sorted(
        ["ada", "ingrid", "sam", "rita", "alice", "bob", "tom", "aldo", "lab-partner"]
    )
    for person in people.iterdir():
        if person.is_dir():
            (key,) = (person / "keyring").iterdir()
            assert key.name.endswith(f".{person.name}.pem") and b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    from private_key_scan import files_with_private_keys

    assert files_with_private_keys(tmp_path / "demo" / "ws", allow_log_key=True) == []
    assert "Demo finished" in out

# `make check` (the quick lane) leaves these out: the whole demo story end to end
pytestmark = pytest.mark.slow
