"""Source queries: the catalog's sources table, read into :class:`dataward.model.source.Source` values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from dataward.model.source import Source, SourceKind
from dataward.store import _schema as schema
from dataward.store._repository import repository

__all__ = ["all_sources", "insert_source", "source_named"]


def _source(r: Any) -> Source:
    return Source(
        r.name,
        SourceKind(r.kind),
        r.origin,
        r.license,
        r.license_status,
        r.supplier,
        r.supplier_key,
        r.update_frequency,
        r.created_at,
        r.created_by,
    )


@repository
def source_named(conn: Connection, name: str) -> Source | None:
    """The source ``name`` (None: not registered)."""
    r = conn.execute(select(schema.sources).where(schema.sources.c.name == name)).first()
    return None if r is None else _source(r)


@repository
def all_sources(conn: Connection) -> list[Source]:
    """Every source, by name."""
    return [_source(r) for r in conn.execute(select(schema.sources).order_by(schema.sources.c.name))]


@repository
def insert_source(conn: Connection, s: Source) -> None:
    """Register source ``s``."""
    conn.execute(
        insert(schema.sources).values(
            name=s.name,
            kind=s.kind.value,
            origin=s.origin,
            license=s.license,
            license_status=s.license_status,
            supplier=s.supplier,
            supplier_key=s.supplier_key,
            update_frequency=s.update_frequency,
            created_at=s.created_at,
            created_by=s.created_by,
        )
    )
