"""Label-flipping attacks: random flips, and targeted flips (records of a source class relabelled as the target)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.simulate.interface import (
    Attack,
    GroundTruth,
    PoisonResult,
    Roles,
    SimulationError,
    check_rate,
    label_column,
    pick,
    register_attack,
    resolve_target,
)

_LABELLED = frozenset({Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING})


def _flip(
    data: pd.DataFrame, col: str, chosen: list[int], new_values: list[Any], attack: str, **truth: Any
) -> PoisonResult:
    out = data.copy()
    values = list(out[col])
    how: dict[int, str] = {}
    for i, new in zip(chosen, new_values, strict=True):
        how[i] = f"label {values[i]} -> {new}"
        values[i] = new
    out[col] = pd.Series(values, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
    return PoisonResult(out, GroundTruth(attack=attack, n_records=len(out), changed=tuple(chosen), how=how, **truth))


@register_attack
class RandomFlip(Attack):
    name: ClassVar[str] = "label_flip"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED
    description: ClassVar[str] = "flip the labels of a random RATE of records to another random class"

    def apply(
        self,
        data: pd.DataFrame,
        roles: Roles,
        *,
        rate: float,
        target: str | None = None,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> PoisonResult:
        check_rate(rate)
        col = label_column(data, roles, self.name)
        classes = list(pd.unique(data[col]))
        if len(classes) < 2:
            raise SimulationError(f"column {col!r} has a single class", advice="Label flips need two classes.")
        rng = np.random.default_rng(seed)
        chosen = pick(rng, np.arange(len(data)), rate, len(data))
        labels = list(data[col])
        new = []
        for i in chosen:
            others = [c for c in classes if c != labels[i]]
            new.append(others[int(rng.integers(len(others)))])
        return _flip(data, col, chosen, new, self.name, params=dict(params or {}), seed=seed, rate=rate)


@register_attack
class TargetedFlip(Attack):
    name: ClassVar[str] = "targeted_flip"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED
    description: ClassVar[str] = "relabel RATE of all records, taken from a source class (param source), as TARGET"

    def apply(
        self,
        data: pd.DataFrame,
        roles: Roles,
        *,
        rate: float,
        target: str | None = None,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> PoisonResult:
        check_rate(rate)
        col = label_column(data, roles, self.name)
        params = dict(params or {})
        rng = np.random.default_rng(seed)
        classes = list(pd.unique(data[col]))
        if len(classes) < 2:
            raise SimulationError(f"column {col!r} has a single class", advice="Label flips need two classes.")
        tgt = resolve_target(data, col, target) if target is not None else sorted(classes, key=str)[0]
        if "source" in params:
            src = resolve_target(data, col, str(params["source"]))
        else:
            others = [c for c in classes if c != tgt]
            src = sorted(others, key=str)[0]
        candidates = np.flatnonzero((data[col] == src).to_numpy())
        chosen = pick(rng, candidates, rate, len(data))
        return _flip(
            data,
            col,
            chosen,
            [tgt] * len(chosen),
            self.name,
            params={**params, "source": str(src)},
            target=str(tgt),
            seed=seed,
            rate=rate,
        )
