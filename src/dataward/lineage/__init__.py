"""Lineage: training runs (inputs and outputs by digest, signed SLSA provenance), up- and downstream
queries, blast radius, and OpenLineage export."""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
