"""Plots and the lineage graph as inline SVG, drawn on the server (no JavaScript libraries), and the palette.

One set of charts and one palette for the console (:mod:`dataward.web`) and the self-contained screening
report (:mod:`dataward.screen._report_html`). Every string from the data is escaped here; text elements use
the classes ``plot-title`` and ``muted``, which both pages style.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = [
    "BAR",
    "BASELINE",
    "BATCH",
    "SEVERITY_COLOURS",
    "bars",
    "grouped_bars",
    "histogram",
    "interval",
    "lineage",
    "severity_bars",
]

#: the console's severity palette (badges, bars), shared with the screening report
SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#d62728", "medium": "#ff9f1c", "low": "#2b7bba", "info": "#999999"}
#: bars of one series
BAR = "#2b7bba"
#: two series compared: the trusted baseline and the batch under screening
BASELINE, BATCH = "#9aa5b1", "#d62728"
_SEV_COLOURS = SEVERITY_COLOURS
_BAR = BAR


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def bars(counts: Mapping[str, float], title: str, *, colours: Mapping[str, str] | None = None) -> str:
    """Horizontal bar chart of label -> value."""
    items = list(counts.items())
    row, label_w, plot_w = 22, 170, 300
    height = 28 + row * max(len(items), 1)
    top = max((v for _, v in items), default=0) or 1
    body = [f'<text x="4" y="16" class="plot-title">{escape(title)}</text>']
    if not items:
        body.append('<text x="4" y="40" class="muted">nothing to show</text>')
    for i, (label, value) in enumerate(items):
        y = 26 + i * row
        w = max(1.0, plot_w * value / top) if value else 0
        colour = (colours or {}).get(label, _BAR)
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label[:28])}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{colour}"/>')
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{value:g}</text>')
    return _svg(label_w + plot_w + 60, height + 6, body, title)


def severity_bars(by_severity: Mapping[str, int], title: str = "findings by severity") -> str:
    """Bars of finding counts per severity, most severe first, in the severity palette."""
    order = ["critical", "high", "medium", "low", "info"]
    counts = {k: by_severity.get(k, 0) for k in order if k in by_severity or k != "info"}
    return bars(counts, title, colours=_SEV_COLOURS)


def histogram(values: Sequence[float], lo: float, hi: float, title: str, *, bins: int = 20, xlabel: str = "") -> str:
    """Vertical histogram of ``values`` in [lo, hi]."""
    width, height, left, bottom = 420, 190, 36, 36
    plot_w, plot_h = width - left - 10, height - bottom - 26
    counts = [0] * bins
    span = (hi - lo) or 1.0
    for v in values:
        k = int((v - lo) / span * bins)
        counts[min(max(k, 0), bins - 1)] += 1
    top = max(counts) or 1
    bw = plot_w / bins
    body = [f'<text x="4" y="16" class="plot-title">{escape(title)}</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = left + i * bw
        y = 26 + plot_h - h
        body.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="{_BAR}">'
            f"<title>{c}</title></rect>"
        )
    base = 26 + plot_h
    body.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#444"/>')
    body.append(f'<text x="{left}" y="{base + 14}">{lo:g}</text>')
    body.append(f'<text x="{left + plot_w}" y="{base + 14}" text-anchor="end">{hi:g}</text>')
    body.append(f'<text x="{left + plot_w / 2:.0f}" y="{base + 28}" text-anchor="middle">{escape(xlabel)}</text>')
    body.append(f'<text x="4" y="34">{top}</text>')
    return _svg(width, height, body, title)


def interval(rate: float, lower: float, upper: float, limit: float | None, title: str) -> str:
    """A point estimate with its interval on a 0..max axis, and the policy limit when there is one."""
    width, left, plot_w = 420, 50, 320
    top = max(upper, limit or 0.0, 0.05) * 1.15

    def x(v: float) -> float:
        return left + plot_w * v / top

    body = [f'<text x="4" y="16" class="plot-title">{escape(title)}</text>']
    body.append(f'<line x1="{left}" y1="50" x2="{left + plot_w}" y2="50" stroke="#bbb"/>')
    body.append(f'<line x1="{x(lower):.1f}" y1="50" x2="{x(upper):.1f}" y2="50" stroke="{_BAR}" stroke-width="6"/>')
    body.append(f'<circle cx="{x(rate):.1f}" cy="50" r="6" fill="#111"/>')
    body.append(f'<text x="{x(rate):.1f}" y="78" text-anchor="middle">{rate:.2%}</text>')
    body.append(f'<text x="{x(lower):.1f}" y="38" text-anchor="end">{lower:.2%}</text>')
    body.append(f'<text x="{x(upper):.1f}" y="38">{upper:.2%}</text>')
    if limit is not None:
        body.append(
            f'<line x1="{x(limit):.1f}" y1="30" x2="{x(limit):.1f}" y2="66" stroke="#d62728" stroke-dasharray="4"/>'
        )
        body.append(f'<text x="{x(limit):.1f}" y="92" text-anchor="middle" fill="#d62728">limit {limit:.2%}</text>')
    return _svg(width, 100, body, title)


_COLUMNS = ("source", "batch", "version", "run", "model")
_NODE_FILL = {"source": "#e8f1fa", "batch": "#fff4e0", "version": "#e9f7ec", "run": "#f3e9fa", "model": "#fdeaea"}


def _label(node: Mapping[str, Any]) -> tuple[str, str]:
    kind = str(node.get("type", ""))
    key = str(node.get("id", ""))
    name = key.split(":", 1)[1] if ":" in key else key
    if kind in ("run", "model"):
        short = str(node.get("name") or "").replace("\\", "/").rsplit("/", 1)[-1][:22] if kind == "model" else ""
        name = short or name[:12] + "…"
    elif len(name) > 22:
        name = name[:21] + "…"
    sub = {
        "batch": str(node.get("state", "")),
        "version": f"{node.get('records', '')} records",
        "source": str(node.get("kind", "")),
        "run": str(node.get("status", "")),
        "model": "",
    }.get(kind, "")
    return name, sub


def lineage(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, str]], target: str | None) -> str:
    """source → batch → version → run → model, one column per kind, edges as curves with arrows."""
    col_w, node_w, node_h, gap = 210, 180, 40, 16
    columns: dict[str, list[Mapping[str, Any]]] = {c: [] for c in _COLUMNS}
    for n in sorted(nodes, key=lambda n: str(n.get("id"))):
        columns.setdefault(str(n.get("type")), []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    used = [c for c in columns if columns[c]]
    for ci, c in enumerate(used):
        for ri, n in enumerate(columns[c]):
            pos[str(n["id"])] = (20 + ci * col_w, 44 + ri * (node_h + gap))
    rows = max((len(columns[c]) for c in used), default=1)
    width = 40 + max(len(used), 1) * col_w
    height = 60 + rows * (node_h + gap)
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
    ]
    for ci, c in enumerate(used):
        plural = "batches" if c == "batch" else f"{c}s"
        body.append(f'<text x="{20 + ci * col_w}" y="24" class="plot-title">{escape(plural)}</text>')
    for e in edges:
        a, b = pos.get(str(e.get("from"))), pos.get(str(e.get("to")))
        if a is None or b is None:
            continue
        x1, y1 = a[0] + node_w, a[1] + node_h / 2
        x2, y2 = b[0], b[1] + node_h / 2
        mx = (x1 + x2) / 2
        body.append(
            f'<path d="M{x1:.0f},{y1:.0f} C{mx:.0f},{y1:.0f} {mx:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" fill="none" '
            f'stroke="#666" marker-end="url(#arrow)"><title>{escape(str(e.get("relation", "")))}</title></path>'
        )
    for n in nodes:
        key = str(n.get("id"))
        if key not in pos:
            continue
        x, y = pos[key]
        name, sub = _label(n)
        kind = str(n.get("type"))
        stroke = ' stroke="#d62728" stroke-width="3"' if key == target else ' stroke="#555"'
        flag = str(n.get("flag") or "")
        if flag:  # revoked versions and tainted runs/models: a red dashed border and the word in the node
            stroke = ' stroke="#c62828" stroke-width="2" stroke-dasharray="5 3"'
            sub = f"{flag.upper()} {sub}".strip()
        extra = f" node-{escape(flag)}" if flag else ""
        body.append(f'<g class="node node-{escape(kind)}{extra}"><title>{escape(key)}</title>')
        body.append(
            f'<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="6" fill="{_NODE_FILL.get(kind, "#eee")}"'
            f"{stroke}/>"
        )
        body.append(f'<text x="{x + 8}" y="{y + 17}" class="node-name">{escape(name)}</text>')
        body.append(f'<text x="{x + 8}" y="{y + 32}" class="muted">{escape(sub)}</text></g>')
    return _svg(int(width), int(height), body, "lineage graph")


def grouped_bars(
    series: Sequence[tuple[str, str, Sequence[float]]], labels: Sequence[str], title: str, *, log: bool = False
) -> str:
    """Bars of one or more ``(name, colour, values)`` series over the same bins: side by side for up to 40 bins,
    overlaid beyond; ``log`` scales heights by log1p (cluster sizes, score counts)."""
    width, height, pad = 420, 190, 30
    n = max((len(v) for _, _, v in series), default=0)
    if n == 0:
        return ""
    vals = [[max(float(x), 0.0) for x in v] for _, _, v in series]
    top = max((max(v) for v in vals if v), default=1.0) or 1.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad - 10
    slot = inner_w / n
    k = len(series)
    side = n <= 40
    body = [f'<text x="4" y="16" class="plot-title">{escape(title[:80])}</text>']
    for s, (name, colour, _v) in enumerate(series):
        body.append(
            f'<rect x="{pad + 150 + s * 110}" y="6" width="10" height="10" fill="{escape(colour)}"/>'
            f'<text x="{pad + 164 + s * 110}" y="15">{escape(name)}</text>'
        )
        for i, x in enumerate(vals[s]):
            h = inner_h * (math.log1p(x) / math.log1p(top) if log and x > 0 else x / top)
            bw = slot / k if side else slot
            bx = pad + i * slot + (s * bw if side else 0)
            body.append(
                f'<rect x="{bx:.2f}" y="{pad + 10 + inner_h - h:.2f}" width="{max(bw - 0.5, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{escape(colour)}" fill-opacity="{0.85 if side else 0.55}">'
                f"<title>{escape(name)}: {x:g}</title></rect>"
            )
    base = pad + 10 + inner_h
    body.append(f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="#444"/>')
    step = max(1, len(labels) // 6)
    for i in range(0, len(labels), step):
        body.append(
            f'<text x="{pad + (i + 0.5) * slot:.1f}" y="{height - 8}" text-anchor="middle" class="muted">'
            f"{escape(str(labels[i])[:14])}</text>"
        )
    body.append(f'<text x="{width - pad}" y="30" text-anchor="end" class="muted">max {top:.3g}</text>')
    return _svg(width, height, body, title)
