"""Drift per column, label-distribution shift and group x label balance, from the batch's profile.

Numeric columns: two-sample Kolmogorov-Smirnov (on the two bottom-k row samples), PSI over the baseline's
deciles and the Wasserstein distance normed by the baseline's standard deviation. Categorical columns:
chi-square against the baseline frequencies and the Jensen-Shannon distance. Text: Jensen-Shannon distance
of the length and token distributions. A column is called drifted when an effect size passes its policy
threshold (and, for tests, the p-value is small): with large batches every test is "significant", so the
effect size decides. Evidence carries histograms for the HTML report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from dataward.screen._util import fmt_share, short
from dataward.screen.baseline import ColumnProfile, Profile
from dataward.screen.interface import Check, CheckResult, Finding, Severity
from dataward.screen.registry import register


def _redact(text: str) -> str:
    from dataward.screen.pii import redact

    return redact(text)


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two histograms (counts or shares over the same bins)."""
    e = np.maximum(expected / max(expected.sum(), 1e-12), eps)
    a = np.maximum(actual / max(actual.sum(), 1e-12), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two unnormalised
    distributions over string keys; 0.0 if either is empty.
    """
    keys = sorted(set(p) | set(q))
    if not keys:
        return 0.0
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    if a.sum() <= 0 or b.sum() <= 0:
        return 0.0
    d = float(jensenshannon(a / a.sum(), b / b.sum(), base=2))
    return 0.0 if math.isnan(d) else d


def chi_square(base: Mapping[str, int], batch: Mapping[str, int]) -> tuple[float, float]:
    """Chi-square goodness of fit of the batch counts to the baseline frequencies (smoothed by 0.5)."""
    keys = sorted(set(base) | set(batch))
    if len(keys) < 2:
        return 0.0, 1.0
    b = np.array([base.get(k, 0) + 0.5 for k in keys], dtype=np.float64)
    o = np.array([batch.get(k, 0) for k in keys], dtype=np.float64)
    n = o.sum()
    if n <= 0:
        return 0.0, 1.0
    e = b / b.sum() * n
    chi2 = float(np.sum((o - e) ** 2 / e))
    p = float(stats.chi2.sf(chi2, len(keys) - 1))
    return chi2, p


def _histogram(base: np.ndarray, batch: np.ndarray, bins: int = 30) -> dict[str, Any]:
    both = np.concatenate([base, batch])
    lo, hi = np.quantile(both, [0.001, 0.999])
    lo, hi = float(min(lo, base.min())), float(max(hi, base.max()))
    if not hi > lo:
        hi = lo + 1.0
    if math.isfinite(hi - lo):
        edges = np.linspace(lo, hi, bins + 1)
    else:  # a range wider than the largest float (values near +-1.8e308): weights, so nothing overflows
        t = np.arange(bins + 1, dtype=np.float64) / bins
        edges = np.maximum.accumulate(lo * (1 - t) + hi * t)
    hb, _ = np.histogram(np.clip(base, lo, hi), edges)
    ha, _ = np.histogram(np.clip(batch, lo, hi), edges)
    return {
        "edges": [float(x) for x in edges],
        "baseline": [float(x) for x in hb / max(hb.sum(), 1)],
        "batch": [float(x) for x in ha / max(ha.sum(), 1)],
    }


def _cat_histogram(base: Mapping[str, int], batch: Mapping[str, int], top: int = 20) -> dict[str, Any]:
    tb, ta = max(sum(base.values()), 1), max(sum(batch.values()), 1)
    keys = sorted(set(base) | set(batch), key=lambda k: -(base.get(k, 0) / tb + batch.get(k, 0) / ta))[:top]
    return {
        "categories": [short(_redact(k), 24) for k in keys],
        "baseline": [base.get(k, 0) / tb for k in keys],
        "batch": [batch.get(k, 0) / ta for k in keys],
    }


def numeric_drift(base_sample: np.ndarray, batch_sample: np.ndarray, base_std: float) -> dict[str, Any]:
    """Drift statistics of a batch sample against a baseline sample: KS statistic and p-value, PSI over
    baseline deciles and the Wasserstein distance divided by the baseline's standard deviation.
    """
    ks = stats.ks_2samp(base_sample, batch_sample)
    deciles = np.unique(np.quantile(base_sample, np.linspace(0, 1, 11)[1:-1]))
    eb = np.bincount(np.searchsorted(deciles, base_sample, side="right"), minlength=deciles.size + 1)
    ea = np.bincount(np.searchsorted(deciles, batch_sample, side="right"), minlength=deciles.size + 1)
    scale = base_std if base_std > 0 else (float(np.std(base_sample)) or 1.0)
    w = float(stats.wasserstein_distance(base_sample, batch_sample)) / scale
    return {
        "ks_statistic": float(ks.statistic),
        "ks_p_value": float(ks.pvalue),
        "psi": psi(eb.astype(np.float64), ea.astype(np.float64)),
        "wasserstein_normed": w,
    }


@register
class DriftCheck(Check):
    """Per-column drift against the baseline: KS, PSI and Wasserstein for numeric
    columns; chi-square and Jensen-Shannon for categorical and text ones.
    """

    name = "drift"
    thread_safe = True  # its state is its own (ADR 0104)
    description = "per-column drift: KS, PSI, Wasserstein (numeric); chi-square, Jensen-Shannon (categorical, text)"
    needs_baseline = True

    def finish(self) -> CheckResult:
        """Compare every column the baseline and batch profiles share (labels excepted) and return a
        finding per drifting column plus the per-column statistics table; skipped for an empty batch.
        """
        ctx = self.context
        bl, bp = ctx.baseline, ctx.batch_profile
        if bl is None or bp is None or ctx.n_records == 0:
            return CheckResult(self.name, skipped="empty batch" if ctx.n_records == 0 else None)
        pol = ctx.policy
        findings: list[Finding] = []
        table: dict[str, dict[str, Any]] = {}
        for name, base in bl.profile.columns.items():
            col = bp.columns.get(name)
            if col is None or col.kind != base.kind or base.role in ("label",):
                continue
            row: dict[str, Any] | None = None
            if base.kind in ("numeric", "integer") and not (base.kind == "integer" and base.is_categorical):
                row = self._numeric(name, base, bl.profile, bp)
            elif base.role == "text":
                row = self._text(base, col)
            elif base.is_categorical or base.role in ("categorical", "group"):
                row = self._categorical(base, col)
            if row is None:
                continue
            table[name] = {k: v for k, v in row.items() if k != "histogram"}
            if row.get("drifted"):
                sev = Severity.HIGH if row.get("strong") else Severity.MEDIUM
                findings.append(
                    Finding(
                        self.name,
                        "column_drift",
                        sev,
                        f"column {name!r} drifted: {row['why']}",
                        (),
                        {"column": name, **row},
                    )
                )
        del pol
        return CheckResult(self.name, tuple(findings), {"columns": table})

    def _numeric(self, name: str, base: ColumnProfile, bprof: Profile, batch: Profile) -> dict[str, Any] | None:
        a, b = bprof.finite_sample(name), batch.finite_sample(name)
        if a.size < 20 or b.size < 20:
            return None
        pol = self.context.policy
        m = numeric_drift(a, b, base.std)
        reasons = []
        if m["ks_p_value"] < pol.drift_p_value and m["ks_statistic"] >= pol.drift_ks:
            reasons.append(f"KS D={m['ks_statistic']:.3f} (p={m['ks_p_value']:.1e})")
        if m["psi"] >= pol.drift_psi:
            reasons.append(f"PSI={m['psi']:.3f}")
        if m["wasserstein_normed"] >= pol.drift_wasserstein:
            reasons.append(f"Wasserstein/std={m['wasserstein_normed']:.3f}")
        return {
            "type": "numeric",
            **m,
            "drifted": bool(reasons),
            "strong": m["psi"] >= 0.25 or m["ks_statistic"] >= 0.2,
            "why": "; ".join(reasons),
            "histogram": _histogram(a, b),
        }

    def _categorical(self, base: ColumnProfile, col: ColumnProfile) -> dict[str, Any] | None:
        if not col.values:
            return None
        pol = self.context.policy
        chi2, p = chi_square(base.values, col.values)
        js = js_distance(base.values, col.values)
        drifted = js >= pol.drift_js
        return {
            "type": "categorical",
            "chi2": chi2,
            "chi2_p_value": p,
            "js_distance": js,
            "drifted": drifted,
            "strong": js >= 2 * pol.drift_js,
            "why": f"Jensen-Shannon={js:.3f}, chi2 p={p:.1e}",
            "histogram": _cat_histogram(base.values, col.values),
        }

    def _text(self, base: ColumnProfile, col: ColumnProfile) -> dict[str, Any] | None:
        pol = self.context.policy
        js_len = js_distance(base.lengths, col.lengths)
        top_b = dict(sorted(base.tokens.items(), key=lambda kv: -kv[1])[:2000])
        top_a = dict(sorted(col.tokens.items(), key=lambda kv: -kv[1])[:2000])
        js_tok = js_distance(top_b, top_a) if top_a else 0.0
        reasons = []
        if js_len >= pol.drift_js:
            reasons.append(f"length JS={js_len:.3f}")
        if js_tok >= pol.drift_js:
            reasons.append(f"token JS={js_tok:.3f}")
        return {
            "type": "text",
            "length_js": js_len,
            "token_js": js_tok,
            "drifted": bool(reasons),
            "strong": max(js_len, js_tok) >= 2 * pol.drift_js,
            "why": "; ".join(reasons),
        }


@register
class LabelsCheck(Check):
    """Label-distribution shift against the baseline (total variation distance and chi-square)."""

    name = "labels"
    thread_safe = True  # its state is its own (ADR 0104)
    description = "label-distribution shift against the baseline (total variation distance and chi-square)"
    needs_baseline = True

    def applies(self, ctx: Any) -> str | None:
        """Reason to skip (no baseline or no label column), or ``None`` when the check can run."""
        reason = super().applies(ctx)
        if reason:
            return reason
        label = ctx.options.label or ctx.baseline.profile.label
        if not label:
            return "no label column (--label)"
        return None

    def finish(self) -> CheckResult:
        """A HIGH ``label_shift`` finding when the total variation distance reaches the policy's and the
        chi-square test is significant; skipped if the label column is missing on either side.
        """
        ctx = self.context
        assert ctx.baseline is not None
        label = ctx.options.label or ctx.baseline.profile.label
        base_col = ctx.baseline.profile.columns.get(label or "")
        col = ctx.batch_profile.columns.get(label or "") if ctx.batch_profile else None
        if base_col is None or col is None or not col.values or not base_col.values:
            return CheckResult(self.name, skipped=f"label column {label!r} missing from the baseline or the batch")
        tb, ta = sum(base_col.values.values()), sum(col.values.values())
        keys = sorted(set(base_col.values) | set(col.values))
        pb = {k: base_col.values.get(k, 0) / tb for k in keys}
        pa_ = {k: col.values.get(k, 0) / ta for k in keys}
        tvd = 0.5 * sum(abs(pb[k] - pa_[k]) for k in keys)
        chi2, p = chi_square(base_col.values, col.values)
        stats_ = {"label": label, "tvd": tvd, "chi2": chi2, "p_value": p, "baseline": pb, "batch": pa_}
        findings = []
        if tvd >= ctx.policy.label_shift_tvd and p < ctx.policy.drift_p_value:
            moved = sorted(keys, key=lambda k: -abs(pa_[k] - pb[k]))[:3]
            findings.append(
                Finding(
                    self.name,
                    "label_shift",
                    Severity.HIGH,
                    f"label distribution of {label!r} shifted by {fmt_share(tvd)} (total variation); "
                    + ", ".join(f"{short(k, 20)!r} {fmt_share(pb[k])}->{fmt_share(pa_[k])}" for k in moved),
                    (),
                    {**stats_, "histogram": _cat_histogram(base_col.values, col.values)},
                )
            )
        return CheckResult(self.name, tuple(findings), stats_)


@register
class GroupBiasCheck(Check):
    """Label balance per value of each named group column, against the baseline's or across the batch's groups."""

    name = "group_bias"
    thread_safe = True  # its state is its own (ADR 0104)
    description = "label balance per group value (named group columns), against the baseline or across groups"

    def applies(self, ctx: Any) -> str | None:
        """Reason to skip (no ``--group`` or no label column), or ``None`` when the check can run."""
        if not ctx.options.group:
            return "no group column (--group)"
        if not (ctx.options.label or (ctx.baseline and ctx.baseline.profile.label)):
            return "no label column (--label)"
        return None

    def finish(self) -> CheckResult:
        """Findings for groups whose label distribution departs from the
        baseline's or from the other groups'; skipped for an empty batch.
        """
        ctx = self.context
        bp = ctx.batch_profile
        if bp is None or ctx.n_records == 0:
            return CheckResult(self.name, skipped="empty batch")
        findings = []
        table: dict[str, Any] = {}
        base_groups = ctx.baseline.profile.groups if ctx.baseline else {}
        for g in ctx.options.group:
            groups = bp.groups.get(g)
            if not groups:
                continue
            shares = {gv: _shares(labels) for gv, labels in groups.items() if sum(labels.values()) >= 30}
            table[g] = {gv: {"n": sum(groups[gv].values()), "shares": s} for gv, s in shares.items()}
            labels = sorted({k for s in shares.values() for k in s})
            spread = (
                {
                    lab: max(s.get(lab, 0) for s in shares.values()) - min(s.get(lab, 0) for s in shares.values())
                    for lab in labels
                }
                if shares
                else {}
            )
            base = base_groups.get(g, {})
            for gv, s in shares.items():
                if gv not in base or sum(base[gv].values()) < 30:
                    continue
                bs = _shares(base[gv])
                deltas = {lab: s.get(lab, 0) - bs.get(lab, 0) for lab in set(s) | set(bs)}
                worst = max(deltas, key=lambda k: abs(deltas[k]))
                n_g = sum(groups[gv].values())
                p0 = bs.get(worst, 0)
                sd = math.sqrt(max(p0 * (1 - p0), 1e-4) / n_g)
                if abs(deltas[worst]) >= ctx.policy.group_bias_delta and abs(deltas[worst]) / sd >= 4:
                    findings.append(
                        Finding(
                            self.name,
                            "group_label_shift",
                            Severity.HIGH if abs(deltas[worst]) >= 2 * ctx.policy.group_bias_delta else Severity.MEDIUM,
                            f"in group {g}={short(gv, 20)!r} the share of label {short(worst, 20)!r} moved from "
                            f"{fmt_share(p0)} to {fmt_share(s.get(worst, 0))} ({n_g} records)",
                            (),
                            {"group": g, "value": gv, "label": worst, "baseline": bs, "batch": s, "n": n_g},
                        )
                    )
            if not base and spread:
                worst_label = max(spread, key=lambda k: spread[k])
                if spread[worst_label] >= 2 * ctx.policy.group_bias_delta:
                    findings.append(
                        Finding(
                            self.name,
                            "group_imbalance",
                            Severity.INFO,
                            f"share of label {short(worst_label, 20)!r} differs by {fmt_share(spread[worst_label])} "
                            f"across values of {g!r}",
                            (),
                            {"group": g, "label": worst_label, "spread": spread[worst_label]},
                        )
                    )
        return CheckResult(self.name, tuple(findings), {"groups": table})


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}
