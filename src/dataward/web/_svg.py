"""The console's charts: :mod:`dataward.charts` (shared with the screening report), under their former home."""

from __future__ import annotations

from dataward.charts import SEVERITY_COLOURS, bars, grouped_bars, histogram, interval, lineage, severity_bars

__all__ = ["SEVERITY_COLOURS", "bars", "grouped_bars", "histogram", "interval", "lineage", "severity_bars"]
