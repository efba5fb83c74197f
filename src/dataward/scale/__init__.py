"""Scale-out: run the partitionable parts of acquisition, screening and detection on an :class:`Executor`.

``interface.py`` defines the executor; ``local.py`` runs tasks in this process (the reference),
``dask.py`` on a Dask cluster (``--scheduler tcp://HOST:PORT``) or a local one (``--workers N``).
The partition plan never depends on the executor, so every executor gives byte-identical results.
"""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
