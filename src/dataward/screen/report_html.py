"""A self-contained HTML screening report: inline SVG plots, inline CSS, no scripts, no network.

Plots: histograms of drifted columns (and of a shifted label) against the baseline, per-record score
distributions (outliers), duplicate-cluster sizes. Every string from the data is HTML-escaped; PII in
examples was masked by the checks before it got here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataward.screen.interface import Finding, ScreenReport

_COLORS = {"info": "#6b7280", "low": "#2563eb", "medium": "#d97706", "high": "#dc2626", "critical": "#7f1d1d"}
_BASE, _BATCH = "#94a3b8", "#dc2626"
W, H, PAD = 420, 180, 30

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#111827;max-width:1200px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #f3f4f6;padding:4px 6px;text-align:left;
vertical-align:top} .sev{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;font-weight:600}
.muted{color:#6b7280} pre{background:#f9fafb;padding:6px;max-height:180px;overflow:auto;font-size:12px;margin:4px 0}
.plots{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0} figcaption{font-size:12px;color:#374151}
details summary{cursor:pointer}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(sev: str) -> str:
    return f'<span class="sev" style="background:{_COLORS.get(sev, "#6b7280")}">{_e(sev.upper())}</span>'


def svg_bars(
    series: Sequence[tuple[str, str, Sequence[float]]], labels: Sequence[str], title: str, *, log: bool = False
) -> str:
    """Grouped (or overlaid, for many bins) bars of one or two series over the same bins."""
    n = max((len(v) for _, _, v in series), default=0)
    if n == 0:
        return ""
    vals = [[max(float(x), 0.0) for x in v] for _, _, v in series]
    top = max((max(v) for v in vals if v), default=1.0) or 1.0
    inner_w, inner_h = W - 2 * PAD, H - 2 * PAD
    slot = inner_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="{_e(title)}">',
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
    ]
    k = len(series)
    for s, (_name, color, _v) in enumerate(series):
        for i, x in enumerate(vals[s]):
            h = inner_h * (x / top)
            if log and x > 0:
                import math

                h = inner_h * math.log1p(x) / math.log1p(top)
            bw = slot / k if n <= 40 else slot
            bx = PAD + i * slot + (s * bw if n <= 40 else 0)
            opacity = "0.85" if n <= 40 else "0.55"
            parts.append(
                f'<rect x="{bx:.2f}" y="{PAD + inner_h - h:.2f}" width="{max(bw - 0.5, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{color}" fill-opacity="{opacity}"/>'
            )
    parts.append(f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{W - PAD}" y2="{PAD + inner_h}" stroke="#9ca3af"/>')
    if labels:
        step = max(1, len(labels) // 6)
        for i in range(0, len(labels), step):
            parts.append(
                f'<text x="{PAD + (i + 0.5) * slot:.1f}" y="{H - 8}" font-size="9" text-anchor="middle" '
                f'fill="#374151">{_e(labels[i])[:14]}</text>'
            )
    for s, (name, color, _v) in enumerate(series):
        parts.append(
            f'<rect x="{PAD + s * 110}" y="6" width="10" height="10" fill="{color}"/>'
            f'<text x="{PAD + 14 + s * 110}" y="15" font-size="11" fill="#111827">{_e(name)}</text>'
        )
    parts.append(f'<text x="{W - PAD}" y="15" font-size="10" text-anchor="end" fill="#6b7280">max {top:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hist_plot(f: Finding) -> str:
    hist = f.evidence.get("histogram")
    if not isinstance(hist, Mapping):
        return ""
    if "edges" in hist:
        edges = hist["edges"]
        labels = [f"{(edges[i] + edges[i + 1]) / 2:.3g}" for i in range(len(edges) - 1)]
    else:
        labels = [str(c) for c in hist.get("categories", [])]
    svg = svg_bars(
        [("baseline", _BASE, hist.get("baseline", [])), ("batch", _BATCH, hist.get("batch", []))], labels, f.summary
    )
    col = f.evidence.get("column") or f.evidence.get("label") or ""
    return f"<figure>{svg}<figcaption>{_e(f.check)}: {_e(col)}</figcaption></figure>"


def _evidence(f: Finding) -> str:
    ev = {k: v for k, v in f.evidence.items() if k != "histogram"}
    text = json.dumps(ev, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > 4000:
        text = text[:4000] + "\n…"
    return f"<pre>{_e(text)}</pre>"


def render_html(report: ScreenReport) -> str:
    d = report.to_dict()
    counts = d["finding_counts"]
    findings = report.findings
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>dataward screen: {_e(report.subject)}</title><style>{_CSS}</style></head><body>",
        f"<h1>dataward screening report</h1><div class='muted'>{_e(report.subject)} · {report.n_records:,} records · "
        f"{len(report.columns)} columns · {report.seconds:.2f} s</div>",
        "<p>" + " ".join(f"{_badge(s)} {counts[s]}" for s in ("critical", "high", "medium", "low", "info")) + "</p>",
    ]
    out.append("<h2>Checks</h2><table><tr><th>check</th><th>state</th><th>findings</th><th>seconds</th></tr>")
    for r in report.results:
        state = f"skipped: {_e(r.skipped)}" if r.skipped else "ran"
        worst = r.max_severity
        badge = _badge(worst.value) if worst else ""
        out.append(
            f"<tr><td>{_e(r.check)}</td><td>{state}</td><td>{len(r.findings)} {badge}</td><td>{r.seconds:.3f}</td></tr>"
        )
    out.append("</table>")
    plots = [p for p in (_hist_plot(f) for f in findings) if p]
    extra_plots = []
    for r in report.results:
        sizes = r.stats.get("cluster_sizes") if isinstance(r.stats, Mapping) else None
        if sizes:
            top = list(sizes)[:40]
            svg = svg_bars(
                [("cluster size", _BATCH, top)], [str(i + 1) for i in range(len(top))], "cluster sizes", log=True
            )
            extra_plots.append(
                f"<figure>{svg}<figcaption>duplicate cluster sizes (largest first, log scale)</figcaption></figure>"
            )
        hist = r.stats.get("score_histogram") if isinstance(r.stats, Mapping) else None
        if isinstance(hist, Mapping) and hist.get("counts"):
            edges = hist.get("edges", [])
            labels = [f"{e:.2f}" for e in edges[:-1]]
            extra_plots.append(
                f"<figure>{svg_bars([('records', '#2563eb', hist['counts'])], labels, 'scores', log=True)}"
                f"<figcaption>{_e(r.check)}: per-record score distribution (log scale)</figcaption></figure>"
            )
    if plots or extra_plots:
        out.append("<h2>Plots</h2><div class='plots'>" + "".join(plots[:24] + extra_plots) + "</div>")
    out.append("<h2>Findings</h2>")
    if not findings:
        out.append("<p>No findings.</p>")
    else:
        out.append("<table><tr><th>severity</th><th>check / kind</th><th>summary</th><th>records</th></tr>")
        for f in findings[:500]:
            n = f.evidence.get("n_records", len(f.records))
            recs = ", ".join(str(r) for r in f.records[:20]) + (" …" if len(f.records) > 20 else "")
            out.append(
                f"<tr><td>{_badge(f.severity.value)}</td>"
                f"<td>{_e(f.check)}<br><span class='muted'>{_e(f.kind)}</span></td>"
                f"<td>{_e(f.summary)}<details><summary>evidence</summary>{_evidence(f)}</details></td>"
                f"<td>{_e(n)}<br><span class='muted'>{_e(recs)}</span></td></tr>"
            )
        out.append("</table>")
        if len(findings) > 500:
            out.append(f"<p class='muted'>{len(findings) - 500} more findings in the JSON report.</p>")
    params: Any = d.get("params", {})
    out.append(f"<h2>Parameters</h2><pre>{_e(json.dumps(params, indent=1, sort_keys=True))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)
