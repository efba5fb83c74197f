"""Baselines and the rules that catch planted anomalies: never-seen values, +6 sigma clusters, label shift."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from dataward.screen.api import check_table, create_baseline
from dataward.screen.baseline import Baseline, ProfileBuilder
from dataward.screen.interface import Severity

N = 40_000


def make(n: int, seed: int) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    return {
        "x": r.normal(0, 1, n),
        "y": r.normal(5, 2, n),
        "cat": r.choice(np.array(["alpha", "beta", "gamma", "delta"], dtype=object), n),
        "label": r.choice(np.array(["pos", "neg"], dtype=object), n),
        "code": np.array([f"AB-{i:04d}" for i in r.integers(0, 9999, n)], dtype=object),
        "grp": r.choice(np.array(["g1", "g2"], dtype=object), n),
    }


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return create_baseline(pa.table(make(N, 1)), label="label", group="grp")


def kinds(report, min_sev: Severity = Severity.MEDIUM) -> set[tuple[str, str]]:
    return {(f.check, f.kind) for f in report.findings if f.severity.rank >= min_sev.rank}


@pytest.mark.slow
def test_clean_batch_has_no_medium_findings(baseline: Baseline) -> None:
    report = check_table(pa.table(make(N, 2)), baseline=baseline, group="grp")
    assert kinds(report) == set(), report.summary()


def test_never_seen_category_at_half_percent(baseline: Baseline) -> None:
    d = make(N, 3)
    k = N // 200
    d["cat"][:k] = "omega"
    report = check_table(pa.table(d), baseline=baseline)
    hits = [f for f in report.findings if f.kind == "unseen_category"]
    assert hits and hits[0].severity == Severity.HIGH
    assert set(hits[0].records) == set(range(k))
    assert hits[0].evidence["column"] == "cat"


def test_six_sigma_cluster_at_half_percent(baseline: Baseline) -> None:
    d = make(N, 4)
    k = N // 200
    rng = np.random.default_rng(9)
    idx = rng.choice(N, k, replace=False)
    d["x"][idx] = 6 + rng.normal(0, 0.01, k)
    report = check_table(pa.table(d), baseline=baseline)
    clusters = [f for f in report.findings if f.kind == "tight_cluster" and f.evidence["column"] == "x"]
    assert clusters and clusters[0].severity == Severity.HIGH
    assert set(idx.tolist()) <= set(clusters[0].records)
    assert any(f.kind == "tail_mass" for f in report.findings)
    # the distribution distances do not move enough to call the column drifted: the rule is what catches it
    assert not any(f.kind == "column_drift" and f.evidence["column"] == "x" for f in report.findings)


def test_in_range_spike_at_half_percent(baseline: Baseline) -> None:
    d = make(N, 5)
    k = N // 200
    d["y"][:k] = 5.3 + np.random.default_rng(1).normal(0, 0.001, k)
    report = check_table(pa.table(d), baseline=baseline)
    clusters = [f for f in report.findings if f.kind == "tight_cluster" and f.evidence["column"] == "y"]
    assert clusters, report.summary()
    assert set(range(k)) <= set(clusters[0].records)


def test_two_percent_label_shift(baseline: Baseline) -> None:
    d = make(N, 6)
    neg = np.flatnonzero(d["label"] == "neg")
    flip = neg[: int(0.02 * N)]
    d["label"][flip] = "pos"
    report = check_table(pa.table(d), baseline=baseline)
    shift = [f for f in report.findings if f.kind == "label_shift"]
    assert shift and shift[0].severity == Severity.HIGH
    assert shift[0].evidence["tvd"] == pytest.approx(0.02, abs=0.008)


def test_group_bias(baseline: Baseline) -> None:
    d = make(N, 7)
    g1neg = np.flatnonzero((d["grp"] == "g1") & (d["label"] == "neg"))
    d["label"][g1neg[: len(g1neg) // 3]] = "pos"
    report = check_table(pa.table(d), baseline=baseline, group="grp")
    assert any(f.kind == "group_label_shift" for f in report.findings), report.summary()


def test_format_range_missing_and_schema(baseline: Baseline) -> None:
    d = make(N, 8)
    d["code"][:50] = "DROP TABLE users"
    d["y"][100:110] = 1e9
    t = pa.table(d)
    cat = pa.array(d["cat"]).to_pylist()
    for i in range(0, 4000):
        cat[i] = None
    t = t.set_column(t.schema.get_field_index("cat"), "cat", pa.array(cat, pa.string()))
    t = t.append_column("extra", pa.array(np.arange(N)))
    report = check_table(t, baseline=baseline)
    k = kinds(report, Severity.LOW)
    assert ("format", "format_violation") in k
    assert ("range", "out_of_range") in k
    assert ("missing", "missing_rate") in k
    assert ("schema", "new_nulls") in k
    assert ("schema", "extra_columns") in k
    fmt = next(f for f in report.findings if f.kind == "format_violation")
    assert set(fmt.records) == set(range(50))


def test_per_column_findings_count_the_planted_records(baseline: Baseline) -> None:
    d = make(N, 9)
    planted = {
        ("format", "format_violation", "code"): range(0, 40),
        ("range", "out_of_range", "y"): range(100, 125),
        ("range", "non_finite", "x"): range(200, 260),
        ("schema", "new_nulls", "cat"): range(300, 308),
    }
    d["code"][0:40] = "DROP TABLE users"
    d["y"][100:125] = 1e9
    d["x"][200:230] = np.nan
    d["x"][230:260] = np.inf
    cat = pa.array(d["cat"]).to_pylist()
    for i in range(300, 308):
        cat[i] = None
    t = pa.table(d)
    t = t.set_column(t.schema.get_field_index("cat"), "cat", pa.array(cat, pa.string()))
    report = check_table(t, baseline=baseline)
    for (check, kind, column), rows in planted.items():
        found = [f for f in report.findings if (f.check, f.kind) == (check, kind)]
        assert [f.evidence["column"] for f in found] == [column], (kind, report.summary())
        f = found[0]
        assert set(f.records) == set(rows)
        assert f.evidence["n_records"] == len(rows)
        assert f.evidence["share"] == pytest.approx(len(rows) / N)
        assert f"{len(rows)} " in f.summary and repr(column) in f.summary
    # NaN and infinities in a column the baseline had none of: HIGH from a 0.1 % share up
    assert next(f for f in report.findings if f.kind == "non_finite").severity == Severity.HIGH
    oor = next(f for f in report.findings if f.kind == "out_of_range")
    assert oor.evidence["batch_min"] == oor.evidence["batch_max"] == 1e9
    assert oor.evidence["low"] < oor.evidence["high"] < 1e9


def test_numeric_drift_is_reported(baseline: Baseline) -> None:
    d = make(N, 10)
    d["y"] = d["y"] + 1.5
    report = check_table(pa.table(d), baseline=baseline)
    drift = [f for f in report.findings if f.kind == "column_drift"]
    assert [f.evidence["column"] for f in drift] == ["y"]
    assert drift[0].evidence["psi"] > 0.1 and "histogram" in drift[0].evidence
    # a shift raises whole regions: the tail-mass rule may fire, the tight-cluster rule must not
    assert not any(f.kind == "tight_cluster" for f in report.findings), report.summary()


def test_baseline_json_round_trip_and_canonical(baseline: Baseline) -> None:
    data = baseline.to_json()
    again = Baseline.from_json(data)
    assert again.to_json() == data
    assert json.loads(data)["format"] == "dataward.baseline/v1"
    assert baseline.profile.columns["code"].regex() == "^(?:[A-Z]+\\-[0-9]+)$"
    assert baseline.profile.columns["cat"].role == "categorical"
    assert baseline.profile.columns["label"].role == "label"


def test_profiles_merge_like_the_whole() -> None:
    t = pa.table(make(20_000, 11))
    b = ProfileBuilder(label="label", group=["grp"], partition="all")
    b.update(t.to_batches()[0], 0)
    whole = b.result()
    parts = []
    for i, (start, stop) in enumerate(((0, 7000), (7000, 20_000))):
        pb = ProfileBuilder(label="label", group=["grp"], partition=f"part{i}")
        pb.update(t.slice(start, stop - start).to_batches()[0], 0)
        parts.append(pb.result())
    merged = parts[0].merge(parts[1])
    for name in ("x", "cat", "code", "label"):
        a, m = whole.columns[name], merged.columns[name]
        assert (a.n, a.n_null, a.lengths, a.shapes) == (m.n, m.n_null, m.lengths, m.shapes)
        assert a.values_overflow == m.values_overflow
        if not a.values_overflow:
            assert a.values == m.values
        if a.min is not None:
            assert (a.min, a.max) == (m.min, m.max)
            assert a.mean == pytest.approx(m.mean) and a.std == pytest.approx(m.std)
    assert merged.groups == whole.groups
    assert len(merged.sample_priority) == 10_000
    q_whole = whole.quantiles("x", [0.1, 0.5, 0.9])
    q_merged = merged.quantiles("x", [0.1, 0.5, 0.9])
    assert q_whole is not None and q_merged is not None
    assert np.allclose(q_whole, q_merged, atol=0.05)
    wrapped = Baseline(parts[0]).merge(Baseline(parts[1]))
    assert wrapped.profile.n_records == 20_000
