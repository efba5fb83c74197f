"""Fuzzed inputs never give a traceback: mixed types, NaN/inf, empty batches, huge fields, invalid UTF-8."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataward.screen.api import check_path, check_table, create_baseline
from dataward.screen.interface import ScreenError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
records = st.lists(st.dictionaries(st.sampled_from(["a", "b", "text", "label"]), scalars, max_size=4), max_size=30)


def assert_clean(report) -> None:
    crashed = [f.summary for f in report.findings if f.kind == "check_error"]
    assert not crashed, crashed
    json.loads(report.to_json())
    assert "<html" in report.to_html()
    report.summary()


def _baseline():
    r = np.random.default_rng(0)
    return create_baseline(
        pa.table(
            {
                "a": r.normal(size=500),
                "b": r.choice(["x", "y"], 500),
                "text": ["some words here now"] * 500,
                "label": r.choice([0, 1], 500),
            }
        ),
        label="label",
    )


BASELINE = _baseline()


@pytest.mark.slow
@SETTINGS
@given(records)
def test_jsonl_with_mixed_types(tmp_path_factory: pytest.TempPathFactory, rows: list[dict]) -> None:
    d = tmp_path_factory.mktemp("fz")
    p = d / "data.jsonl"
    p.write_text("\n".join(json.dumps(r, allow_nan=True) for r in rows) + ("\n" if rows else ""))
    assert_clean(check_path(p))
    assert_clean(check_path(p, baseline=BASELINE))


@pytest.mark.slow
@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_csv_and_jsonl(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    d = tmp_path_factory.mktemp("fb")
    for name in ("data.csv", "data.jsonl", "data.txt"):
        p = d / name
        p.write_bytes(b"a,b,text\n" + blob if name.endswith("csv") else blob)
        try:
            report = check_path(p, baseline=BASELINE if name.endswith("csv") else None)
        except ScreenError:
            continue  # a one-line error for unreadable input is fine; a traceback is not
        assert_clean(report)


@pytest.mark.slow
@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=60))
def test_numeric_nan_inf_against_baseline(values: list[float]) -> None:
    n = len(values)
    t = pa.table({"a": pa.array(values, pa.float64()), "b": pa.array(["x"] * n), "label": pa.array([0] * n)})
    assert_clean(check_table(t, baseline=BASELINE))
    assert_clean(check_table(t))


def test_values_spanning_the_whole_float_range_do_not_crash_drift() -> None:
    """The drift histogram's range (max - min) overflowed to inf and its edges to NaN: the check crashed."""
    values = [-1.7976931348623157e308] * 30 + [1.7976931348623157e308] * 30
    n = len(values)
    t = pa.table({"a": pa.array(values, pa.float64()), "b": pa.array(["x"] * n), "label": pa.array([0] * n)})
    report = check_table(t, baseline=BASELINE)
    assert_clean(report)
    drift = next(r for r in report.results if r.check == "drift")
    assert drift.skipped is None


def test_empty_inputs(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("a,b\n")
    (tmp_path / "e.jsonl").write_text("")
    (tmp_path / "e.txt").write_text("")
    for name in ("e.csv", "e.jsonl", "e.txt"):
        rep = check_path(tmp_path / name, baseline=BASELINE)
        assert rep.n_records == 0
        assert_clean(rep)
    assert_clean(check_table(pa.table({"a": pa.array([], pa.float64())}), baseline=BASELINE))


@pytest.mark.slow
def test_huge_fields_and_invalid_utf8(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    with open(p, "wb") as fh:
        fh.write(b"a,b,text\n")
        fh.write(b'1.5,x,"' + b"A" * (3 << 20) + b'"\n')
        fh.write(b"2.5,y,bad \xff\xfe bytes \xc3\n")
        fh.write(b"nan,x,inf\n")
        fh.write(b"oops,x,fine\n")
    rep = check_path(p, baseline=BASELINE)
    assert_clean(rep)
    kinds = {f.kind for f in rep.findings}
    assert {"huge_cells", "invalid_utf8", "type_violation"} <= kinds
    viol = next(f for f in rep.findings if f.kind == "type_violation")
    assert viol.records == (3,)


def test_mixed_type_jsonl_column_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    rows = [{"a": 1.0, "b": "x"}] * 50 + [{"a": "not a number", "b": "x"}, {"a": [1, 2], "b": "y"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    rep = check_path(p, baseline=BASELINE)
    assert_clean(rep)
    kinds = {f.kind: f for f in rep.findings}
    assert "invalid_json" in kinds and kinds["invalid_json"].records == (52,)
    assert set(kinds["type_violation"].records) == {50, 51}
    assert not math.isnan(rep.seconds)


def test_unknown_format_is_a_one_line_error(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"\x00\x01")
    with pytest.raises(ScreenError, match="format"):
        check_path(p)
    with pytest.raises(ScreenError, match="no such file"):
        check_path(tmp_path / "missing.csv")
