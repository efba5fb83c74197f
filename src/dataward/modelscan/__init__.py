"""Checkpoint scanning without loading: every format a file can be read as, judged against an allow-list.

See ``docs/model-scanning.md``. Public API: :func:`scan_model`, :class:`ModelScanResult`, :class:`AllowList`,
:func:`read_pickle` (the static pickle reader) and :data:`DEFAULT_GLOBALS`.
"""

from __future__ import annotations

from dataward.modelscan._pickle import Global, PickleReading, read_pickle
from dataward.modelscan.allowlist import DEFAULT_GLOBALS, AllowList, parse_allow
from dataward.modelscan.scanner import CHECK, Limits, ModelScanResult, iter_results, scan_model

__all__ = [
    "CHECK",
    "DEFAULT_GLOBALS",
    "AllowList",
    "Global",
    "Limits",
    "ModelScanResult",
    "PickleReading",
    "iter_results",
    "parse_allow",
    "read_pickle",
    "scan_model",
]
