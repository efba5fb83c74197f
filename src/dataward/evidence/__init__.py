"""Evidence-first trust: the signed log replayed into the state every gate decides on."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
