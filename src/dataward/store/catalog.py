"""The catalog database: an SQLAlchemy engine (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text

from dataward.errors import WorkspaceError


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings dataward relies on."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 60}, future=True)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        else:
            engine = create_engine(url, future=True, pool_pre_ping=True)
    except Exception as exc:
        raise WorkspaceError(f"cannot open catalog {redact_url(url)}: {exc}") from None
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, manage transactions, so that BEGIN IMMEDIATE serializes writers.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock up front (no lock upgrade deadlocks); readers use a deferred BEGIN.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("dataward_write") else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-write transaction: serialized against other writers from its first statement."""
    with engine.connect().execution_options(dataward_write=True) as conn, conn.begin():
        yield conn


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


def lock_for_append(conn: Connection) -> None:
    """Serialize appenders to the log (SQLite: BEGIN IMMEDIATE already holds the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(6962)"))


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it is printed."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
