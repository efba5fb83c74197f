"""The screening-check registry: an explicit table of the built-in checks (:class:`dataward.plugins.Registry`).

Importing a check module registers nothing; :func:`register` adds a third-party check (and, on a built-in
class, only checks that the table names it).
"""

from __future__ import annotations

from typing import TypeVar

from dataward.plugins import Registry
from dataward.screen.interface import Check, ScreenError

__all__ = ["BUILTIN", "DEFAULT_ORDER", "REGISTRY", "default_checks", "get", "load_all", "names", "register"]

_C = TypeVar("_C", bound=type[Check])

#: the checks shipped with dataward: name -> "module:Class"
BUILTIN = {
    "schema": "dataward.screen.rules:SchemaCheck",
    "format": "dataward.screen.rules:FormatCheck",
    "range": "dataward.screen.rules:RangeCheck",
    "missing": "dataward.screen.rules:MissingCheck",
    "new_values": "dataward.screen.rules:NewValuesCheck",
    "tails": "dataward.screen.rules:TailsCheck",
    "drift": "dataward.screen.drift:DriftCheck",
    "labels": "dataward.screen.drift:LabelsCheck",
    "group_bias": "dataward.screen.drift:GroupBiasCheck",
    "outliers": "dataward.screen.outliers:OutliersCheck",
    "duplicates": "dataward.screen.duplicates:DuplicatesCheck",
    "pii": "dataward.screen.pii:PiiCheck",
    "text_signals": "dataward.screen.textsignals:TextSignalsCheck",
    "intel": "dataward.screen.intel:IntelCheck",
    "licences": "dataward.screen.licences:LicencesCheck",
}

#: the one registry of screening checks
REGISTRY: Registry[Check] = Registry("screening check", Check, BUILTIN, error=ScreenError)


def register(cls: _C) -> _C:
    """Class decorator: make a check available under ``cls.name``."""
    return REGISTRY.register(cls)


def get(name: str) -> type[Check]:
    """The check class registered as ``name`` (unknown: :class:`ScreenError` naming the known checks)."""
    return REGISTRY.get(name)


def names() -> list[str]:
    """Every registered check name, sorted."""
    return sorted(REGISTRY.names())


def load_all() -> list[type[Check]]:
    """Import every check now (the screening API does this at import, so a run is not charged for it)."""
    return REGISTRY.classes()


def default_checks() -> list[type[Check]]:
    """Every registered check, in a stable order (schema problems first, report-only checks last)."""
    order = {name: i for i, name in enumerate(DEFAULT_ORDER)}
    return sorted(REGISTRY.classes(), key=lambda c: (order.get(c.name, len(order)), c.name))


DEFAULT_ORDER = tuple(BUILTIN)
