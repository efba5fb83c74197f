"""The attack simulator's plug-in interface: attacks, their registry, and the ground truth they record.

An attack takes the clean data as a pandas DataFrame plus the column roles (:class:`Roles`), a poisoning
rate, an optional target label, a seed and attack parameters, and returns the poisoned copy together with a
:class:`GroundTruth` (which records were changed or added, and how). Images travel in the same shape: an
image folder is read into a frame with ``path``, ``label`` and ``image`` columns, where ``image`` holds a
uint8 array (H, W) or (H, W, 3). Attacks never modify their input frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.errors import InputError
from dataward.plugins import Registry


class SimulationError(InputError):
    """The attack cannot be applied to this data (no such column, unknown target label, bad rate...)."""

    default_advice = "Check the attack name, --rate, --target and the column options."


@dataclass(frozen=True)
class Roles:
    """Which column plays which part. ``image`` holds decoded uint8 arrays inside a frame."""

    label: str | None = None
    text: str | None = None
    prompt: str | None = None
    response: str | None = None
    messages: str | None = None
    image: str | None = None
    features: tuple[str, ...] | None = None
    id: str | None = None


@dataclass(frozen=True)
class GroundTruth:
    """What an attack did. Indices refer to records of the poisoned data, in its order.

    ``changed`` lists every modified or added record; ``how`` says what happened to each (e.g.
    ``"label 3 -> 7"``, ``"patch added"``, ``"added: near-duplicate of 12"``). ``trigger`` describes a
    backdoor trigger when there is one (location/size/value of a patch, the token, ...).
    """

    attack: str
    n_records: int
    changed: tuple[int, ...]
    how: Mapping[int, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None
    trigger: Mapping[str, Any] | None = None
    ids: Mapping[int, str] = field(default_factory=dict)  # index -> record id, when ids are meaningful
    seed: int = 0
    rate: float = 0.0

    def mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """A boolean mask over the poisoned data's records: True for every changed or added record."""
        out = np.zeros(self.n_records, dtype=bool)
        out[list(self.changed)] = True
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``truth.json`` form (plain JSON types, keys sorted)."""
        return {
            "attack": self.attack,
            "n_records": self.n_records,
            "rate": self.rate,
            "seed": self.seed,
            "target": self.target,
            "trigger": _plain(self.trigger),
            "params": _plain(self.params),
            "changed": list(self.changed),
            "how": {str(k): v for k, v in sorted(self.how.items())},
            "ids": {str(k): v for k, v in sorted(self.ids.items())},
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> GroundTruth:
        """Read :meth:`to_json`'s form back (a ``truth.json``); a malformed file raises :class:`InputError`."""
        try:
            return GroundTruth(
                attack=str(data["attack"]),
                n_records=int(data["n_records"]),
                changed=tuple(int(i) for i in data["changed"]),
                how={int(k): str(v) for k, v in dict(data.get("how", {})).items()},
                params=dict(data.get("params") or {}),
                target=data.get("target"),
                trigger=data.get("trigger"),
                ids={int(k): str(v) for k, v in dict(data.get("ids", {})).items()},
                seed=int(data.get("seed", 0)),
                rate=float(data.get("rate", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"not a dataward ground-truth file ({exc})", advice="Use the truth.json `simulate` wrote."
            ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True, eq=False)
class PoisonResult:
    """An attack's output: the poisoned copy of the data and the ground truth of what changed."""
    data: pd.DataFrame
    truth: GroundTruth


class Attack(ABC):
    """A registered attack. Subclasses set ``name``, ``modalities`` and ``description``."""

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    description: ClassVar[str] = ""
    default_rate: ClassVar[float] = 0.05

    @abstractmethod
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
        """Return a poisoned copy of ``data`` and the ground truth; never modifies ``data``."""


#: the attacks shipped with dataward: name -> "module:Class"
BUILTIN_ATTACKS = {
    "label_flip": "dataward.simulate.label_flips:RandomFlip",
    "targeted_flip": "dataward.simulate.label_flips:TargetedFlip",
    "badnets": "dataward.simulate.images:BadNetsPatch",
    "blended": "dataward.simulate.images:BlendedTrigger",
    "feature_shift": "dataward.simulate.tabular:FeatureShift",
    "clean_label": "dataward.simulate.tabular:CleanLabel",
    "dup_flood": "dataward.simulate.tabular:DuplicateFlood",
    "tabular_trigger": "dataward.simulate.tabular:TabularTrigger",
    "tabular_combo_trigger": "dataward.simulate.tabular:TabularComboTrigger",
    "single_feature": "dataward.simulate.tabular:SingleFeature",
    "text-trigger": "dataward.simulate.text:TextTrigger",
    "instruction-backdoor": "dataward.simulate.text:InstructionBackdoor",
    "text-combo-trigger": "dataward.simulate.text:TextComboTrigger",
}

#: the one registry of attacks (:class:`dataward.plugins.Registry`; importing an attack module registers nothing)
ATTACKS: Registry[Attack] = Registry("attack", Attack, BUILTIN_ATTACKS, error=SimulationError)
#: its lookups (:class:`dataward.plugins.Registry`'s own methods)
register_attack, get_attack, attack_names = ATTACKS.register, ATTACKS.get, ATTACKS.sorted_names


@dataclass(frozen=True, eq=False)
class AttackCall:
    """One :meth:`Attack.apply` call as :class:`SeededAttack` hands it on: the rate already checked,
    ``params`` the attack's own copy, ``rng`` seeded with ``seed`` and not yet drawn from."""

    attack: str
    data: pd.DataFrame
    roles: Roles
    rate: float
    target: str | None
    seed: int
    params: dict[str, Any]
    rng: np.random.Generator

    def label(self) -> str:
        """The label column (``roles.label``), or a :class:`SimulationError` naming the attack."""
        return label_column(self.data, self.roles, self.attack)

    def result(self, out: pd.DataFrame, changed: list[int], how: Mapping[int, str], **truth: Any) -> PoisonResult:
        """The poisoned copy ``out`` and its ground truth; attack, size, seed and rate are filled in."""
        return PoisonResult(
            out,
            GroundTruth(
                attack=self.attack,
                n_records=len(out),
                changed=tuple(changed),
                how=how,
                seed=self.seed,
                rate=self.rate,
                **truth,
            ),
        )


class SeededAttack(Attack):
    """An attack written as :meth:`poison` over an :class:`AttackCall`: :meth:`apply` checks the rate, copies
    the parameters and seeds the generator once, the same way for every built-in attack."""

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
        """Check the rate, then :meth:`poison`; never modifies ``data``."""
        check_rate(rate)
        rng = np.random.default_rng(seed)
        return self.poison(AttackCall(self.name, data, roles, rate, target, seed, dict(params or {}), rng))

    @abstractmethod
    def poison(self, call: AttackCall) -> PoisonResult:
        """Return a poisoned copy of ``call.data`` and the ground truth (:meth:`AttackCall.result`)."""


# ------------------------------------------------------------------------------------- shared helpers


def check_rate(rate: float) -> None:
    """Refuse a poisoning rate outside (0, 1) with advice."""
    if not 0.0 < rate < 1.0:
        raise SimulationError(f"rate {rate} is outside (0, 1)", advice="Pass --rate as a fraction, e.g. 0.05.")


def label_column(data: pd.DataFrame, roles: Roles, attack: str) -> str:
    """The label column an attack needs (``roles.label``), or a :class:`SimulationError` naming the attack."""
    if roles.label is None or roles.label not in data.columns:
        raise SimulationError(f"attack {attack!r} needs a label column", advice="Pass --label COLUMN.")
    return roles.label


def pick(rng: np.random.Generator, candidates: np.ndarray[Any, Any], rate: float, n_total: int) -> list[int]:
    """Choose ``round(rate * n_total)`` (at least one) of ``candidates``, sorted."""
    k = max(1, round(rate * n_total))
    if len(candidates) == 0:
        raise SimulationError("no record is eligible for this attack", advice="Check --target and the data.")
    k = min(k, len(candidates))
    return sorted(int(i) for i in rng.choice(candidates, size=k, replace=False))


def resolve_target(data: pd.DataFrame, label: str, target: str | None) -> Any:
    """The label value ``target`` names (matched as a string), or ``None``."""
    if target is None:
        return None
    for value in pd.unique(data[label]):
        if str(value) == str(target) or (isinstance(value, float) and value.is_integer() and str(int(value)) == target):
            return value
    known = ", ".join(str(v) for v in pd.unique(data[label])[:20])
    raise SimulationError(f"target label {target!r} is not in column {label!r}", advice=f"Known labels: {known}.")
