"""The label-flip benchmark's opt-in harder tables (docs/adr/0074, 0082): seeded, the shapes the ADRs describe, and
an unknown ``--only`` name is an error rather than a silent empty run."""

from __future__ import annotations

import pytest
from bench_module import load_benchmark  # tests/detect/bench_module.py

BENCH = load_benchmark("label_flips")


@pytest.mark.parametrize(("name", "rows", "columns", "classes"), [("moons", 500, 6, 2), ("blobs", 400, 10, 3)])
def test_drawn_tables_follow_the_case_seed(name: str, rows: int, columns: int, classes: int) -> None:
    build = BENCH.EXTRA_TABLES[name]
    first, again, other = build(3)[0], build(3)[0], build(4)[0]
    assert first.shape == (rows, columns + 1)
    assert first["label"].nunique() == classes
    assert first.equals(again)
    assert not first.drop(columns=["label"]).equals(other.drop(columns=["label"]))


def test_digits600_is_the_first_600_digits_whatever_the_seed() -> None:
    frame = BENCH.EXTRA_TABLES["digits600"](0)[0]
    assert frame.shape == (600, 65)
    assert frame["label"].nunique() == 10
    assert frame.equals(BENCH.EXTRA_TABLES["digits600"](7)[0])


def test_unknown_data_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        BENCH.main(["--only", "iris,no_such_table", "--peer-python", "/nonexistent"])
    assert raised.value.code == 2
    assert "no_such_table" in capsys.readouterr().err
