"""The records layer: how every stage reads data (see docs/records.md and ADR 0018).

- :mod:`~dataward.records.sniff`: the one format sniffer.
- :mod:`~dataward.records.readers`: one reader per format, streams of Arrow record batches with stable
  record numbers, over any fsspec filesystem.
- :mod:`~dataward.records.leaves`: the ADR 0002 canonical record bytes and leaf hashes.
- :mod:`~dataward.records.limits`: the documented limits every reader enforces.
- :mod:`~dataward.records.sandbox`: a worker process with no network and resource limits for parsing
  untrusted data.

The readers' names are loaded on first use (ADR 0055): ``records.leaves`` (what acquiring a file needs)
does not import pyarrow, so a command that only fingerprints files does not pay for it at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dataward.records.limits import LimitError, Limits
from dataward.records.sniff import READ_FORMATS, canonical_format, sniff

if TYPE_CHECKING:
    from dataward.records.readers import ReadStats, load_npy, read, read_table

#: names re-exported from dataward.records.readers, imported when first asked for
_FROM_READERS = frozenset({"ReadStats", "load_npy", "read", "read_table"})


def __getattr__(name: str) -> Any:
    if name not in _FROM_READERS:
        raise AttributeError(f"module 'dataward.records' has no attribute {name!r}")
    value = getattr(importlib.import_module("dataward.records.readers"), name)
    globals()[name] = value
    return value


__all__ = [
    "READ_FORMATS",
    "LimitError",
    "Limits",
    "ReadStats",
    "canonical_format",
    "load_npy",
    "read",
    "read_table",
    "sniff",
]
