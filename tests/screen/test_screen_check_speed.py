"""The speed work on the screening checks (docs/adr/0077-screening-check-speed.md) moves no result.

Each test runs the check as it is and, in the same process, with the code it replaced (kept here as the
reference), on seeded frames with planted outliers, NaNs, infinities, nulls, a missing column and batches of
unequal sizes; the reports must be equal to the last bit.
"""

from __future__ import annotations

import heapq
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from dataward.screen import _outliers
from dataward.screen._util import as_float
from dataward.screen.api import check_table, create_baseline


def _old_outliers_update(self: Any, batch: pa.RecordBatch, offset: int) -> None:
    """``OutliersCheck.update`` before the speed work: a row-major matrix, a Python loop over the candidates."""
    if self._skip:
        return
    if self._cols is None:
        self._cols = self._choose(batch)
        if len(self._cols) < 2:
            self._skip = "fewer than two numeric columns"
            return
        self._fit(batch)
        if self._skip:
            return
    z = np.empty((batch.num_rows, len(self._cols)), dtype=np.float32)
    shift = self._center + self._loc * self._scale
    with np.errstate(invalid="ignore", over="ignore"):
        for j, c in enumerate(self._cols):
            col = as_float(batch.column(c)) if c in batch.schema.names else np.full(batch.num_rows, np.nan)
            z[:, j] = (col - shift[j]) / self._scale[j]
    if not np.isfinite(z).all():
        np.nan_to_num(z, copy=False, nan=0.0, posinf=1e6, neginf=-1e6)
    d2 = ((z @ self._prec32) * z).sum(axis=1, dtype=np.float64)
    self._hist += np.bincount(np.searchsorted(self._score_edges, d2, side="right"), minlength=22)[1:21]
    out = np.flatnonzero(d2 > self._threshold)
    self._count += out.size
    for i in out[np.argsort(-d2[out])][:2000].tolist():
        item = (float(d2[i]), offset + i, int(np.argmax(np.abs(z[i]))))
        if len(self._heap) < 2000:
            heapq.heappush(self._heap, item)
        elif item[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)


def frame(n: int, seed: int, *, dirty: bool, dims: int = 6) -> pa.Table:
    """Normal floats with a planted far cluster and scattered outliers; ``dirty`` adds NaN, inf and nulls."""
    r = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"x{i}": r.normal(i, 1 + i / 4, n) for i in range(dims)}
    cols["k"] = r.poisson(12, n).astype(np.int64)
    idx = r.permutation(n)
    cols["x1"][idx[: n // 100]] = 30 + r.normal(0, 0.01, n // 100)
    cols["x2"][idx[n // 100 : n // 50]] *= 25
    cols["label"] = np.where(r.random(n) < 0.5, "a", "b").astype(object)
    table = pa.table(cols)
    if dirty:
        x3 = cols["x3"].copy()
        x3[r.random(n) < 0.01] = np.nan
        x3[r.random(n) < 0.001] = np.inf
        x3[r.random(n) < 0.001] = -np.inf
        x3[:3] = 1e300  # overflows float32
        table = table.set_column(3, "x3", pa.array(x3, mask=r.random(n) < 0.01))
    return table


def _batches(table: pa.Table, sizes: list[int]) -> pa.Table:
    out, start = [], 0
    for size in sizes:
        out.extend(table.slice(start, size).to_batches())
        start += size
    out.extend(table.slice(start).to_batches())
    return pa.Table.from_batches(out)


def _report(table: pa.Table, baseline: Any, checks: list[str]) -> str:
    rep = check_table(table, baseline=baseline, checks=checks)
    return json.dumps([{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in rep.results], sort_keys=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dirty", [False, True])
@pytest.mark.parametrize("with_baseline", [False, True])
def test_outliers_are_the_same_as_before(
    monkeypatch: pytest.MonkeyPatch, seed: int, dirty: bool, with_baseline: bool
) -> None:
    ref = frame(30_000, seed, dirty=dirty)
    batch = _batches(frame(90_000, seed + 50, dirty=dirty), [40_000, 1, 17_000])
    if dirty:
        batch = batch.drop(["x5"])  # a column of the baseline missing from the batch
    baseline = create_baseline(ref, label="label") if with_baseline else None
    new = _report(batch, baseline, ["outliers"])
    monkeypatch.setattr(_outliers.OutliersCheck, "update", _old_outliers_update)
    old = _report(batch, baseline, ["outliers"])
    assert new == old
    assert '"multivariate_outliers"' in new  # the planted cluster is found: the comparison is not of two empties


def test_the_heap_keeps_the_2000_farthest_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """More candidates than the heap holds, in several batches: the early stop must not change what is kept."""
    table = frame(60_000, 9, dirty=False)
    x = table.column("x0").to_numpy().copy()
    x[::7] = np.random.default_rng(4).normal(0, 40, x[::7].size)  # ~8,500 far records
    table = _batches(table.set_column(0, "x0", pa.array(x)), [15_000, 15_000, 15_000])
    baseline = create_baseline(frame(20_000, 10, dirty=False), label="label")
    new = _report(table, baseline, ["outliers"])
    monkeypatch.setattr(_outliers.OutliersCheck, "update", _old_outliers_update)
    assert new == _report(table, baseline, ["outliers"])
