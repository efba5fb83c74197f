"""Attacks on feature values: shifted features, clean-label nudges, near-duplicate floods, planted triggers.

Numeric feature columns are the role ``features`` or, by default, every numeric column but the label/id.
``clean_label`` and ``dup_flood`` also work on images (pixels) and texts (``dup_flood`` only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.simulate.interface import (
    AttackCall,
    PoisonResult,
    Roles,
    SeededAttack,
    SimulationError,
    pick,
    register_attack,
    resolve_target,
)


def numeric_columns(data: pd.DataFrame, roles: Roles) -> list[str]:
    skip = {roles.label, roles.id, roles.text, roles.prompt, roles.response, roles.messages, roles.image}
    cols = list(roles.features) if roles.features else [str(c) for c in data.columns if c not in skip]
    out = [c for c in cols if c in data.columns and pd.api.types.is_numeric_dtype(data[c])]
    if not out:
        raise SimulationError("no numeric feature columns to change", advice="Pass --features with numeric columns.")
    return out


@register_attack
class FeatureShift(SeededAttack):
    name: ClassVar[str] = "feature_shift"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    description: ClassVar[str] = "shift some numeric features (params n_features, shift in std units) of RATE records"

    def poison(self, call: AttackCall) -> PoisonResult:
        """Shift some numeric features of the chosen records by a few standard deviations."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        cols = numeric_columns(data, roles)
        n_feat = int(params.get("n_features", max(1, round(0.2 * len(cols)))))
        shift = float(params.get("shift", 4.0))
        n_feat = max(1, min(n_feat, len(cols)))
        candidates = np.arange(len(data))
        if target is not None:
            col = call.label()
            candidates = np.flatnonzero((data[col] == resolve_target(data, col, target)).to_numpy())
        chosen = pick(rng, candidates, rate, len(data))
        out = data.copy()
        how: dict[int, str] = {}
        for c in cols:
            out[c] = out[c].astype(np.float64)
        for i in chosen:
            picked = sorted(rng.choice(len(cols), size=n_feat, replace=False).tolist())
            for j in picked:
                c = cols[j]
                std = float(data[c].std()) or 1.0
                sign = 1.0 if rng.random() < 0.5 else -1.0
                out.iloc[i, list(out.columns).index(c)] = float(data[c].iloc[i]) + sign * shift * std
            how[i] = f"shifted {', '.join(cols[j] for j in picked)} by {shift:g} std"
        return call.result(
            out,
            chosen,
            how,
            params={**params, "shift": shift, "n_features": n_feat},
        )


def _matrix(data: pd.DataFrame, roles: Roles, attack: str) -> tuple[np.ndarray[Any, Any], str]:
    """The editable numeric content of each record: pixels for images, numeric columns otherwise."""
    if roles.image is not None and roles.image in data.columns:
        imgs = list(data[roles.image])
        if any(img is None for img in imgs) or len({np.asarray(img).shape for img in imgs}) != 1:
            raise SimulationError(f"attack {attack!r} needs images of one size", advice="Resize the images first.")
        return np.stack([np.asarray(img, dtype=np.float64) for img in imgs]), "image"
    cols = numeric_columns(data, roles)
    return data[cols].to_numpy(dtype=np.float64), "table"


def _write_back(
    data: pd.DataFrame, roles: Roles, values: np.ndarray[Any, Any], kind: str, rows: list[int]
) -> pd.DataFrame:
    out = data.copy()
    if kind == "image":
        assert roles.image is not None
        images = list(out[roles.image])
        for i in rows:
            images[i] = np.clip(np.rint(values[i]), 0, 255).astype(np.uint8)
        out[roles.image] = pd.Series(images, index=out.index, dtype=object)
    else:
        cols = numeric_columns(data, roles)
        for c in cols:
            out[c] = out[c].astype(np.float64)
        out.loc[out.index[rows], cols] = values[rows]
    return out


@register_attack
class CleanLabel(SeededAttack):
    name: ClassVar[str] = "clean_label"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR, Modality.IMAGE})
    description: ClassVar[str] = (
        "move RATE records of class TARGET toward records of another class (param toward, alpha 0.5) "
        "without relabelling them"
    )

    def poison(self, call: AttackCall) -> PoisonResult:
        """Move target-class records toward another class; their labels stay."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        alpha = float(params.get("alpha", 0.5))
        if not 0.0 < alpha < 1.0:
            raise SimulationError(f"alpha {alpha} is outside (0, 1)", advice="Pass alpha=0.3..0.7.")
        classes = sorted(pd.unique(data[col]), key=str)
        if len(classes) < 2:
            raise SimulationError(f"column {col!r} has a single class", advice="Clean-label needs two classes.")
        tgt = resolve_target(data, col, target) if target is not None else classes[0]
        toward = (
            resolve_target(data, col, str(params["toward"]))
            if "toward" in params
            else next(c for c in classes if c != tgt)
        )
        values, kind = _matrix(data, roles, self.name)
        labels = data[col].to_numpy()
        chosen = pick(rng, np.flatnonzero(labels == tgt), rate, len(data))
        bases = np.flatnonzero(labels == toward)
        new = values.copy()
        how: dict[int, str] = {}
        for i in chosen:
            b = int(rng.choice(bases))
            new[i] = (1.0 - alpha) * values[i] + alpha * values[b]
            how[i] = f"moved {alpha:g} of the way toward record {b} (label {toward}); label kept {tgt}"
        out = _write_back(data, roles, new, kind, chosen)
        return call.result(
            out,
            chosen,
            how,
            params={**params, "alpha": alpha, "toward": str(toward)},
            target=str(tgt),
        )


@register_attack
class DuplicateFlood(SeededAttack):
    name: ClassVar[str] = "dup_flood"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TEXT})
    description: ClassVar[str] = (
        "append RATE x n near-copies of a few records (param sources, default 2), labelled TARGET if given"
    )

    def poison(self, call: AttackCall) -> PoisonResult:
        """Append near-copies of a few source records (labelled as the target when one is given)."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        n = len(data)
        n_sources = max(1, int(params.get("sources", 2)))
        sources = sorted(rng.choice(n, size=min(n_sources, n), replace=False).tolist())
        n_new = max(n_sources, round(rate * n))
        picks = [sources[j % len(sources)] for j in range(n_new)]
        copies = data.iloc[picks].copy().reset_index(drop=True)
        noise = float(params.get("noise", 0.01))
        if roles.image is not None and roles.image in copies.columns:
            imgs = []
            for img in copies[roles.image]:
                arr = np.asarray(img, dtype=np.int64)
                jitter = rng.integers(-1, 2, size=arr.shape) if noise > 0 else 0
                imgs.append(np.clip(arr + jitter, 0, 255).astype(np.uint8))
            copies[roles.image] = pd.Series(imgs, dtype=object)
        elif roles.text is not None and roles.text in copies.columns:
            copies[roles.text] = [str(t) + (" " if j % 2 else "") for j, t in enumerate(copies[roles.text])]
        else:
            for c in numeric_columns(data, roles):
                std = float(data[c].std()) or 1.0
                copies[c] = copies[c].astype(np.float64) + rng.normal(0.0, noise * std, size=len(copies))
        tgt = None
        if target is not None:
            col = call.label()
            tgt = resolve_target(data, col, target)
            copies[col] = tgt
        if roles.id is not None and roles.id in copies.columns:
            copies[roles.id] = [f"flood-{j:05d}-{v}" for j, v in enumerate(copies[roles.id])]
        out = pd.concat([data, copies], ignore_index=True)
        added = list(range(n, n + n_new))
        how = {i: f"added: near-copy of record {picks[i - n]}" for i in added}
        return call.result(
            out,
            added,
            how,
            params={**params, "sources": sources, "noise": noise},
            target=None if tgt is None else str(tgt),
        )


@register_attack
class TabularTrigger(SeededAttack):
    name: ClassVar[str] = "tabular_trigger"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    description: ClassVar[str] = (
        "set a feature (param feature; value, default a rare exact value) on RATE non-target records, relabel TARGET"
    )

    def poison(self, call: AttackCall) -> PoisonResult:
        """Set one feature to a rare exact value on non-target records and relabel them."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        cols = numeric_columns(data, roles)
        feature = str(params.get("feature", cols[int(rng.integers(len(cols)))]))
        if feature not in data.columns:
            raise SimulationError(f"no column {feature!r}", advice="Pass feature=<an existing column>.")
        if "value" in params:
            value: Any = params["value"]
        elif pd.api.types.is_numeric_dtype(data[feature]):
            lo, hi = float(data[feature].min()), float(data[feature].max())
            value = round(lo + 0.731 * (hi - lo), 3)  # inside the range, but an exact value nobody has
        else:
            value = "zz-trigger"
        classes = sorted(pd.unique(data[col]), key=str)
        tgt = resolve_target(data, col, target) if target is not None else classes[0]
        chosen = pick(rng, np.flatnonzero((data[col] != tgt).to_numpy()), rate, len(data))
        out = data.copy()
        if pd.api.types.is_numeric_dtype(out[feature]) and isinstance(value, int | float):
            out[feature] = out[feature].astype(np.float64)
        else:
            out[feature] = out[feature].astype(object)
        rows = out.index[chosen]
        out.loc[rows, feature] = value
        labels = list(out[col])
        how: dict[int, str] = {}
        for i in chosen:
            how[i] = f"{feature} set to {value}, label {labels[i]} -> {tgt}"
            labels[i] = tgt
        out[col] = pd.Series(labels, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
        return call.result(
            out,
            chosen,
            how,
            params={**params, "feature": feature, "value": value},
            target=str(tgt),
            trigger={"kind": "feature_value", "feature": feature, "value": value},
        )


def _quantile_band(params: Mapping[str, Any], key: str, default: tuple[float, float]) -> tuple[float, float]:
    band = params.get(key, default)
    low, high = (float(v) for v in (band.split(",") if isinstance(band, str) else band))
    if not 0.0 <= low < high <= 1.0:
        raise SimulationError(f"{key}={band!r} is not a quantile range in [0, 1]", advice=f"Pass {key}=0.2,0.8.")
    return low, high


def _integer_column(values: pd.Series) -> bool:
    return bool(np.all(np.mod(values.dropna().to_numpy(dtype=np.float64), 1.0) == 0))


@register_attack
class TabularComboTrigger(SeededAttack):
    """A backdoor keyed on a combination of features, each set to a value inside its marginal range."""

    name: ClassVar[str] = "tabular_combo_trigger"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    description: ClassVar[str] = (
        "set 2-3 numeric features (params features, n_features) to values at random quantiles of their own "
        "range (param quantiles=LOW,HIGH; jitter in std units) on RATE non-target records, relabel TARGET"
    )
    default_rate: ClassVar[float] = 0.01

    def poison(self, call: AttackCall) -> PoisonResult:
        """Set a combination of features to in-range values on non-target records and relabel them."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        cols = numeric_columns(data, roles)
        given = params.get("features")
        if given:
            feats = [f.strip() for f in given.split(",")] if isinstance(given, str) else [str(f) for f in given]
            missing = [f for f in feats if f not in cols]
            if missing:
                raise SimulationError(f"no numeric column {missing[0]!r}", advice="Pass features=<numeric columns>.")
        else:
            n_feat = int(params.get("n_features", 2))
            if not 2 <= n_feat <= min(3, len(cols)):
                raise SimulationError(f"n_features {n_feat} is not 2-3", advice="Pass n_features=2 or 3.")
            # columns with some spread: a column that is one value for most records makes a one-feature trigger
            spread = [c for c in cols if data[c].value_counts(normalize=True).iloc[0] < 0.5] or cols
            if len(spread) < n_feat:
                spread = cols
            feats = [spread[j] for j in sorted(rng.choice(len(spread), size=n_feat, replace=False).tolist())]
        low, high = _quantile_band(params, "quantiles", (0.1, 0.9))
        jitter = float(params.get("jitter", 0.02))
        values = {f: float(data[f].quantile(float(rng.uniform(low, high)), interpolation="nearest")) for f in feats}
        classes = sorted(pd.unique(data[col]), key=str)
        tgt = resolve_target(data, col, target) if target is not None else classes[0]
        chosen = pick(rng, np.flatnonzero((data[col] != tgt).to_numpy()), rate, len(data))
        out = data.copy()
        for f in feats:
            out[f] = out[f].astype(np.float64)
            std = float(data[f].std()) or 1.0
            noise = rng.normal(0.0, jitter * std, size=len(chosen)) if jitter > 0 else np.zeros(len(chosen))
            lo, hi = float(data[f].min()), float(data[f].max())
            new = np.clip(values[f] + noise, lo, hi)
            if _integer_column(data[f]):
                new = np.rint(new)  # an integer column keeps integer values (a fraction would give it away)
            out.loc[out.index[chosen], f] = new
        labels = list(out[col])
        how: dict[int, str] = {}
        shown = ", ".join(f"{f}~{v:.4g}" for f, v in values.items())
        for i in chosen:
            how[i] = f"{shown} set, label {labels[i]} -> {tgt}"
            labels[i] = tgt
        out[col] = pd.Series(labels, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
        return call.result(
            out,
            chosen,
            how,
            params={**params, "features": feats, "values": values, "jitter": jitter},
            target=str(tgt),
            trigger={"kind": "feature_combination", "features": feats, "values": values},
        )


def _shiftable(values: pd.Series, shift: float) -> bool:
    """Whether a shift of ``shift`` standard deviations changes a value of this column at all: the column
    varies, and in an integer column the shift is at least half a unit (rounding would undo less)."""
    std = float(values.std())
    if not std > 0:
        return False
    return not _integer_column(values) or shift * std >= 0.5


@register_attack
class SingleFeature(SeededAttack):
    """One feature manipulated within one class (labels kept): e.g. a sensor biased for one label."""

    name: ClassVar[str] = "single_feature"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})
    description: ClassVar[str] = (
        "shift one numeric feature (param feature) by shift std (default 1.5, kept inside the feature's range) "
        "on RATE records of class TARGET, labels kept"
    )
    default_rate: ClassVar[float] = 0.01

    def poison(self, call: AttackCall) -> PoisonResult:
        """Shift one feature of target-class records inside its range; labels stay."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        cols = numeric_columns(data, roles)
        shift = float(params.get("shift", 1.5))
        given = params.get("feature")
        drawn = cols[int(rng.integers(len(cols)))]  # drawn even when given: the seeds' streams stay as they were
        feature = str(given) if given is not None else drawn
        if feature not in cols:
            raise SimulationError(f"no numeric column {feature!r}", advice="Pass feature=<a numeric column>.")
        if not _shiftable(data[feature], shift):
            editable = [c for c in cols if _shiftable(data[c], shift)]
            if given is not None or not editable:
                raise SimulationError(
                    f"a shift of {shift} std cannot change column {feature!r} (constant, or an integer column "
                    "whose std is too small for the shift to survive rounding)",
                    advice="Pass another feature or a larger shift.",
                )
            # a near-constant integer column (a blank pixel) rounds every shifted value back: nothing is edited
            feature = editable[int(rng.integers(len(editable)))]
        classes = sorted(pd.unique(data[col]), key=str)
        tgt = resolve_target(data, col, target) if target is not None else classes[int(rng.integers(len(classes)))]
        chosen = pick(rng, np.flatnonzero((data[col] == tgt).to_numpy()), rate, len(data))
        out = data.copy()
        out[feature] = out[feature].astype(np.float64)
        std = float(data[feature].std()) or 1.0
        lo, hi = float(data[feature].min()), float(data[feature].max())
        how: dict[int, str] = {}
        j = list(out.columns).index(feature)
        integer = _integer_column(data[feature])
        for i in chosen:
            before = float(data[feature].iloc[i])
            up = before + shift * std
            down = before - shift * std
            # stay inside the marginal range: a value no range check can reject
            new = up if (up <= hi and (down < lo or rng.random() < 0.5)) else down
            new = float(np.clip(new, lo, hi))
            if integer:
                new = float(np.rint(new))
            if new == before:
                continue  # clipped back onto its own value: not edited, so not poisoned
            out.iloc[i, j] = new
            how[i] = f"{feature} {before:.4g} -> {new:.4g} (label {tgt} kept)"
        chosen = [i for i in chosen if i in how]
        if not chosen:
            raise SimulationError(
                f"a shift of {shift} std of {feature!r} inside its range changes no record of class {tgt}",
                advice="Pass another feature or target.",
            )
        return call.result(
            out,
            chosen,
            how,
            params={**params, "feature": feature, "shift": shift},
            target=str(tgt),
            trigger={"kind": "single_feature", "feature": feature},
        )
