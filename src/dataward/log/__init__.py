"""The tamper-evident audit log: RFC 6962 Merkle tree over signed entries, C2SP checkpoints, a witness."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
