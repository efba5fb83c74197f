"""Storage layers around the pure core: the catalog database, the object store, the key directory."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
