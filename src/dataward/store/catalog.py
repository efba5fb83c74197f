"""The catalog database: an SQLAlchemy engine (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as exc_

from dataward.errors import StorageError, WorkspaceError
from dataward.store import errors as store_errors

# Plain PostgreSQL URLs (as libpq and most tools write them) use the psycopg 3 driver.
_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg2://")
PG_LOCK_WRITERS = 6961  # advisory lock: one writer at a time, as SQLite's BEGIN IMMEDIATE gives
PG_LOCK_LOG = 6962  # advisory lock: one appender to the audit log at a time

#: The opaque handle of one catalog transaction: code outside ``store/`` holds it and passes it back to the
#: repository functions, never running SQL on it itself.
Transaction = Connection


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


def resolve_sqlite_path(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file made relative to ``base`` (other URLs are unchanged)."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        u = make_url(url)
        if u.database and u.database != ":memory:" and not Path(u.database).is_absolute():
            return u.set(database=str(base / u.database)).render_as_string(hide_password=False)
    return url


def sqlite_path(url: str) -> str | None:
    """The file of an ``sqlite:///PATH`` URL (None for memory databases and other engines)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    return db if db and db != ":memory:" and not db.startswith("file::memory:") else None


#: PostgreSQL SQLSTATEs of a catalog that cannot be written: read-only transaction, insufficient privilege,
#: disk full, out of memory, read-only/unwritable data directory (I/O error)
_PG_READ_ONLY, _PG_PRIVILEGE, _PG_DISK_FULL, _PG_IO = "25006", "42501", "53100", "58030"


def storage_problem(url: str, original: BaseException) -> StorageError | None:
    """The :class:`StorageError` a database error means when it is the catalog's storage that failed (read-only
    file, directory or transaction, no permission, disk full), else None. Names the path and the fix."""
    import os

    msg = str(original).strip().splitlines()[0] if str(original).strip() else ""
    low = msg.lower()
    path = sqlite_path(url)
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path)) or "."
        if "readonly database" in low or "read-only" in low:
            return StorageError(
                f"cannot write catalog {path}: it is read-only (the file, its directory {folder} or the filesystem "
                "does not allow writing)",
                advice=f"Make {path} and {folder} writable by the user running dataward (SQLite also writes "
                f"{os.path.basename(path)}-wal and -shm beside it), or remount the filesystem read-write; then retry.",
            )
        if "unable to open database file" in low or "disk i/o error" in low:
            if os.path.exists(path) and not os.access(path, os.R_OK):
                why = "the file cannot be read (permission denied)"
            elif not os.access(folder, os.W_OK | os.X_OK):
                why = f"its directory {folder} is not writable (SQLite creates its -wal and -shm files there)"
            else:
                why = "the file or its directory cannot be opened for writing"
            return StorageError(
                f"cannot open catalog {path}: {why}",
                advice=f"Give the user running dataward read and write access to {path} and {folder} (and a "
                "read-write filesystem), then retry.",
            )
        if "database or disk is full" in low:
            return StorageError(
                f"cannot write catalog {path}: the disk is full",
                advice=f"Free space on the filesystem holding {path}, then retry.",
            )
        return None
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    where = redact_url(url)
    if code == _PG_READ_ONLY or "read-only transaction" in low:
        return StorageError(
            f"cannot write catalog {where}: the database accepts only read-only transactions (a standby server, "
            "or default_transaction_read_only is on)",
            advice="Point the workspace at the primary server, or turn read-only off for the catalog's database "
            "and user (ALTER DATABASE ... SET default_transaction_read_only = off); then retry.",
        )
    if code == _PG_PRIVILEGE:
        return StorageError(
            f"cannot write catalog {where}: {msg}",
            advice="Grant the catalog's database user the rights dataward needs on its tables, then retry.",
        )
    if code in (_PG_DISK_FULL, _PG_IO):
        return StorageError(
            f"cannot write catalog {where}: {msg}",
            advice="Free space on (or fix) the database server's data directory, then retry.",
        )
    return None


def _connect_error(url: str) -> Any:
    def handle(ctx: Any) -> None:
        # The catalog's storage failing (read-only, permissions, disk full) is not the server being down.
        problem = storage_problem(url, ctx.original_exception)
        if problem is not None:
            raise problem
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
    """Whether the catalog behind ``conn`` is SQLite."""
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
