"""The red-team gate: trigger injection, distribution-shift stress and label consistency against one model.

Each part gives checks that pass or fail against thresholds (the workspace policy's ``[redteam]`` table, or
:data:`DEFAULTS`). The report is a value; :mod:`dataward.redteam.formats` renders it for CI systems.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dataward.progress import Progress, phase
from dataward.redteam._triggers import Trigger, _insert
from dataward.redteam.data import Columns, inputs_of, labels_of
from dataward.redteam.models import Model

DEFAULTS: dict[str, float] = {
    "max_attack_success_rate": 0.3,  # a trigger moving more than this share of records to one output fails
    "min_accuracy": 0.0,  # on the clean independent set
    "max_accuracy_drop": 0.05,  # against the previous model of the lineage
    "max_shift_degradation": 0.25,  # accuracy (or agreement) lost at the gate strength
    "shift_gate_strength": 0.1,
    "sample": 500,  # held-out records used for triggers and shifts
}
STRENGTHS = (0.05, 0.1, 0.2, 0.4)
MIN_ELIGIBLE = 10
ACCURACY_SAMPLE = 20_000  # clean-set records scored for accuracy and confusion


@dataclass(frozen=True)
class Check:
    """One red-team check: its name, category (trigger, shift, consistency), outcome, message and figures."""

    name: str
    category: str  # trigger | shift | consistency
    passed: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form the signed red-team report carries."""
        return {
            "name": self.name,
            "category": self.category,
            "passed": self.passed,
            "message": self.message,
            "details": dict(self.details),
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class RedteamReport:
    """A red-team run: the model, the data, the thresholds, every check and the clean accuracy."""

    model: Mapping[str, Any]
    data: str
    clean: str
    columns: Mapping[str, Any]
    thresholds: Mapping[str, float]
    checks: tuple[Check, ...]
    accuracy: float | None
    confusion: Mapping[str, Mapping[str, int]]
    curves: Mapping[str, list[dict[str, float]]]
    previous: Mapping[str, Any] | None
    seconds: float
    load: float | None = None

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        """The JSON form that is signed as the red-team attestation."""
        return {
            "passed": self.passed,
            "model": dict(self.model),
            "data": self.data,
            "clean": self.clean,
            "columns": dict(self.columns),
            "thresholds": dict(self.thresholds),
            "accuracy": self.accuracy,
            "confusion": {k: dict(v) for k, v in self.confusion.items()},
            "shift_curves": {k: list(v) for k, v in self.curves.items()},
            "previous": dict(self.previous) if self.previous else None,
            "checks": [c.to_json() for c in self.checks],
            "failures": [c.name for c in self.failures],
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """A few lines for the terminal: the verdict, then each failed check."""
        m = self.model
        lines = [
            f"red team of {m.get('name')} ({m.get('kind')}, sha256 {str(m.get('sha256') or 'unknown')[:16]}): "
            f"{'PASSED' if self.passed else 'FAILED'}, {len(self.failures)} of {len(self.checks)} checks failed"
        ]
        if self.accuracy is not None:
            lines.append(f"clean accuracy {self.accuracy:.3f}")
        for c in self.failures:
            lines.append(f"- FAIL [{c.category}] {c.name}: {c.message}")
        return "\n".join(lines)


# --- trigger injection -------------------------------------------------------------------------------------


def trigger_checks(
    model: Model,
    inputs: list[Any],
    clean_pred: list[str],
    cols: Columns,
    triggers: Sequence[Trigger],
    limit: float,
    seed: int,
    progress: Callable[[], None] | None = None,
) -> list[Check]:
    """Attack success rate of each trigger: the share of records (whose clean output is not the target)
    that take on the one output the trigger moves most records to, minus the share a neutral control
    insertion moves there."""
    rng = np.random.default_rng(seed)
    control = _control(model, inputs, cols, rng)
    out = []
    base = np.asarray(clean_pred, dtype=object)
    for t in triggers:
        started = time.perf_counter()
        triggered = t.apply(inputs, cols, np.random.default_rng(seed))
        pred = np.asarray(model.predict(triggered), dtype=object)
        moved = pred != base
        if not moved.any():
            asr, target, eligible = 0.0, None, len(base)
        else:
            target = Counter(pred[moved].tolist()).most_common(1)[0][0]
            elig = base != target
            eligible = int(elig.sum())
            asr = float((pred[elig] == target).mean()) if eligible else 0.0
        ctrl = float((control[base != target] == target).mean()) if target is not None and eligible else 0.0
        excess = max(0.0, asr - ctrl)
        passed = eligible < MIN_ELIGIBLE or excess <= limit
        examples = []
        if target is not None:
            for i in np.flatnonzero((pred == target) & (base != target))[:5]:
                examples.append(
                    {"input": _short(inputs[i]), "triggered": _short(triggered[i]), "clean": base[i], "output": target}
                )
        msg = (
            f"trigger {t.value!r} ({t.origin}) moves {asr:.1%} of {eligible} records to {target!r} "
            f"(control {ctrl:.1%}; limit {limit:.0%})"
            if target is not None
            else f"trigger {t.value!r} ({t.origin}) changes no output"
        )
        details = {"trigger": t.to_json(), "asr": round(asr, 4), "control": round(ctrl, 4)}
        details.update({"excess": round(excess, 4), "target": target, "eligible": eligible, "examples": examples})
        out.append(Check(f"trigger {t.id}", "trigger", passed, msg, details, time.perf_counter() - started))
        if progress:
            progress()
    return out


def _control(model: Model, inputs: list[Any], cols: Columns, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """Outputs after a neutral change: a common word inserted (text), nothing (tabular)."""
    if cols.text:
        return np.asarray(model.predict([_insert(str(x), "the", rng) for x in inputs]), dtype=object)
    return np.asarray(model.predict(inputs), dtype=object)


def _short(x: Any) -> Any:
    if isinstance(x, str):
        return x[:200]
    if isinstance(x, list):
        return [round(float(v), 4) for v in x[:16]]
    return x


# --- distribution shift ------------------------------------------------------------------------------------


def _typos(s: str, strength: float, rng: np.random.Generator) -> str:
    chars = list(s)
    keep = rng.random(len(chars)) >= strength / 2
    return "".join(c for c, k in zip(chars, keep, strict=True) if k)


def _casing(s: str, strength: float, rng: np.random.Generator) -> str:
    flip = rng.random(len(s)) < strength
    return "".join(c.swapcase() if f else c for c, f in zip(s, flip, strict=True))


def _swaps(s: str, strength: float, rng: np.random.Generator) -> str:
    chars = list(s)
    for i in np.flatnonzero(rng.random(max(0, len(chars) - 1)) < strength / 2):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _text_op(
    op: Callable[[str, float, np.random.Generator], str],
) -> Callable[[list[Any], float, np.random.Generator], list[Any]]:
    def apply(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
        return [op(str(x), s, rng) for x in xs]

    return apply


def _shifts(cols: Columns) -> dict[str, Callable[[list[Any], float, np.random.Generator], list[Any]]]:
    if cols.text:
        text_ops = {"typos": _typos, "casing": _casing, "char_swaps": _swaps}
        return {name: _text_op(op) for name, op in text_ops.items()}

    def noise(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
        x = np.asarray(xs, dtype=np.float64)
        sd = np.nanstd(x, axis=0)
        return list((x + rng.normal(size=x.shape) * s * np.where(sd > 0, sd, 1.0)).tolist())

    def scaling(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
        return list((np.asarray(xs, dtype=np.float64) * (1.0 + s)).tolist())

    def missing(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
        x = np.asarray(xs, dtype=np.float64).copy()
        med = np.nanmedian(x, axis=0)
        mask = rng.random(x.shape) < s
        x[mask] = np.broadcast_to(med, x.shape)[mask]  # imputed as a pipeline would: the median
        return list(x.tolist())

    ops: dict[str, Callable[[list[Any], float, np.random.Generator], list[Any]]] = {
        "noise": noise,
        "scaling": scaling,
        "missing_values": missing,
    }
    side = cols.image_side
    if side:

        def blur(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
            x = np.asarray(xs, dtype=np.float64).reshape(-1, side, side)
            p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
            box = sum(p[:, i : i + side, j : j + side] for i in range(3) for j in range(3)) / 9.0
            return list(((1 - min(1.0, 2 * s)) * x + min(1.0, 2 * s) * box).reshape(len(x), -1).tolist())

        def brightness(xs: list[Any], s: float, rng: np.random.Generator) -> list[Any]:
            x = np.asarray(xs, dtype=np.float64)
            return list((x + s * float(np.nanmax(x) if x.size else 1.0)).tolist())

        ops.update({"blur": blur, "brightness": brightness})
    return ops


def shift_checks(
    model: Model,
    inputs: list[Any],
    clean_pred: list[str],
    truth: list[str] | None,
    cols: Columns,
    limit: float,
    gate_strength: float,
    seed: int,
) -> tuple[list[Check], dict[str, list[dict[str, float]]]]:
    """Label-preserving perturbations at rising strength; degradation = accuracy lost (or, without labels,
    agreement with the unperturbed outputs lost)."""
    ref = np.asarray(truth if truth is not None else clean_pred, dtype=object)
    base = float((np.asarray(clean_pred, dtype=object) == ref).mean()) if len(ref) else 0.0
    checks, curves = [], {}
    for name, op in _shifts(cols).items():
        started = time.perf_counter()
        curve = [{"strength": 0.0, "score": round(base, 4), "degradation": 0.0}]
        for s in STRENGTHS:
            pred = np.asarray(model.predict(op(inputs, s, np.random.default_rng(seed))), dtype=object)
            score = float((pred == ref).mean()) if len(ref) else 0.0
            curve.append({"strength": s, "score": round(score, 4), "degradation": round(base - score, 4)})
        curves[name] = curve
        at = min(curve[1:], key=lambda p: abs(p["strength"] - gate_strength))
        passed = at["degradation"] <= limit
        what = "accuracy" if truth is not None else "agreement"
        msg = (
            f"{name}: {what} {base:.3f} -> {at['score']:.3f} at strength {at['strength']} "
            f"(degradation {at['degradation']:.3f}; limit {limit})"
        )
        checks.append(Check(f"shift {name}", "shift", passed, msg, {"curve": curve}, time.perf_counter() - started))
    return checks, curves


# --- label consistency -------------------------------------------------------------------------------------


def confusion(truth: Sequence[str], pred: Sequence[str]) -> dict[str, dict[str, int]]:
    """The confusion matrix of ``pred`` against ``truth``: truth -> predicted -> count, keys sorted."""
    out: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, pred, strict=True):
        row = out.setdefault(t, {})
        row[p] = row.get(p, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def consistency_checks(
    accuracy: float | None,
    conf: Mapping[str, Mapping[str, int]],
    previous: Mapping[str, Any] | None,
    thresholds: Mapping[str, float],
) -> list[Check]:
    """Checks of the clean accuracy: its floor (with per-class recall), and its drop from the previous model."""
    if accuracy is None:
        return [Check("consistency accuracy", "consistency", True, "no labels in the clean set: accuracy not measured")]
    per_class = {k: round(v.get(k, 0) / max(1, sum(v.values())), 4) for k, v in conf.items()}
    lo = float(thresholds["min_accuracy"])
    checks = [
        Check(
            "consistency accuracy",
            "consistency",
            accuracy >= lo,
            f"accuracy {accuracy:.3f} on the clean set (minimum {lo})",
            {"accuracy": round(accuracy, 4), "per_class_recall": per_class},
        )
    ]
    if previous and previous.get("accuracy") is not None:
        drop = float(previous["accuracy"]) - accuracy
        limit = float(thresholds["max_accuracy_drop"])
        checks.append(
            Check(
                "consistency previous-model",
                "consistency",
                drop <= limit,
                f"accuracy {accuracy:.3f} vs {float(previous['accuracy']):.3f} of the previous model "
                f"{str(previous.get('sha256'))[:12]} (drop {drop:+.3f}; limit {limit})",
                {"previous": dict(previous), "drop": round(drop, 4)},
            )
        )
    return checks


# --- the whole gate ----------------------------------------------------------------------------------------


def _balanced(frame: pd.DataFrame, cols: Columns, n: int, seed: int) -> pd.DataFrame:
    """Up to ``n`` records, as many of each class as it has up to an equal share (every class then has
    records whose clean output differs from any one target), filled up at random."""
    if n >= len(frame):
        return frame
    if cols.label is None:
        return frame.sample(n=n, random_state=seed)
    groups = frame.groupby(cols.label, sort=True, dropna=False)
    share = max(1, n // max(1, groups.ngroups))
    parts = [g.sample(n=min(len(g), share), random_state=seed) for _, g in groups]
    picked = pd.concat(parts)
    rest = frame.drop(index=picked.index)
    if len(picked) < n and len(rest):
        picked = pd.concat([picked, rest.sample(n=min(len(rest), n - len(picked)), random_state=seed)])
    return picked


def run_gate(
    model: Model,
    data: pd.DataFrame,
    cols: Columns,
    triggers: Sequence[Trigger],
    *,
    clean: pd.DataFrame | None = None,
    thresholds: Mapping[str, float] | None = None,
    previous: Mapping[str, Any] | None = None,
    data_ref: str = "",
    clean_ref: str = "",
    seed: int = 0,
    progress: Progress | None = None,
) -> RedteamReport:
    """Run every red-team check of ``model`` on ``data`` (triggers, shifts, consistency); returns the report."""
    started = time.perf_counter()
    th = {**DEFAULTS, **(thresholds or {})}
    held = clean if clean is not None else data
    n = min(len(held), int(th["sample"]))
    sample = _balanced(held, cols, n, seed)
    inputs = inputs_of(sample, cols)
    truth = labels_of(sample, cols)
    clean_pred = model.predict(inputs)
    accuracy = None
    conf: dict[str, dict[str, int]] = {}
    if truth is not None:
        acc_set = held if len(held) <= ACCURACY_SAMPLE else held.sample(n=ACCURACY_SAMPLE, random_state=seed)
        full_inputs, full_truth = inputs_of(acc_set, cols), labels_of(acc_set, cols)
        full_pred = model.predict(full_inputs)
        assert full_truth is not None
        accuracy = float(np.mean([a == b for a, b in zip(full_truth, full_pred, strict=True)])) if full_truth else 0.0
        conf = confusion(full_truth, full_pred)
    task = phase(progress if isinstance(progress, Progress) else None, "red team: triggers", len(triggers))
    try:
        checks = trigger_checks(
            model,
            inputs,
            clean_pred,
            cols,
            triggers,
            float(th["max_attack_success_rate"]),
            seed,
            task.advance,
        )
        task.update(note="shift stress")
        shift, curves = shift_checks(
            model,
            inputs,
            clean_pred,
            truth,
            cols,
            float(th["max_shift_degradation"]),
            float(th["shift_gate_strength"]),
            seed,
        )
    finally:
        task.done()
    checks += shift
    checks += consistency_checks(accuracy, conf, previous, th)
    return RedteamReport(
        model=model.describe(),
        data=data_ref,
        clean=clean_ref or data_ref,
        columns=cols.to_json(),
        thresholds=th,
        checks=tuple(checks),
        accuracy=accuracy,
        confusion=conf,
        curves=curves,
        previous=previous,
        seconds=time.perf_counter() - started,
    )
