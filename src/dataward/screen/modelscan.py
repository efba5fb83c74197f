"""Compatibility shim: checkpoint scanning lives in :mod:`dataward.modelscan` (docs/model-scanning.md)."""

from __future__ import annotations

from dataward.modelscan import DEFAULT_GLOBALS, AllowList, ModelScanResult, iter_results, read_pickle, scan_model
from dataward.modelscan.scanner import CHECK

#: the default trusted globals (module, name); scikit-learn estimators are added at run time
ALLOWED_GLOBALS = DEFAULT_GLOBALS

__all__ = ["ALLOWED_GLOBALS", "CHECK", "AllowList", "ModelScanResult", "iter_results", "read_pickle", "scan_model"]
