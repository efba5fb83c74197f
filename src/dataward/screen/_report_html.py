"""A self-contained HTML screening report: a Jinja2 template, inline SVG plots, inline CSS, no scripts, no network.

The page is ``screen/templates/report.html`` rendered with autoescaping on, so every string from the data is
escaped; the plots are the console's charts (:mod:`dataward.charts`) in the console's palette: histograms of
drifted columns (and of a shifted label) against the baseline, per-record score distributions (outliers),
duplicate-cluster sizes. PII in examples was masked by the checks before it got here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from dataward import charts

if TYPE_CHECKING:
    import jinja2

    from dataward.screen.interface import Finding, ScreenReport

__all__ = ["render_html"]

#: the most findings and plots one page shows (the JSON report has all)
MAX_FINDINGS = 500
MAX_PLOTS = 24
_LEVELS = ("critical", "high", "medium", "low", "info")


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("dataward.screen", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _safe(svg: str) -> Any:
    """An SVG string from :mod:`dataward.charts` (which escapes every data string itself) as markup."""
    from markupsafe import Markup

    return Markup(svg)  # noqa: S704 - built by dataward.charts, which escapes every string from the data


def _hist_plot(f: Finding) -> dict[str, Any] | None:
    hist = f.evidence.get("histogram")
    if not isinstance(hist, Mapping):
        return None
    if "edges" in hist:
        edges = hist["edges"]
        labels = [f"{(edges[i] + edges[i + 1]) / 2:.3g}" for i in range(len(edges) - 1)]
    else:
        labels = [str(c) for c in hist.get("categories", [])]
    svg = charts.grouped_bars(
        [("baseline", charts.BASELINE, hist.get("baseline", [])), ("batch", charts.BATCH, hist.get("batch", []))],
        labels,
        f.summary,
    )
    if not svg:
        return None
    col = f.evidence.get("column") or f.evidence.get("label") or ""
    return {"svg": _safe(svg), "caption": f"{f.check}: {col}"}


def _evidence(f: Finding) -> str:
    ev = {k: v for k, v in f.evidence.items() if k != "histogram"}
    text = json.dumps(ev, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    return text[:4000] + "\n…" if len(text) > 4000 else text


def _result_plots(report: ScreenReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in report.results:
        stats = r.stats if isinstance(r.stats, Mapping) else {}
        sizes = stats.get("cluster_sizes")
        if sizes:
            top = list(sizes)[:40]
            svg = charts.grouped_bars(
                [("cluster size", charts.BATCH, top)], [str(i + 1) for i in range(len(top))], "cluster sizes", log=True
            )
            out.append({"svg": _safe(svg), "caption": "duplicate cluster sizes (largest first, log scale)"})
        hist = stats.get("score_histogram")
        if isinstance(hist, Mapping) and hist.get("counts"):
            labels = [f"{e:.2f}" for e in hist.get("edges", [])[:-1]]
            svg = charts.grouped_bars([("records", charts.BAR, hist["counts"])], labels, "scores", log=True)
            out.append({"svg": _safe(svg), "caption": f"{r.check}: per-record score distribution (log scale)"})
    return out


def render_html(report: ScreenReport) -> str:
    """The report as one HTML page (no scripts, no network: a Content-Security-Policy forbids both)."""
    d = report.to_dict()
    findings = report.findings
    plots = [p for p in (_hist_plot(f) for f in findings) if p is not None][:MAX_PLOTS]
    rows = []
    for f in findings[:MAX_FINDINGS]:
        recs = ", ".join(str(r) for r in f.records[:20]) + (" …" if len(f.records) > 20 else "")
        rows.append(
            {
                "severity": f.severity.value,
                "check": f.check,
                "kind": f.kind,
                "summary": f.summary,
                "evidence": _evidence(f),
                "n_records": f.evidence.get("n_records", len(f.records)),
                "records": recs,
            }
        )
    results = [
        {
            "check": r.check,
            "skipped": r.skipped,
            "findings": r.findings,
            "worst": r.max_severity.value if r.max_severity else None,
            "seconds": r.seconds,
        }
        for r in report.results
    ]
    return _environment().get_template("report.html").render(
        subject=report.subject,
        n_records=report.n_records,
        n_columns=len(report.columns),
        seconds=report.seconds,
        levels=_LEVELS,
        counts=d["finding_counts"],
        palette=charts.SEVERITY_COLOURS,
        results=results,
        plots=plots + _result_plots(report),
        findings=rows,
        more_findings=max(0, len(findings) - MAX_FINDINGS),
        params=json.dumps(d.get("params", {}), indent=1, sort_keys=True),
    )
