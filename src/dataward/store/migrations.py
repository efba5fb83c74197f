"""Versioned, explicit schema migrations.

Each migration is a function of a connection, applied in its own transaction together with the row that
records it in ``schema_version``. A catalog newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, inspect, select

from dataward.errors import WorkspaceError
from dataward.store import schema
from dataward.store.catalog import write_transaction
from dataward.timeutil import now_iso


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    tables = [
        schema.meta,
        schema.principals,
        schema.role_grants,
        schema.keys,
        schema.sources,
        schema.batches,
        schema.batch_files,
        schema.log_entries,
        schema.log_nodes,
        schema.checkpoints,
    ]
    schema.metadata.create_all(conn, tables=tables)


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial catalog", _v1),)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    versions: list[int] = list(conn.execute(select(schema.schema_version.c.version)).scalars().all())
    return max(versions, default=0)


def upgrade(engine: Engine) -> int:
    """Apply pending migrations, one transaction each; return how many were applied."""
    applied = 0
    while True:
        with write_transaction(engine) as conn:
            schema.schema_version.create(conn, checkfirst=True)
            have = current_version(conn)
            if have > LATEST:
                raise WorkspaceError(
                    f"catalog schema version {have} is newer than this dataward knows ({LATEST})",
                    advice="Upgrade dataward before using this workspace.",
                )
            pending = [m for m in MIGRATIONS if m.version > have]
            if not pending:
                return applied
            m = pending[0]
            m.apply(conn)
            conn.execute(
                insert(schema.schema_version).values(version=m.version, description=m.description, applied_at=now_iso())
            )
            applied += 1
