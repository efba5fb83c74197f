"""The 100k-record speed row of ``benchmarks/detection.py`` runs the CLI it times (a changed option once
made it time an argument error in a second)."""

from __future__ import annotations

import pytest
from bench_module import load_benchmark  # tests/detect/bench_module.py


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_speed_check_runs_detect_and_reads_its_report() -> None:
    detection = load_benchmark("detection")
    result = detection.speed_check(3_000)
    assert result["rc"] == 0, result["stderr"]
    assert result["n_records"] == 3_000
    assert result["cpu_seconds"] > 0
    # the report was read: the planted records are scored and every detector's time is there
    assert result["recall"] is not None and result["recall"] >= 0.9, result
    assert "text_triggers" in result["detector_seconds"]
