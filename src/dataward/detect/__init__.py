"""Poison detection: representations, registered detectors, and the ensemble (:func:`detect`)."""

from __future__ import annotations

import sys
import types
from typing import Any

from dataward.detect.api import DetectionReport, detect
from dataward.detect.interface import (
    DetectionError,
    Detector,
    DetectorResult,
    Finding,
    Modality,
    Reason,
    Representation,
)
from dataward.detect.registry import register
from dataward.detect.representation import from_arrays, from_frame, load_records

__all__ = [
    "DetectionError",
    "DetectionReport",
    "Detector",
    "DetectorResult",
    "Finding",
    "Modality",
    "Reason",
    "Representation",
    "detect",
    "from_arrays",
    "from_frame",
    "load_records",
    "register",
]


class _CallablePackage(types.ModuleType):
    """``dataward.detect`` is both this package and the public function ``dataward.detect(...)``.

    Once the package is imported, Python binds the attribute ``dataward.detect`` to the package, which
    would shadow the lazily exported function; making the package callable keeps ``dataward.detect(...)``
    working in every import order.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> DetectionReport:
        return detect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
