"""Workspace maintenance: report, and with ``fix`` remove, what nothing references (``dataward doctor``)."""

from __future__ import annotations

from typing import Any

from dataward.identity import Actor
from dataward.store.gc import Garbage, find_garbage, relative, remove_garbage
from dataward.workspace import Workspace

#: default grace period: a command running for less than an hour may still be about to reference its files
DEFAULT_GRACE_SECONDS = 3600


def _report(ws: Workspace, g: Garbage, grace: float, fixed: bool) -> dict[str, Any]:
    return {
        "grace_seconds": grace,
        "unreferenced_objects": [f"{area}/{digest}" for area, digest in g.objects],
        "stale_temp_files": [relative(ws.objects, p) for p in g.temp_files],
        "bytes": g.bytes,
        "removed": fixed,
    }


def collect_garbage(
    ws: Workspace, actor: Actor | None, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, fix: bool = False
) -> dict[str, Any]:
    """Find unreferenced objects and stale temporary files; with ``fix`` (needs ``actor``) remove them.

    Removal runs inside the ``workspace.doctor`` change's write transaction, so no acquire can commit a batch
    naming an object between the scan and the deletion; the log entry records the counts.
    """
    if not fix:
        with ws.engine.connect() as conn:
            return _report(ws, find_garbage(conn, ws.objects, grace_seconds), grace_seconds, False)
    if actor is None:
        raise ValueError("removing needs an acting principal")
    with ws.change(actor, "workspace.doctor", "workspace") as ch:
        g = find_garbage(ch.conn, ws.objects, grace_seconds)
        remove_garbage(ws.objects, g)
        ch.details.update(
            {
                "grace_seconds": grace_seconds,
                "objects_removed": len(g.objects),
                "temp_files_removed": len(g.temp_files),
                "bytes_removed": g.bytes,
            }
        )
    return _report(ws, g, grace_seconds, True)
