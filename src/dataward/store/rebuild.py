"""Apply a projection rebuild plan to the catalog (the SQL half of ``dataward log replay``).

The plan is computed from the signed log by :mod:`dataward.evidence.rebuild`; this module only executes
its three kinds of step, by primary key, inside the caller's write transaction. Deletions run children
first and insertions parents first, so foreign keys hold at every statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from dataward.store import _schema as schema


@dataclass(frozen=True)
class Step:
    """One change: ``delete`` the row with primary key ``pk``, ``update`` it with ``values``, or ``insert``
    ``values`` as a new row (``pk`` unused)."""

    kind: str  # delete | update | insert
    table: str
    pk: Mapping[str, Any]
    values: Mapping[str, Any]


def primary_key(table: str) -> tuple[str, ...]:
    """The primary key columns of ``table`` (the steps address rows by them)."""
    return tuple(c.name for c in schema.metadata.tables[table].primary_key.columns)


def required_columns(table: str) -> dict[str, bool]:
    """column -> whether it must be given on insert (NOT NULL without a default, not autoincremented)."""
    t = schema.metadata.tables[table]
    out: dict[str, bool] = {}
    for c in t.columns:
        auto = c.primary_key and c.autoincrement is True
        out[c.name] = not c.nullable and c.default is None and c.server_default is None and not auto
    return out


def audit_ids(conn: Connection) -> dict[str, int]:
    """batch id -> its audit row's id (audit items and decisions refer to the audit, not the batch)."""
    a = schema.audits
    return {str(r.batch_id): int(r.id) for r in conn.execute(select(a.c.id, a.c.batch_id))}


def _where(table: Any, pk: Mapping[str, Any]) -> Any:
    return and_(*[(table.c[k].is_(None) if v is None else table.c[k] == v) for k, v in pk.items()])


def apply(conn: Connection, steps: Iterable[Step]) -> int:
    """Execute ``steps`` in a foreign-key-safe order; return how many rows they changed."""
    order = [t.name for t in schema.metadata.sorted_tables]
    rank = {name: i for i, name in enumerate(order)}
    todo = list(steps)
    deletes = sorted((s for s in todo if s.kind == "delete"), key=lambda s: -rank[s.table])
    writes = sorted((s for s in todo if s.kind != "delete"), key=lambda s: rank[s.table])
    changed = 0
    for s in [*deletes, *writes]:
        t = schema.metadata.tables[s.table]
        if s.kind == "delete":
            changed += conn.execute(delete(t).where(_where(t, s.pk))).rowcount or 0
        elif s.kind == "update":
            changed += conn.execute(update(t).where(_where(t, s.pk)).values(**dict(s.values))).rowcount or 0
        elif s.kind == "insert":
            conn.execute(insert(t).values(**dict(s.values)))
            changed += 1
        else:
            raise ValueError(f"unknown rebuild step {s.kind!r}")
    return changed
