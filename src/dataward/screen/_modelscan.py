"""Checkpoint scanning as screening: :func:`to_report`, plus the names of :mod:`dataward.modelscan` under their
former home (docs/model-scanning.md). The scanner itself does not know screening (no import cycle)."""

from __future__ import annotations

from dataward.modelscan import DEFAULT_GLOBALS, AllowList, ModelScanResult, iter_results, read_pickle, scan_model
from dataward.modelscan.scanner import CHECK
from dataward.screen.interface import CheckResult, ScreenReport

#: the default trusted globals (module, name); scikit-learn estimators are added at run time
ALLOWED_GLOBALS = DEFAULT_GLOBALS

__all__ = [
    "ALLOWED_GLOBALS",
    "CHECK",
    "AllowList",
    "ModelScanResult",
    "iter_results",
    "read_pickle",
    "scan_model",
    "to_report",
]


def to_report(result: ModelScanResult) -> ScreenReport:
    """A model scan as a :class:`~dataward.screen.interface.ScreenReport` (one ``modelscan`` check)."""
    return ScreenReport(
        subject=result.path,
        n_records=max(len(result.files), 1),
        columns=(),
        results=(
            CheckResult(
                CHECK,
                result.findings,
                {
                    "verdict": result.verdict,
                    "format": result.format,
                    "globals": list(result.globals),
                    "allowed_by_extra": list(result.allowed_extra),
                },
            ),
        ),
        params={"allow_list_size": len(DEFAULT_GLOBALS)},
    )
