"""The tamper matrix: every decision column of every catalog table, attacked by SQL, is caught.

Generated from the schema (SQLAlchemy metadata), not hand-listed: for each table, an UPDATE of each of its
columns (except the keys, which the DELETE and INSERT cases cover, and the explicit, commented allow-list
``dataward.evidence.projection.NON_DECISION``), a DELETE of a row and a forged INSERT. Each must be named by
``log verify`` (the table, and for an UPDATE the column). The newest row of each table is attacked: it is
the one reads depend on (the latest checkpoint, the latest version). Each attack is undone before the next,
and the untouched world must verify clean before and after (a clean data set does not trip it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from release_helpers import Env
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)

from dataward.evidence.projection import LOG_TABLES, NON_DECISION
from dataward.log.verify import verify_log
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction

#: forged inserts that change nothing: dataward never reads a settings key it does not know
INSERT_NOT_CHECKED = {"meta": "other features keep their own settings here; unknown keys are never read"}
#: columns of the log's own tables that no check reads (the note is signed, its time is display)
LOG_NON_DECISION = {"checkpoints": {"time": "display; the signed note carries the size and root"}}


@dataclass(frozen=True)
class Attack:
    table: str
    kind: str  # update | delete | insert
    column: str | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.table}" + (f".{self.column}" if self.column else "")


def _allow_listed(table: str, column: str) -> bool:
    notes = {**NON_DECISION.get(table, {}), **LOG_NON_DECISION.get(table, {})}
    return "*" in notes or column in notes


def attacks() -> Iterator[Attack]:
    """Every attack the schema implies."""
    for t in schema.metadata.sorted_tables:
        if "*" in NON_DECISION.get(t.name, {}):
            continue
        for c in t.columns:
            if not c.primary_key and not _allow_listed(t.name, c.name):
                yield Attack(t.name, "update", c.name)
        yield Attack(t.name, "delete")
        if t.name not in INSERT_NOT_CHECKED:
            yield Attack(t.name, "insert")


def test_every_projected_table_has_an_entry_or_an_allow_list() -> None:
    """A table added later must be projected (or allow-listed): the matrix cannot silently skip it."""
    from dataward.evidence.projection import KEYS

    for t in schema.metadata.sorted_tables:
        assert t.name in KEYS or t.name in LOG_TABLES or "*" in NON_DECISION.get(t.name, {}), t.name
        for col in NON_DECISION.get(t.name, {}):
            assert col == "*" or col in t.columns, f"allow-list names {t.name}.{col}, which does not exist"


def _mutate(col: Column[Any], value: Any) -> Any:
    """A different value of the column's type (a forged digest keeps its length)."""
    if isinstance(col.type, Boolean):
        return not value
    if isinstance(col.type, Integer):
        return (value or 0) + 1000
    if isinstance(col.type, Float):
        return (value or 0.0) + 0.5
    if isinstance(col.type, LargeBinary):
        b = bytearray(value or b"\x00")
        b[0] ^= 0x01
        return bytes(b)
    if value is None:
        return "2001-01-01T00:00:00.000000Z" if col.name.endswith("_at") else "forged"
    s = str(value)
    return s[:-1] + ("0" if s[-1:] != "0" else "1") if s else "forged"


def _synth(t: Table) -> dict[str, Any]:
    """A plausible row for an empty table."""
    row: dict[str, Any] = {}
    for c in t.columns:
        if _db_assigned(t, c):
            continue
        if c.nullable and not c.primary_key:
            row[c.name] = None
        elif isinstance(c.type, Boolean):
            row[c.name] = True
        elif isinstance(c.type, Integer):
            row[c.name] = 1
        elif isinstance(c.type, Float):
            row[c.name] = 0.5
        elif isinstance(c.type, LargeBinary):
            row[c.name] = b"forged"
        else:
            row[c.name] = "forged"
    return row


def _db_assigned(t: Table, c: Column[Any]) -> bool:
    """An autoincrementing surrogate key (the database picks it)."""
    return (
        c.primary_key and c.autoincrement in (True, "auto") and isinstance(c.type, Integer) and len(t.primary_key) == 1
    )


def _key_clause(t: Table, row: dict[str, Any]) -> Any:
    return and_(*[c == row[c.name] for c in t.primary_key.columns])


def _newest(conn: Connection, t: Table) -> dict[str, Any] | None:
    order = [c.desc() for c in t.primary_key.columns]
    r = conn.execute(select(t).order_by(*order).limit(1)).first()
    return None if r is None else dict(r._mapping)


def _dependents(t: Table) -> list[tuple[Table, list[tuple[str, str]]]]:
    """Tables with a foreign key into ``t``: (table, [(their column, our column)])."""
    out = []
    for other in schema.metadata.sorted_tables:
        pairs = [(fk.parent.name, fk.column.name) for fk in other.foreign_keys if fk.column.table is t]
        if pairs:
            out.append((other, pairs))
    return out


def _forged_copy(conn: Connection, t: Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with a new identity: key and unique columns changed (foreign keys kept, so it is accepted)."""
    fk_cols = {fk.parent.name for fk in t.foreign_keys}
    new = dict(row)
    unique_cols: set[str] = {c.name for c in t.columns if c.unique}
    for con in t.constraints:
        cols = getattr(con, "columns", None)
        if cols is not None and con.__class__.__name__ == "UniqueConstraint":
            unique_cols |= {c.name for c in cols if c.name not in fk_cols}
    for c in t.primary_key.columns:
        if _db_assigned(t, c):
            new.pop(c.name, None)  # the database picks a fresh id
        elif c.name not in fk_cols or len(t.primary_key) == 1:
            new[c.name] = _mutate(c, row[c.name])
    for name in unique_cols:
        new[name] = _mutate(t.columns[name], row[name])
    # and forged content: an exact duplicate of a genuine row under a new key would be no attack at all
    content = [
        c
        for c in t.columns
        if not c.primary_key and c.name not in unique_cols and not c.foreign_keys and not _allow_listed(t.name, c.name)
    ]
    if content:
        new[content[0].name] = _mutate(content[0], row[content[0].name])
    return new


def _other_parent(conn: Connection, col: Column[Any], value: Any) -> Any:
    """Another existing value of the row a foreign key points at (re-pointing a row at another parent)."""
    target = next(iter(col.foreign_keys)).column
    return conn.execute(select(target).where(target != value).limit(1)).scalar()


class Tamper:
    """Apply one attack and undo it."""

    def __init__(self, env: Env) -> None:
        self.env = env

    def apply(self, a: Attack) -> Any:
        t = schema.metadata.tables[a.table]
        with write_transaction(self.env.ws.engine) as conn:
            row = _newest(conn, t)
            if a.kind == "insert":
                new = _synth(t) if row is None else _forged_copy(conn, t, row)
                res = conn.execute(insert(t).values(**new))
                pk = res.inserted_primary_key
                if pk is not None:
                    new.update(dict(zip([c.name for c in t.primary_key.columns], pk, strict=True)))
                return ("insert", t, new)
            if row is None:
                return None
            if a.kind == "update":
                assert a.column is not None
                col = t.columns[a.column]
                value = _other_parent(conn, col, row[a.column]) if col.foreign_keys else _mutate(col, row[a.column])
                if value is None:
                    return "refused"  # the foreign key admits no other value: the database refuses the edit
                conn.execute(update(t).where(_key_clause(t, row)).values({a.column: value}))
                return ("update", t, row)
            removed: list[tuple[Table, list[dict[str, Any]]]] = []
            for dep, pairs in _dependents(t):
                cond = and_(*[dep.columns[mine] == row[theirs] for mine, theirs in pairs])
                rows = [dict(r._mapping) for r in conn.execute(select(dep).where(cond))]
                conn.execute(delete(dep).where(cond))
                removed.append((dep, rows))
            conn.execute(delete(t).where(_key_clause(t, row)))
            return ("delete", t, row, removed)

    def undo(self, token: Any) -> None:
        if token is None or token == "refused":
            return
        with write_transaction(self.env.ws.engine) as conn:
            kind, t, row = token[0], token[1], token[2]
            if kind == "insert":
                conn.execute(delete(t).where(_key_clause(t, row)))
            elif kind == "update":
                conn.execute(update(t).where(_key_clause(t, row)).values(**row))
            else:
                conn.execute(insert(t).values(**row))
                for dep, rows in token[3]:
                    if rows:
                        conn.execute(insert(dep), rows)


def _identity_columns(table: str) -> set[str]:
    """Columns that make up a row's identity for the projection: editing one moves the row, so the
    divergence names the row (missing here, unknown there) rather than a column."""
    from dataward.evidence.projection import KEYS

    t = schema.metadata.tables[table]
    return (
        set(KEYS.get(table, ()))
        | {c.name for c in t.columns if c.foreign_keys}
        | {"envelope_digest"} & set(t.columns.keys())
        if table in ("attestations", "screening_reports")
        else set(KEYS.get(table, ())) | {c.name for c in t.columns if c.foreign_keys}
    )


def _named(env: Env, a: Attack) -> tuple[bool, list[str]]:
    lines = [p.line() for p in verify_log(env.ws, max_problems=100_000).problems]
    if a.table in LOG_TABLES:
        return bool(lines), lines
    want = f"table {a.table}, row "
    hits = [x for x in lines if x.startswith(f"log: {want}") or want in x]
    if a.kind == "update" and a.column not in _identity_columns(a.table):
        hits = [x for x in hits if f", column {a.column}:" in x]
    if a.table == "keys" and not hits:
        # an edited key row is caught where the log pins the key: the entries it signed no longer verify
        # against it, or it no longer matches the key the log registered
        hits = [x for x in lines if "claims principal" in x or "was replaced" in x or "unknown key" in x]
    return bool(hits), lines


@pytest.mark.slow
def test_tamper_matrix_is_fully_caught(world: tuple[Env, dict[str, str]]) -> None:
    env, _ids = world
    assert verify_log(env.ws).ok, [p.line() for p in verify_log(env.ws).problems]
    tamper = Tamper(env)
    missed: list[str] = []
    empty: list[str] = []
    refused: list[str] = []
    done = 0
    for a in attacks():
        token = tamper.apply(a)
        if token is None:
            empty.append(str(a))
            continue
        if token == "refused":
            refused.append(str(a))
            continue
        try:
            ok, lines = _named(env, a)
        finally:
            tamper.undo(token)
        done += 1
        if not ok:
            missed.append(f"{a}: {lines[:3]}")
    assert not missed, f"{len(missed)} of {done} attacks not caught:\n" + "\n".join(missed)
    # only the tables the world leaves empty skip their update and delete cases (they get a forged insert)
    assert {e.split(" ")[1].split(".")[0] for e in empty} <= {"incidents", "redteam_results"}, empty
    assert done > 150
    after = verify_log(env.ws)
    assert after.ok, [p.line() for p in after.problems]


@pytest.mark.parametrize("kind", ["update", "delete", "insert"])
def test_attack_kinds_are_all_generated(kind: str) -> None:
    tables = {a.table for a in attacks() if a.kind == kind}
    assert "batches" in tables and "role_grants" in tables and "keys" in tables
