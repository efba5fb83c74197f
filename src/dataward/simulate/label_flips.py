"""Label-flipping attacks: random flips, and targeted flips (records of a source class relabelled as the target)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.simulate.interface import (
    AttackCall,
    PoisonResult,
    SeededAttack,
    SimulationError,
    pick,
    register_attack,
    resolve_target,
)

_LABELLED = frozenset({Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING})


def _flip(call: AttackCall, col: str, chosen: list[int], new_values: list[Any], **truth: Any) -> PoisonResult:
    data = call.data
    out = data.copy()
    values = list(out[col])
    how: dict[int, str] = {}
    for i, new in zip(chosen, new_values, strict=True):
        how[i] = f"label {values[i]} -> {new}"
        values[i] = new
    out[col] = pd.Series(values, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
    return call.result(out, chosen, how, **truth)


@register_attack
class RandomFlip(SeededAttack):
    name: ClassVar[str] = "label_flip"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED
    description: ClassVar[str] = "flip the labels of a random RATE of records to another random class"

    def poison(self, call: AttackCall) -> PoisonResult:
        """Flip the labels of the chosen records, each to another random class."""
        data, params, rng = call.data, call.params, call.rng
        rate = call.rate
        col = call.label()
        classes = list(pd.unique(data[col]))
        if len(classes) < 2:
            raise SimulationError(f"column {col!r} has a single class", advice="Label flips need two classes.")
        chosen = pick(rng, np.arange(len(data)), rate, len(data))
        labels = list(data[col])
        new = []
        for i in chosen:
            others = [c for c in classes if c != labels[i]]
            new.append(others[int(rng.integers(len(others)))])
        return _flip(call, col, chosen, new, params=params)


@register_attack
class TargetedFlip(SeededAttack):
    name: ClassVar[str] = "targeted_flip"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED
    description: ClassVar[str] = "relabel RATE of all records, taken from a source class (param source), as TARGET"

    def poison(self, call: AttackCall) -> PoisonResult:
        """Relabel records of the source class as the target."""
        data, params, rng = call.data, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
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
        return _flip(call, col, chosen, [tgt] * len(chosen), params={**params, "source": str(src)}, target=str(tgt))
