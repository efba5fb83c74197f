"""Speed work must not move a finding: the full report on seeded data with planted anomalies is pinned.

``screen_same_report.json`` holds the findings (check, kind, severity, summary, records and evidence, floats
rounded to 9 significant digits) that the code before the speed work gave on :func:`make` with seeds 1 and 2.
Regenerate it only for an intended change of a finding, with the reason in the commit::

    PYTHONPATH=src python tests/screen/test_screen_same_report.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from dataward.screen._rules import _NumericGrid
from dataward.screen.api import check_table, create_baseline
from dataward.screen.baseline import ColumnProfile

PIN = Path(__file__).with_name("screen_same_report.json")
CATS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], dtype=object)


def make(n: int, seed: int, *, planted: bool) -> pa.Table:
    """Six normal floats (one with NaNs and nulls), a Poisson count, a heavy-tailed amount, three strings."""
    r = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"f{i}": r.normal(i, 1 + i / 3, n) for i in range(6)}
    cols["count"] = r.poisson(20, n).astype(np.int64)
    cols["amount"] = np.round(r.lognormal(3, 1.5, n), 2)
    cols["cat"] = r.choice(CATS, n)
    cols["region"] = r.choice(np.array(["north", "south", "east", "west"], dtype=object), n)
    cols["label"] = np.where(r.random(n) < 0.5, "pos", "neg").astype(object)
    f5 = cols["f5"]
    f5[r.random(n) < 0.01] = np.nan
    if planted:
        k = n // 200
        idx = r.permutation(n)
        cols["cat"][idx[:k]] = "omega"  # never-seen category, 0.5%
        cols["f2"][idx[k : 2 * k]] = 2 + 6 * (1 + 2 / 3) + r.normal(0, 0.01, k)  # +6 sigma tight cluster
        cols["f0"][idx[2 * k : 3 * k]] = 40.0  # far beyond the range
        neg = np.flatnonzero(cols["label"] == "neg")
        cols["label"][neg[: int(0.02 * n)]] = "pos"  # 2% label shift
    table = pa.table(cols)
    mask = pa.array(r.random(n) < 0.002)
    return table.set_column(1, "f1", pa.compute.if_else(mask, pa.scalar(None, pa.float64()), table["f1"]))


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def findings(n: int = 40_000) -> list[dict[str, Any]]:
    """The report's findings on the seeded data, in report order, JSON-ready and rounded."""
    bl = create_baseline(make(n, 1, planted=False), label="label")
    rep = check_table(make(n, 2, planted=True), baseline=bl)
    out = []
    for f in rep.findings:
        out.append(_round(json.loads(json.dumps(f.to_dict(), default=str))))
    return out


@pytest.mark.slow
def test_report_is_the_pinned_one() -> None:
    got = findings()
    want = json.loads(PIN.read_text())
    assert [(f["check"], f["kind"]) for f in got] == [(f["check"], f["kind"]) for f in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, (g["check"], g["kind"])
    kinds = {(f["kind"], f["evidence"].get("column")) for f in got}
    assert ("unseen_category", "cat") in kinds and ("tight_cluster", "f2") in kinds
    assert any(k == "label_shift" for k, _ in kinds)


@pytest.mark.parametrize(
    "kind", ["normal", "lognormal", "integers", "offset", "uniform", "spike", "few", "tiny"]
)
def test_lookup_cells_equal_the_binary_search(kind: str) -> None:
    r = np.random.default_rng(7)
    sample, x = {
        "normal": (r.normal(2, 1.7, 10_000), r.normal(2, 1.7, 50_000)),
        "lognormal": (r.lognormal(0, 2, 10_000), r.lognormal(0, 2, 50_000)),
        "integers": (r.poisson(200, 10_000).astype(float), r.poisson(200, 50_000).astype(float)),
        "offset": (1e6 + r.normal(0, 1e-4, 10_000), 1e6 + r.normal(0, 1e-4, 50_000)),
        "uniform": (r.uniform(-1, 1, 10_000), r.uniform(-1.2, 1.2, 50_000)),
        "spike": (np.r_[r.normal(0, 1, 9000), np.full(1000, 3.0)], np.r_[r.normal(0, 1, 40_000), np.full(10_000, 3.0)]),
        "few": (r.normal(0, 1, 300), r.normal(0, 1, 50_000)),
        "tiny": (r.normal(0, 1e-300, 10_000), r.normal(0, 1e-300, 50_000)),
    }[kind]
    col = ColumnProfile("x", "double", "numeric", min=float(sample.min()), max=float(sample.max()))
    g = _NumericGrid(np.sort(sample), col)
    probes = [x, sample, g.q, np.nextafter(g.q, -np.inf), np.nextafter(g.q, np.inf), [-1e308, 1e308, 0.0]]
    if g._table is not None:  # every bucket edge and its neighbours: where rounding could pick the wrong bucket
        e = g._t_lo + np.arange(g._table.size + 1) / g._t_inv
        probes += [e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf)]
    v = np.concatenate(probes)
    assert np.array_equal(g.fast_cells(v), g.cells(v))
    if kind in ("normal", "uniform", "offset"):
        assert g._table is not None  # the fast path is taken where it pays
    if kind in ("lognormal", "integers"):
        assert g._table is None  # most values would take the search anyway


if __name__ == "__main__":
    PIN.write_text(json.dumps(findings(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PIN}")
