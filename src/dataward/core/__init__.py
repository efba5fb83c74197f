"""The pure core of dataward: digests, canonical encodings, Merkle trees, signatures, manifests.

Nothing in this package opens a file, a socket or a database: inputs are bytes and values, outputs are
values. I/O lives in the layers around it (``store``, ``acquire``, ``log``, ``cli``).
"""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
