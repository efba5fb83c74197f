"""The workspace's identity in the catalog's meta table (the ID and log origin its first log entry names)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from dataward.store import _schema as schema
from dataward.store._repository import repository

__all__ = ["insert_identity", "workspace_id"]


@repository
def workspace_id(conn: Connection) -> str | None:
    """The ID of the workspace the catalog belongs to (None: a new catalog)."""
    wid = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "workspace_id")).scalar()
    return None if wid is None else str(wid)


@repository
def insert_identity(conn: Connection, workspace_id: str, log_origin: str) -> None:
    """Claim the catalog for workspace ``workspace_id`` whose log has origin ``log_origin``."""
    conn.execute(
        insert(schema.meta),
        [{"key": "workspace_id", "value": workspace_id}, {"key": "log_origin", "value": log_origin}],
    )
