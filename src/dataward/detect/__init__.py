"""Poison detection: representations, registered detectors, and the ensemble (:func:`detect`)."""

from __future__ import annotations

import sys
import types
import warnings
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
    """``dataward.detect`` is this package; calling it is the deprecated spelling of ``dataward.detect_poison``.

    The package used to double as the public function ``dataward.detect(...)``. Now ``dataward.detect`` is
    always the package (in every import order) and the function is :func:`dataward.detect_poison` (or
    :func:`dataward.detect.detect`); calling the package still works but warns, until it is removed.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> DetectionReport:
        warnings.warn(
            "calling the package dataward.detect(...) is deprecated; call dataward.detect_poison(...) "
            "(or dataward.detect.detect(...))",
            DeprecationWarning,
            stacklevel=2,
        )
        return detect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
