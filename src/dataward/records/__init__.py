"""The records layer: how every stage reads data (see docs/records.md and ADR 0018).

- :mod:`~dataward.records.sniff`: the one format sniffer.
- :mod:`~dataward.records.readers`: one reader per format, streams of Arrow record batches with stable
  record numbers, over any fsspec filesystem.
- :mod:`~dataward.records.leaves`: the ADR 0002 canonical record bytes and leaf hashes.
- :mod:`~dataward.records.limits`: the documented limits every reader enforces.
- :mod:`~dataward.records.sandbox`: a worker process with no network and resource limits for parsing
  untrusted data.
"""

from __future__ import annotations

from dataward.records.limits import LimitError, Limits
from dataward.records.readers import ReadStats, load_npy, read, read_table
from dataward.records.sniff import READ_FORMATS, canonical_format, sniff

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
