"""Kill `dataward acquire` (os._exit(137), as SIGKILL) at each named point between its steps: the workspace
still verifies, and `doctor --fix --grace 0` leaves nothing unreferenced behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dataward
from dataward.acquire.acquire import CRASH_POINTS, acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.log.verify import verify_log
from dataward.maintenance import collect_garbage

SRC = str(Path(dataward.__file__).resolve().parents[1])


def _acquire_in_subprocess(env: Any, point: str, paths: list[Path]) -> int:
    child_env = {**os.environ, "DATAWARD_CRASH_AT": point, "PYTHONPATH": SRC, "DATAWARD_SANDBOX": "0"}
    cmd = [
        sys.executable,
        "-c",
        "import sys; from dataward.cli import main; sys.exit(main(sys.argv[1:]))",
        "-w",
        str(env.ws.path),
        "--as",
        "ingrid",
        "acquire",
        "vendor",
    ]
    done = subprocess.run([*cmd, *map(str, paths)], env=child_env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 137, done.stderr.decode()[-2000:]
    return done.returncode


@pytest.mark.slow  # long: in `make test`, not in the quick lane (`make check`)
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_each_point_leaves_a_verifiable_workspace_doctor_cleans_up(env: Any, point: str) -> None:
    shared = env.path / "shared.csv"
    shared.write_bytes(b"a,b\n1,2\n")
    earlier = acquire(env.ws, env.ingester, "vendor", [shared])
    fresh = env.path / "fresh.csv"
    fresh.write_bytes(f"a,b\n{point},3\n".encode())
    assert _acquire_in_subprocess(env, point, [shared, fresh]) == 137
    batches = list_batches(env.ws)
    assert len(batches) == (2 if point == "acquire.after-commit" else 1)
    for b in batches:
        assert verify_batch(env.ws, b.id).ok, (point, b.id)
    assert verify_log(env.ws).ok
    left = collect_garbage(env.ws, None, grace_seconds=0)["unreferenced_objects"]
    if point != "acquire.after-commit":  # the crash did leave the fresh file's object: doctor has work to do
        assert left, point
    else:
        assert left == []
    collect_garbage(env.ws, env.admin, grace_seconds=0, fix=True)
    again = collect_garbage(env.ws, None, grace_seconds=0)
    assert again["unreferenced_objects"] == [] and again["stale_temp_files"] == []
    assert verify_batch(env.ws, earlier.id).ok
    for b in list_batches(env.ws):
        assert verify_batch(env.ws, b.id).ok
    assert verify_log(env.ws).ok
