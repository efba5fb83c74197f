"""Screening on threads (ADR 0104): the report does not depend on how many threads ran the checks.

Each case screens the same multi-batch input with one thread and with several, and compares the whole
report (every finding, record list, statistic and skip reason; the timings aside). The pool's helpers are
attacked directly: order, errors, closing, re-entry, and a fork after the pool started.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataward.records import readers
from dataward.screen import _parallel, registry
from dataward.screen.api import check_path, create_baseline
from dataward.screen.interface import Check, CheckResult

sys.path.insert(0, str(Path(__file__).parent))
from test_screen_same_report import make


def _report(path: Path, ref: Path, threads: int, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> dict[str, Any]:
    monkeypatch.setenv("DATAWARD_SCREEN_THREADS", str(threads))
    bl = create_baseline(ref, label="label")
    out = check_path(path, baseline=bl, **kw).to_dict()
    out.pop("seconds")
    out["params"].pop("baseline")  # its digest covers the creation time
    for r in out["results"]:
        r.pop("seconds", None)
    profile = bl.to_dict()
    profile.pop("created")
    return {"baseline": profile, "report": out}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("threads")
    ref, batch = d / "ref.parquet", d / "batch.parquet"
    pq.write_table(make(30_000, 1, planted=False), ref, row_group_size=8_192)
    # row groups of two batches (the batch size is cut to 4,096 below): eight batches, so reading ahead and the
    # pool both work, and the dictionary columns are handed over as Parquet codes
    pq.write_table(make(30_000, 2, planted=True), batch, row_group_size=8_192)
    return ref, batch


@pytest.mark.parametrize(
    "threads", [2, pytest.param(3, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)]
)
def test_the_report_is_the_one_thread_report(
    files: tuple[Path, Path], threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, batch = files
    monkeypatch.setattr(readers, "BATCH_ROWS", 4_096)
    one = _report(batch, ref, 1, monkeypatch)
    many = _report(batch, ref, threads, monkeypatch)
    assert one["report"]["n_records"] == 30_000
    assert sum(len(r["findings"]) for r in one["report"]["results"]) > 0  # planted anomalies are found
    assert json.dumps(many, sort_keys=True) == json.dumps(one, sort_keys=True)


class _Crashes(Check):
    """A third-party check that fails on its third batch and records the thread each hook ran on."""

    name = "crashes_on_third"
    needs_batch_profile = False
    threads_seen: ClassVar[set[str]] = set()

    def begin(self, ctx: Any) -> None:
        super().begin(ctx)
        self.n = 0

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        type(self).threads_seen.add(threading.current_thread().name)
        self.n += 1
        if self.n == 3:
            raise RuntimeError("boom on the third batch")

    def finish(self) -> CheckResult:
        return CheckResult(self.name)


def test_a_crash_and_a_third_party_check_are_reported_the_same(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, batch = files
    monkeypatch.setattr(readers, "BATCH_ROWS", 4_096)
    registry.REGISTRY.register(_Crashes)
    try:
        names = ["range", "duplicates", "outliers", _Crashes.name]
        one = _report(batch, ref, 1, monkeypatch, checks=names)
        _Crashes.threads_seen = set()
        many = _report(batch, ref, 4, monkeypatch, checks=names)
    finally:
        registry.REGISTRY.unregister(_Crashes.name)
    assert json.dumps(many, sort_keys=True) == json.dumps(one, sort_keys=True)
    crashed = next(r for r in one["report"]["results"] if r["check"] == _Crashes.name)
    assert "boom on the third batch" in json.dumps(crashed)
    # a check that does not say it is thread-safe stays on the calling thread
    assert _Crashes.threads_seen == {threading.current_thread().name}


def test_run_all_runs_every_task_and_raises_after_all_finished() -> None:
    done: list[int] = []

    def slow() -> None:
        time.sleep(0.05)
        done.append(1)

    def bad() -> None:
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"):
        _parallel.run_all([bad, slow, slow], 3, on_caller=[slow])
    assert done == [1, 1, 1]  # the failure did not leave the slow tasks running behind the caller


def test_read_ahead_keeps_order_raises_in_place_and_closes_the_source() -> None:
    running = threading.Lock()
    closed: list[bool] = []

    def source() -> Iterator[int]:
        try:
            for i in range(6):
                assert running.acquire(blocking=False), "the generator ran on two threads at once"
                time.sleep(0.002)
                running.release()
                if i == 4:
                    raise OSError("disk gone at item 4")
                yield i
        finally:
            closed.append(True)

    got: list[int] = []
    with pytest.raises(OSError, match="item 4"):
        for x in _parallel.read_ahead(source(), 2):
            got.append(x)
            time.sleep(0.003)
    assert got == [0, 1, 2, 3]
    assert closed == [True]

    closed.clear()
    it = _parallel.read_ahead(source(), 2)
    assert isinstance(it, Generator)
    assert next(it) == 0
    it.close()  # the consumer stops early: the step under way finishes, the source is closed
    assert closed == [True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_screens_after_the_parent_started_the_pool(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, batch = files
    monkeypatch.setenv("DATAWARD_SCREEN_THREADS", "2")
    # the parent's pools have threads now (a reader and the checks')
    check_path(batch, baseline=create_baseline(ref, label="label"), checks=["range", "duplicates"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads; screening must still finish
        try:
            rep = check_path(batch, baseline=create_baseline(ref, label="label"), checks=["range", "duplicates"])
            os.write(w, str(rep.n_records).encode())
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the parent's thread pool")
    assert os.read(r, 64) == b"30000"
    os.close(r)


def test_thread_count_comes_from_the_environment_or_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAWARD_SCREEN_THREADS", "3")
    assert _parallel.screen_threads() == 3
    monkeypatch.setenv("DATAWARD_SCREEN_THREADS", "not a number")
    assert _parallel.screen_threads() == 1
    monkeypatch.delenv("DATAWARD_SCREEN_THREADS")
    assert 1 <= _parallel.screen_threads() <= 4
    assert np.all([c.thread_safe for c in registry.default_checks()])  # every built-in check is marked
