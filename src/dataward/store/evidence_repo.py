"""What the evidence layer reads from the catalog: log rows, public keys, and projected tables to compare.

Nothing read here is trusted: :mod:`dataward.evidence.replay` checks every signature and every claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from dataward.model.log_entry import RawEntry
from dataward.store import _schema as schema
from dataward.store._errors import catalog_error
from dataward.store._repository import repository

__all__ = ["catalog_rows", "last_leaf", "public_keys", "raw_entries"]


def _as_bytes(v: Any) -> bytes:
    """A cell that should be bytes; a tampered cell of another type (TEXT, a number) becomes bytes that
    fail the checks, never an exception."""
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def raw_entries(conn: Connection, start: int = 0) -> Iterator[RawEntry]:
    """Log rows from sequence number ``start`` on, in order, as :class:`RawEntry` (no trust implied)."""
    # read through the driver's own cursor, a few thousand rows a call: the result layer's per-row work
    # costs about as much as the replay of a row; errors are translated as the engine's hook does
    cols = "seq, time, principal, action, subject, keyid, entry, signature"  # constants; the bound is an int
    sql = f"SELECT {cols} FROM {schema.log_entries.name} WHERE seq >= {int(start)} ORDER BY seq"  # noqa: S608
    dbapi_error: Any = getattr(conn.dialect, "loaded_dbapi", None)
    dbapi_error = getattr(dbapi_error, "Error", SQLAlchemyError)
    try:  # a generator: the rows are read as the caller iterates, so the translation is written out here
        cur = conn.connection.cursor()  # the connection's own transaction
        try:
            cur.execute(sql)
            while batch := cur.fetchmany(5000):
                for r in batch:
                    seq = r[0]
                    if type(seq) is not int:
                        try:
                            seq = int(seq)
                        except (TypeError, ValueError):
                            continue
                    body, sig = r[6], r[7]
                    yield RawEntry(
                        seq,
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        body if type(body) is bytes else _as_bytes(body),
                        sig if type(sig) is bytes else _as_bytes(sig),
                    )
        finally:
            cur.close()
    except (SQLAlchemyError, dbapi_error) as exc:
        raise catalog_error(exc, f"{__name__}.raw_entries") from exc


@repository
def public_keys(conn: Connection) -> dict[str, bytes]:
    """keyid -> raw public key bytes from the keys table (each is checked against its ID on use)."""
    out: dict[str, bytes] = {}
    for kid, pub in conn.execute(select(schema.keys.c.keyid, schema.keys.c.public_key)):
        try:
            out[str(kid)] = bytes.fromhex(str(pub))
        except ValueError:
            continue
    return out


@repository
def last_leaf(conn: Connection, size: int) -> bytes | None:
    """The stored leaf hash of the log's last entry when it has ``size`` entries (``b""`` for an empty log;
    None when that row is missing)."""
    t = schema.log_entries
    v = conn.execute(select(t.c.leaf_hash).where(t.c.seq == size - 1)).scalar() if size else b""
    return None if v is None else _as_bytes(v)


@repository
def catalog_rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts, with the natural key columns the projection compares on (audit rows
    are keyed by their batch, decisions also by their order among the same reviewer's on the record)."""
    t = schema.metadata.tables[table]
    rows = [dict(r._mapping) for r in conn.execute(select(t))]
    if table in ("audit_items", "audit_decisions"):
        a = schema.audits
        batch_of = {r.id: r.batch_id for r in conn.execute(select(a.c.id, a.c.batch_id))}
        for r in rows:
            r["batch_id"] = batch_of.get(r["audit_id"])
    if table == "audit_decisions":
        seen: dict[tuple[Any, ...], int] = {}
        for r in sorted(rows, key=lambda x: int(x["id"]) if isinstance(x["id"], int) else 0):
            k = (r["batch_id"], r["record"], r["reviewer"])
            r["n"] = seen.get(k, 0)
            seen[k] = r["n"] + 1
    return rows
