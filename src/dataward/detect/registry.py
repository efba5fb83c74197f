"""The detector registry: detectors register themselves by name with :func:`register`."""

from __future__ import annotations

from typing import TypeVar

from dataward.detect.interface import DetectionError, Detector, Modality

_D = TypeVar("_D", bound=type[Detector])
_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: _D) -> _D:
    """Class decorator: make a detector available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Detector]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise DetectionError(f"unknown detector {name!r}", advice=f"Known detectors: {known}.") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def for_modality(modality: Modality) -> list[type[Detector]]:
    """Registered detectors that support ``modality``, in name order."""
    return [cls for name, cls in sorted(_REGISTRY.items()) if modality in cls.modalities]
