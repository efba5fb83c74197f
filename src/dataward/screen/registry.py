"""The screening-check registry: checks register themselves by name with :func:`register`."""

from __future__ import annotations

from typing import TypeVar

from dataward.screen.interface import Check, ScreenError

_C = TypeVar("_C", bound=type[Check])
_REGISTRY: dict[str, type[Check]] = {}


def register(cls: _C) -> _C:
    """Class decorator: make a check available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"screening check name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    # Imported for their side effect: each module registers its checks.
    from dataward.screen import (  # noqa: F401
        drift,
        duplicates,
        intel,
        licences,
        outliers,
        pii,
        rules,
        textsignals,
    )


def get(name: str) -> type[Check]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ScreenError(f"unknown screening check {name!r}", advice=f"Known checks: {known}.") from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def default_checks() -> list[type[Check]]:
    """Every registered check, in a stable order (schema problems first, report-only checks last)."""
    _load_builtin()
    order = {name: i for i, name in enumerate(DEFAULT_ORDER)}
    return sorted(_REGISTRY.values(), key=lambda c: (order.get(c.name, len(order)), c.name))


DEFAULT_ORDER = (
    "schema",
    "format",
    "range",
    "missing",
    "new_values",
    "tails",
    "drift",
    "labels",
    "group_bias",
    "outliers",
    "duplicates",
    "pii",
    "text_signals",
    "intel",
    "licences",
)
