"""A stored audit-log row as read, before any check. Pure (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawEntry:
    """One stored log row as read: the indexed columns, the signed body and its signature (no trust implied:
    the indexed columns may have been rewritten, so they are typed ``Any`` until the replay checks them)."""

    seq: int
    time: Any
    principal: Any
    action: Any
    subject: Any
    keyid: Any
    body: bytes
    signature: bytes
