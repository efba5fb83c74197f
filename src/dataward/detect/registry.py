"""The detector registry: detectors register themselves by name with :func:`register`."""

from __future__ import annotations

from typing import TypeVar

from dataward.detect.interface import DetectionError, Detector, Modality

_D = TypeVar("_D", bound=type[Detector])
_REGISTRY: dict[str, type[Detector]] = {}
#: detector modules added after the ensemble's built-in list; imported (and so registered) on first lookup
_EXTRA_BUILTIN = ("text_combos", "interactions", "residuals")
_extra_loaded = False


def _load_extra() -> None:
    global _extra_loaded
    if _extra_loaded:
        return
    _extra_loaded = True
    import importlib

    for module in _EXTRA_BUILTIN:
        name = f"dataward.detect.{module}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def register(cls: _D) -> _D:
    """Class decorator: make a detector available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Detector]:
    """The detector class registered as ``name``."""
    _load_extra()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise DetectionError(f"unknown detector {name!r}", advice=f"Known detectors: {known}.") from None


def names() -> list[str]:
    """Every registered detector name, sorted."""
    _load_extra()
    return sorted(_REGISTRY)


def for_modality(modality: Modality) -> list[type[Detector]]:
    """Registered detectors that support ``modality``, in name order."""
    _load_extra()
    return [cls for name, cls in sorted(_REGISTRY.items()) if modality in cls.modalities]
