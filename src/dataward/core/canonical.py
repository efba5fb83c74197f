"""Canonical JSON: one byte encoding per value, so digests and signatures are reproducible.

Keys sorted, no insignificant white space, UTF-8, no NaN or infinities. Floats are allowed but the
manifests and log entries dataward signs use only strings, integers, booleans, null, lists and objects.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
