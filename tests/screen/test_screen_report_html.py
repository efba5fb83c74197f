"""The HTML screening report (issue #13): a Jinja2 template with autoescaping, the console's charts and palette."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from dataward import charts
from dataward.core.severity import Severity
from dataward.model.finding import Finding
from dataward.screen.interface import CheckResult, ScreenReport

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _report() -> ScreenReport:
    drift = Finding(
        "drift",
        "numeric_drift",
        Severity.HIGH,
        f"column {EVIL} drifted",
        (1, 2, 3),
        {"column": EVIL, "histogram": {"edges": [0, 1, 2, 3], "baseline": [5, 3, 1], "batch": [1, 3, 5]}},
    )
    pii = Finding("pii", EVIL, Severity.MEDIUM, "2 emails", (4,), {"n_records": 2, "example": EVIL})
    results = (
        CheckResult("drift", (drift,), {"score_histogram": {"edges": [0, 0.5, 1], "counts": [9, 1]}}, 0.01),
        CheckResult("pii", (pii,), {"cluster_sizes": [4, 2, 2]}, 0.02),
        CheckResult("intel", skipped=f"no feed {EVIL}"),
    )
    return ScreenReport(EVIL, 10, ("a", "b"), results, {"note": EVIL}, 0.5)


def test_every_data_string_is_escaped_and_nothing_runs() -> None:
    page = _report().to_html()
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert html.escape(EVIL, quote=False) in page or html.escape(EVIL) in page
    assert "default-src 'none'" in page  # no script, no network even if something slipped through


def test_the_consoles_palette_and_charts() -> None:
    page = _report().to_html()
    for level, colour in charts.SEVERITY_COLOURS.items():
        assert f".sev-{level} {{ background: {colour}; }}" in page
    assert page.count("<svg") == 3  # the drift histogram, the score distribution, the cluster sizes
    assert charts.BASELINE in page and charts.BATCH in page
    assert re.search(r'<span class="sev sev-high">HIGH</span>', page)
    assert "skipped: no feed" in page


def test_a_real_screen_renders() -> None:
    from dataward.screen.api import check_table, create_baseline

    rng = np.random.default_rng(0)
    base = pa.Table.from_pandas(pd.DataFrame({"x": rng.normal(size=400), "label": rng.integers(0, 2, 400)}))
    batch = pa.Table.from_pandas(pd.DataFrame({"x": rng.normal(2.0, 1.0, size=400), "label": rng.integers(0, 2, 400)}))
    report = check_table(batch, baseline=create_baseline(base, label="label"), label="label")
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "drift" in page and "<svg" in page
    assert f"{report.n_records:,} records" in page
