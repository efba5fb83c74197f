"""Coverage of a synthetic batch against a real reference, and a memorisation (copy) check.

Per column: the Kolmogorov-Smirnov distance for numbers, the total-variation distance and category
coverage for categories. Per synthetic record: the distance to its nearest real record, judged against the
null of real records' leave-one-out nearest-neighbour distances: a synthetic record closer to a real
one than all but ``alpha`` of real records are to each other is a near-copy, and an exact copy is always
named. The share of near-copies is tested against ``alpha`` (binomial), so a generator that merely
resembles the data does not trip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from dataward.errors import InputError

PROVENANCE_COLUMNS = ("_batch", "_file", "_record", "_record_digest")


@dataclass(frozen=True)
class ColumnCoverage:
    """How closely one synthetic column follows its real counterpart."""

    column: str
    kind: str  # numeric | categorical
    distance: float  # KS statistic (numeric) or total-variation distance (categorical), in [0, 1]
    category_coverage: float | None  # share of the real categories the synthetic data contains


@dataclass(frozen=True)
class CoverageReport:
    """Synthetic against real data: per-column fidelity, and the records that copy real ones."""

    n_real: int
    n_synthetic: int
    columns: tuple[ColumnCoverage, ...]
    exact_copies: tuple[int, ...]  # synthetic record numbers identical to a real record
    near_copies: tuple[int, ...]  # closer to a real record than the null allows
    near_copy_threshold: float
    near_copy_p_value: float  # binomial: more near-copies than alpha would give by chance
    alpha: float
    identifier_columns: tuple[str, ...] = ()  # distinct integers per record: not compared for copies

    @property
    def memorised(self) -> bool:
        """True when the generator copied real records: an exact copy, or more near-copies than chance (p < 0.01)."""
        return bool(self.exact_copies) or self.near_copy_p_value < 0.01

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "n_real": self.n_real,
            "n_synthetic": self.n_synthetic,
            "columns": [c.__dict__ for c in self.columns],
            "exact_copies": list(self.exact_copies),
            "near_copies": list(self.near_copies),
            "near_copy_threshold": self.near_copy_threshold,
            "near_copy_p_value": self.near_copy_p_value,
            "alpha": self.alpha,
            "identifier_columns": list(self.identifier_columns),
            "memorised": self.memorised,
        }


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in PROVENANCE_COLUMNS if c in df.columns])


def _matrix(real: pd.DataFrame, synth: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[Any, Any]:
    parts_r: list[np.ndarray[Any, Any]] = []
    parts_s: list[np.ndarray[Any, Any]] = []
    if numeric:
        r = real[numeric].to_numpy(dtype=float)
        s = synth[numeric].to_numpy(dtype=float)
        mu, sd = np.nanmean(r, axis=0), np.nanstd(r, axis=0)
        sd[sd == 0] = 1.0
        parts_r.append(np.nan_to_num((r - mu) / sd))
        parts_s.append(np.nan_to_num((s - mu) / sd))
    for c in categorical:
        cats = pd.Index(real[c].astype(str).unique())
        parts_r.append((real[c].astype(str).to_numpy()[:, None] == cats.to_numpy()[None, :]).astype(float))
        parts_s.append((synth[c].astype(str).to_numpy()[:, None] == cats.to_numpy()[None, :]).astype(float))
    return np.hstack(parts_r), np.hstack(parts_s)


def coverage(real: pd.DataFrame, synthetic: pd.DataFrame, *, alpha: float = 0.01) -> CoverageReport:
    """Compare ``synthetic`` with the ``real`` reference, column by column and record by record."""
    real, synthetic = _clean(real), _clean(synthetic)
    missing = [c for c in real.columns if c not in synthetic.columns]
    if missing:
        raise InputError(f"the synthetic batch lacks the reference's columns: {', '.join(map(str, missing[:5]))}")
    if len(real) < 2 or len(synthetic) < 1:
        raise InputError("coverage needs at least two real records and one synthetic record")
    numeric = [c for c in real.columns if pd.api.types.is_numeric_dtype(real[c])]
    categorical = [c for c in real.columns if c not in numeric and real[c].nunique() <= 1000]
    cols: list[ColumnCoverage] = []
    for c in numeric:
        ks = stats.ks_2samp(real[c].dropna(), pd.to_numeric(synthetic[c], errors="coerce").dropna())
        cols.append(ColumnCoverage(str(c), "numeric", float(ks.statistic), None))
    for c in categorical:
        p = real[c].astype(str).value_counts(normalize=True)
        q = synthetic[c].astype(str).value_counts(normalize=True)
        idx = p.index.union(q.index)
        tvd = 0.5 * float(np.abs(p.reindex(idx, fill_value=0) - q.reindex(idx, fill_value=0)).sum())
        cols.append(ColumnCoverage(str(c), "categorical", tvd, float(np.isin(p.index, q.index).mean())))
    # identifier-like columns (distinct integers per record) say nothing about content: left out of copies
    identifiers = [c for c in numeric if pd.api.types.is_integer_dtype(real[c]) and real[c].is_unique]
    used = [c for c in numeric if c not in identifiers] + categorical
    if not used:
        raise InputError("coverage needs at least one content column besides identifiers")
    real_keys = set(map(tuple, real[used].astype(str).itertuples(index=False, name=None)))
    exact = tuple(
        i for i, row in enumerate(synthetic[used].astype(str).itertuples(index=False, name=None)) if row in real_keys
    )
    xr, xs = _matrix(real, synthetic, [c for c in numeric if c not in identifiers], categorical)
    nn = NearestNeighbors(n_neighbors=2).fit(xr)
    # the null: how close real records are to their nearest *other* real record
    d_rr = nn.kneighbors(xr, n_neighbors=2)[0][:, 1]
    threshold = float(np.quantile(d_rr, alpha))
    d_sr = nn.kneighbors(xs, n_neighbors=1)[0][:, 0]
    near = tuple(int(i) for i in np.flatnonzero(d_sr <= threshold) if int(i) not in set(exact))
    k = len(near) + len(exact)
    p_value = float(stats.binomtest(k, len(synthetic), alpha, alternative="greater").pvalue)
    return CoverageReport(
        len(real), len(synthetic), tuple(cols), exact, near, threshold, p_value, alpha, tuple(map(str, identifiers))
    )


def coverage_html(report: CoverageReport, title: str) -> str:
    """A self-contained HTML page (no external assets) with the per-column distances as bars."""
    import jinja2
    from markupsafe import Markup

    from dataward.charts import bars

    chart = bars({c.column: c.distance for c in report.columns}, "distance per column (0 = same distribution)")
    env = jinja2.Environment(autoescape=True)
    tpl = env.from_string(_TEMPLATE)
    return tpl.render(title=title, r=report, chart=Markup(chart))  # noqa: S704 - charts.bars escapes every label


_TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.bad{color:#b00020;font-weight:600}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ r.n_synthetic }} synthetic records against {{ r.n_real }} real records.</p>
<h2>Memorisation</h2>
<p class="{{ 'bad' if r.memorised else '' }}">{{ r.exact_copies|length }} exact copies of real records,
{{ r.near_copies|length }} near-copies (closer than {{ '%.3g'|format(r.near_copy_threshold) }}, the
{{ '%g'|format(r.alpha * 100) }} % quantile of real records' distances to each other;
p = {{ '%.3g'|format(r.near_copy_p_value) }}).</p>
<h2>Columns</h2>{{ chart }}
<table><tr><th>column</th><th>kind</th><th>distance</th><th>category coverage</th></tr>
{% for c in r.columns %}<tr><td>{{ c.column }}</td><td>{{ c.kind }}</td><td>{{ '%.3f'|format(c.distance) }}</td>
<td>{{ '%.0f %%'|format(c.category_coverage * 100) if c.category_coverage is not none else '' }}</td></tr>{% endfor %}
</table></body></html>
"""
