"""The attack simulator: poisoned copies of clean data with the ground truth of what was changed.

Use :func:`simulate` on a DataFrame (images as uint8 arrays in the image column), or
:func:`dataward.simulate.io.simulate_file` on a file / image folder. Attacks register themselves with
:func:`register_attack`; :func:`attack_names` lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dataward.simulate.interface import (
    Attack,
    GroundTruth,
    PoisonResult,
    Roles,
    SimulationError,
    attack_names,
    get_attack,
    register_attack,
)

__all__ = [
    "Attack",
    "GroundTruth",
    "PoisonResult",
    "Roles",
    "SimulationError",
    "attack_names",
    "get_attack",
    "register_attack",
    "simulate",
]


def simulate(
    data: pd.DataFrame,
    attack: str,
    roles: Roles,
    *,
    rate: float | None = None,
    target: str | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> PoisonResult:
    """Apply the attack named ``attack`` to ``data`` (not modified) and return the poisoned copy + truth."""
    cls = get_attack(attack)
    return cls().apply(
        data, roles, rate=cls.default_rate if rate is None else rate, target=target, seed=seed, params=params
    )
