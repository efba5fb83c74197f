"""Batches: one delivery from one source, and its lifecycle state.

The values live in :mod:`dataward.model.batch`, the queries in :mod:`dataward.store.batches`; this module
keeps the names every layer imports and the workspace-level reads.
"""

from __future__ import annotations

from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.store.batches import batch_ids, load_batch
from dataward.workspace import Workspace

__all__ = ["Batch", "BatchFile", "BatchState", "get_batch", "list_batches", "load_batch"]


def get_batch(ws: Workspace, batch_id: str) -> Batch:
    """The batch ``batch_id`` (unknown: :class:`~dataward.errors.NotFoundError`)."""
    with ws.engine.connect() as conn:
        return load_batch(conn, batch_id)


def list_batches(ws: Workspace, *, source: str | None = None, state: str | None = None) -> list[Batch]:
    """Every batch in acquisition order, optionally of one source and/or in one state."""
    with ws.engine.connect() as conn:
        return [load_batch(conn, i) for i in batch_ids(conn, source=source, state=state)]
