"""Acquisition: fingerprint every file and record, check supplier digests and signatures, sign a manifest."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
