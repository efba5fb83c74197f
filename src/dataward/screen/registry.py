"""The screening-check registry: an explicit table of the built-in checks (:class:`dataward.plugins.Registry`).

Importing a check module registers nothing; :func:`register` adds a third-party check (and, on a built-in
class, only checks that the table names it).
"""

from __future__ import annotations

from dataward.plugins import Registry
from dataward.screen.interface import Check, ScreenError

__all__ = ["BUILTIN", "DEFAULT_ORDER", "REGISTRY", "default_checks", "get", "load_all", "names", "register"]

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
    "duplicates": "dataward.screen.near_duplicates:DuplicatesCheck",
    "pii": "dataward.screen.pii:PiiCheck",
    "text_signals": "dataward.screen.textsignals:TextSignalsCheck",
    "intel": "dataward.screen.intel:IntelCheck",
    "licences": "dataward.screen.licences:LicencesCheck",
}
#: the built-ins' order is the default run order (:func:`default_checks`)
DEFAULT_ORDER = tuple(BUILTIN)

#: the one registry of screening checks
REGISTRY: Registry[Check] = Registry("screening check", Check, BUILTIN, error=ScreenError)
#: its lookups (:class:`dataward.plugins.Registry`'s own methods)
register, get, names, load_all = REGISTRY.register, REGISTRY.get, REGISTRY.sorted_names, REGISTRY.classes


def default_checks() -> list[type[Check]]:
    """Every registered check, in a stable order (schema problems first, report-only checks last)."""
    order = {name: i for i, name in enumerate(DEFAULT_ORDER)}
    return sorted(REGISTRY.classes(), key=lambda c: (order.get(c.name, len(order)), c.name))
