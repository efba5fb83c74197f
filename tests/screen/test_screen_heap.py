"""The memory settings of a screening pass (dataward.screen._heap, docs/adr/0077-screening-check-speed.md).

Each test runs in a child interpreter: the settings are process-wide, and the pytest process must keep its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None


def _child(code: str, **env: str) -> dict[str, object]:
    full = {k: v for k, v in os.environ.items() if k != "DATAWARD_KEEP_MALLOC"}
    full.update(PYTHONPATH=SRC, **env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_THP = """
import json
from dataward.screen import _heap
prctl = _heap._prctl()
def state():
    return None if prctl is None else prctl(_heap._PR_GET_THP_DISABLE, 0, 0, 0, 0)
out = {"prctl": prctl is not None, "start": state()}
with _heap.small_pages():
    out["inside"] = state()
    with _heap.small_pages():
        out["nested"] = state()
    out["after_nested"] = state()
out["after"] = state()
if prctl is not None:
    prctl(_heap._PR_SET_THP_DISABLE, 1, 0, 0, 0)
with _heap.small_pages():
    pass
out["kept_off"] = state()
print(json.dumps(out))
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_settle_heap_sets_the_thresholds_once_and_reports_it() -> None:
    out = _child(
        """
        import json
        from dataward.screen import _heap
        first = _heap.settle_heap()
        print(json.dumps({"first": first, "again": _heap.settle_heap(), "state": _heap._state}))
        """
    )
    assert out == {"first": True, "again": True, "state": {"done": True}}


def test_the_opt_out_leaves_the_allocator_alone() -> None:
    out = _child(
        """
        import json
        from dataward.screen import _heap
        calls = []
        _heap._glibc = lambda: calls.append(1)  # must not even be looked up
        print(json.dumps({"done": _heap.settle_heap(), "calls": len(calls)}))
        """,
        DATAWARD_KEEP_MALLOC="1",
    )
    assert out == {"done": False, "calls": 0}
    thp = _child(_THP, DATAWARD_KEEP_MALLOC="1")
    if thp["prctl"]:
        assert thp["start"] == thp["inside"] == thp["after"] == 0


def test_settle_heap_is_a_no_op_without_glibc() -> None:
    out = _child(
        """
        import json
        from dataward.screen import _heap
        _heap._glibc = lambda: None
        print(json.dumps({"done": _heap.settle_heap()}))
        """
    )
    assert out == {"done": False}


def test_small_pages_turns_huge_pages_off_inside_and_restores_the_callers_setting() -> None:
    out = _child(_THP)
    if not out["prctl"]:
        pytest.skip("no prctl here")
    assert out["start"] == 0  # a process starts with transparent huge pages allowed
    assert out["inside"] == 1 and out["nested"] == 1
    assert out["after_nested"] == 1  # the outer block still runs
    assert out["after"] == 0
    assert out["kept_off"] == 1  # a caller who had them off keeps them off


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_a_screening_call_settles_the_heap_and_gives_the_same_report() -> None:
    code = """
        import json
        import numpy as np, pyarrow as pa
        from dataward.screen import _heap
        from dataward.screen.api import check_table, create_baseline
        r = np.random.default_rng(3)
        t = pa.table({"a": r.normal(0, 1, 5000), "b": r.normal(0, 1, 5000), "c": r.choice(["x", "y"], 5000)})
        bl = create_baseline(t)
        rep = check_table(t, baseline=bl)
        print(json.dumps({"state": _heap._state, "findings": [f.to_dict() for f in rep.findings]}))
    """
    settled = _child(code)
    kept = _child(code, DATAWARD_KEEP_MALLOC="1")
    assert settled["state"] == {"done": GLIBC}
    assert kept["state"] == {"done": False}
    assert settled["findings"] == kept["findings"]
