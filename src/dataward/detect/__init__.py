"""Poison detection: representations, registered detectors, and the ensemble (:func:`detect`)."""

from __future__ import annotations

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
