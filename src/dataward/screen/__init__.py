"""Screening: baselines, rule checks, drift, outliers, duplicates, PII, licences, intel, model scans."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
