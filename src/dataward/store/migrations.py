"""Versioned, explicit schema migrations.

Each migration is a function of a connection, applied in its own transaction together with the row that
records it in ``schema_version``. A catalog newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, inspect, select

from dataward.errors import WorkspaceError
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction
from dataward.timeutil import now_iso


@dataclass(frozen=True)
class Migration:
    """One schema migration: the version it brings the database to, what it does, and the function that applies it."""

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


def _v2(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.attestations])


def _v3(conn: Connection) -> None:
    tables = [schema.screening_reports, schema.audits, schema.audit_items, schema.audit_decisions, schema.approvals]
    schema.metadata.create_all(conn, tables=tables)


def _v4(conn: Connection) -> None:
    tables = [
        schema.datasets,
        schema.dataset_versions,
        schema.version_batches,
        schema.runs,
        schema.run_inputs,
        schema.run_outputs,
    ]
    schema.metadata.create_all(conn, tables=tables)


def _v5(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.intel_feeds])


def _v6(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.redteam_results, schema.incidents])


def _v7(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.tokens])


def _v8(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.admin_changes, schema.admin_signatures])


# Version numbers reserved while work is in flight: 3 workflow (audit, policy, approvals), 4 versions and
# lineage, 5 screening store (baselines, intel feeds), 6 incidents and red-team, 7 web tokens,
# 8 admin changes (k-of-n).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial catalog", _v1),
    Migration(2, "signed attestations", _v2),
    Migration(3, "workflow: screening reports, label audits, approvals", _v3),
    Migration(4, "dataset versions and training-run lineage", _v4),
    Migration(5, "threat-intelligence feeds", _v5),
    Migration(6, "red-team results and incidents", _v6),
    Migration(7, "web console API tokens", _v7),
    Migration(8, "admin changes under a k-of-n threshold", _v8),
)
LATEST = MIGRATIONS[-1].version


def applied_versions(conn: Connection) -> set[int]:
    """Schema versions recorded as applied in the database; empty before the first migration."""
    if not inspect(conn).has_table("schema_version"):
        return set()
    return set(conn.execute(select(schema.schema_version.c.version)).scalars().all())


def current_version(conn: Connection) -> int:
    """Highest applied schema version, 0 for a fresh database."""
    return max(applied_versions(conn), default=0)


def upgrade(engine: Engine) -> int:
    """Apply every migration not yet applied (in version order), one transaction each; return how many."""
    known = {m.version for m in MIGRATIONS}
    applied = 0
    while True:
        with write_transaction(engine) as conn:
            schema.schema_version.create(conn, checkfirst=True)
            have = applied_versions(conn)
            unknown = sorted(have - known)
            if unknown:
                raise WorkspaceError(
                    f"catalog has schema version {unknown[-1]}, which this dataward does not know (latest {LATEST})",
                    advice="Upgrade dataward before using this workspace.",
                )
            pending = [m for m in MIGRATIONS if m.version not in have]
            if not pending:
                return applied
            m = pending[0]
            m.apply(conn)
            conn.execute(
                insert(schema.schema_version).values(version=m.version, description=m.description, applied_at=now_iso())
            )
            applied += 1
