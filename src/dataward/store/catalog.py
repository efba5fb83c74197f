"""The catalog database: an SQLAlchemy engine (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as exc_

from dataward.errors import WorkspaceError
from dataward.store import errors as store_errors

# Plain PostgreSQL URLs (as libpq and most tools write them) use the psycopg 3 driver.
_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg2://")
PG_LOCK_WRITERS = 6961  # advisory lock: one writer at a time, as SQLite's BEGIN IMMEDIATE gives
PG_LOCK_LOG = 6962  # advisory lock: one appender to the audit log at a time


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``; other URLs are unchanged."""
    for scheme in _PG_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings dataward relies on."""
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 60}, future=True)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        else:
            # READ COMMITTED (PostgreSQL's default, pinned here): a statement after the writers' lock sees
            # every transaction committed before it, so the log's next sequence number is never stale.
            engine = create_engine(url, future=True, pool_pre_ping=True, isolation_level="READ COMMITTED")
        event.listen(engine, "handle_error", _connect_error(url))
        store_errors.install(engine, redact_url(url))
    except ImportError as exc:
        raise WorkspaceError(
            f"cannot open catalog {redact_url(url)}: the database driver is missing ({exc.name})",
            advice="Install the PostgreSQL extra: pip install 'dataward[postgres]'.",
        ) from None
    except Exception as exc:
        raise WorkspaceError(f"cannot open catalog {redact_url(url)}: {exc}") from None
    return engine


def _connect_error(url: str) -> Any:
    def handle(ctx: Any) -> None:
        # A catalog that cannot be reached is an operator's problem, not a traceback.
        if ctx.connection is None and isinstance(ctx.sqlalchemy_exception, exc_.OperationalError):
            first = str(ctx.original_exception).strip().splitlines()
            raise WorkspaceError(
                f"cannot connect to catalog {redact_url(url)}: {first[0] if first else 'connection failed'}",
                advice="Check that the database server is running and that the URL, user and password are right.",
            )

    return handle


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
        if conn.dialect.name == "postgresql":
            # Writers are serialized, as on SQLite: check-then-write code stays correct under concurrency.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_WRITERS})
        yield conn


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


def lock_for_append(conn: Connection) -> None:
    """Serialize appenders to the log (SQLite: BEGIN IMMEDIATE already holds the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_LOG})


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it is printed."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def referenced_file_digests(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` some batch's files name (objects are shared, so these must never be deleted)."""
    from sqlalchemy import select

    from dataward.store import schema

    wanted = sorted(set(digests))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = conn.execute(
            select(schema.batch_files.c.sha256, schema.batch_files.c.records_digest).where(
                schema.batch_files.c.sha256.in_(chunk) | schema.batch_files.c.records_digest.in_(chunk)
            )
        )
        for sha, rec in rows:
            found.update(d for d in (sha, rec) if d in chunk)
    return found
