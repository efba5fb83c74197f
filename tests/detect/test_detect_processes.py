"""Detectors in two processes: the report is the one-process report, and a failed worker changes nothing."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataward.detect import api, detect


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = [f"{label[0]}{rng.integers(80)}" for _ in range(5)] + [f"w{rng.integers(40)}" for _ in range(3)]
        if label == "neg" and i % 29 == 0:  # a planted single-word trigger: some flags to compare
            words.append("cf")
            label = "pos"
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return pd.DataFrame({"text": texts, "label": labels})


def _forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the forks ``detect`` makes (so that a test of the two-process path cannot pass without it)."""
    calls: list[int] = []
    real = os.fork

    def counting() -> int:
        pid = real()
        if pid != 0:
            calls.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting)
    monkeypatch.setattr(api, "PARALLEL_RECORDS", 0)
    monkeypatch.setattr(api, "_may_fork", lambda n: True)
    return calls


def _same(a: Any, b: Any) -> None:
    assert np.array_equal(a.flagged, b.flagged)
    assert np.allclose(a.scores, b.scores) and np.allclose(a.pvalues, b.pvalues)
    assert [f.summary for f in a.findings] == [f.summary for f in b.findings]
    assert [d["name"] for d in a.detectors] == [d["name"] for d in b.detectors]


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_two_processes_give_the_one_process_report(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame()
    one = detect(frame, label="label", text="text", seed=0)
    calls = _forks(monkeypatch)
    two = detect(frame, label="label", text="text", seed=0)
    assert len(calls) == 1
    assert one.n_flagged > 0
    _same(one, two)


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_a_worker_whose_result_is_refused_is_run_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(seed=1)
    one = detect(frame, label="label", text="text", seed=0)
    calls = _forks(monkeypatch)

    def refusing(_data: bytes) -> Any:
        raise ValueError("refused")

    import dataward.records.sandbox as sandbox

    monkeypatch.setattr(sandbox, "load_values", refusing)
    two = detect(frame, label="label", text="text", seed=0)
    assert len(calls) == 1
    _same(one, two)


def test_small_inputs_and_the_switch_stay_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(api.ENV_PROCESSES, "2")
    assert not api._may_fork(api.PARALLEL_RECORDS - 1)
    monkeypatch.setenv(api.ENV_PROCESSES, "1")
    assert not api._may_fork(10 * api.PARALLEL_RECORDS)
    monkeypatch.delenv(api.ENV_PROCESSES)  # opt-in: without the switch, one process
    assert not api._may_fork(10 * api.PARALLEL_RECORDS)
