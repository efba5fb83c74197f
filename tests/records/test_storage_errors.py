"""Errors that blame the right thing: a read-only catalog (SQLite file or directory, PostgreSQL read-only
transaction) and an unreadable key file or keyring directory are StorageErrors (exit 7) naming the path and
the fix, never "check that the database server is running" nor a traceback.

Running as root (CI does) defeats chmod, so each case is made three ways: the OS refusal injected at the
call that meets the OS (deterministic, always runs), SQLite genuinely opening the file read-only, a real
read-only bind mount in a user+mount namespace (`unshare -rm`, skipped with the reason where the OS
forbids it) and a real chmod when not root."""

from __future__ import annotations

import errno
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import dataward
from dataward.errors import EXIT_CODES, EXIT_STORAGE, StorageError
from dataward.sources import add_source
from dataward.store.keyring import FileKeyring
from dataward.store.keys import KeyDirectory
from dataward.workspace import Workspace

SRC = str(Path(dataward.__file__).resolve().parents[1])
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _cli(ws: Path, *args: str, env: dict[str, str] | None = None, wrap: list[str] | None = None) -> Any:
    cmd = [sys.executable, "-c", "import sys; from dataward.cli import main; sys.exit(main(sys.argv[1:]))"]
    full = [*(wrap or []), *cmd, "-w", str(ws), "--as", "admin", *args]
    return subprocess.run(
        full, env={**os.environ, "PYTHONPATH": SRC, **(env or {})}, capture_output=True, text=True, check=False
    )


def _add_source(ws: Path, name: str, **kw: Any) -> Any:
    return _cli(ws, "source", "add", name, "--kind", "third-party", "--origin", "https://x.example", **kw)


def _storage_refusal(done: Any, path: Path, *words: str) -> None:
    assert done.returncode == EXIT_STORAGE, (done.returncode, done.stderr)
    err = done.stderr
    assert "Traceback" not in err and "database server" not in err, err
    first = err.splitlines()[0]
    assert str(path) in first and all(w in err for w in words), err


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = Workspace.init(tmp_path / "ws", admin="admin")
    w.engine.dispose()
    return tmp_path / "ws"


def _unshare_ro(target: Path) -> list[str]:
    """A wrapper running a command with ``target`` bind-mounted read-only, or a skip when not allowed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no read-only mount without privileges")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount --bind '{target}' '{target}' && mount -o remount,bind,ro '{target}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"user+mount namespaces are not allowed here: {probe.stderr.strip()[:120]}")
    script = f"mount --bind '{target}' '{target}' && mount -o remount,bind,ro '{target}' && exec \"$@\""
    return ["unshare", "-rm", "sh", "-c", script, "sh"]


def _as_file_modes_apply() -> list[str]:
    """A wrapper under which file modes bind the command: nothing for a normal user; for root (as in CI),
    setpriv(1) drops the capabilities that let root ignore modes (a skip only where setpriv is missing)."""
    if not IS_ROOT:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv(1) is missing: root ignores file modes")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


# --- the catalog ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_sqlite_catalog_on_a_read_only_mount_is_exit_7(ws: Path, what: str) -> None:
    catalog = ws / "catalog.db"
    for side in ws.glob("catalog.db-*"):
        side.unlink()  # the workspace was closed cleanly: nothing is lost
    done = _add_source(ws, "s1", wrap=_unshare_ro(catalog if what == "file" else ws))
    _storage_refusal(done, catalog, "hint:", "writable" if what == "file" else "not writable")
    assert "read-only" in done.stderr if what == "file" else "directory" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_sqlite_catalog_by_chmod_is_exit_7(ws: Path, what: str) -> None:
    catalog = ws / "catalog.db"
    target = catalog if what == "file" else ws
    wrap = _as_file_modes_apply()
    old = target.stat().st_mode
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        done = _add_source(ws, "s1", wrap=wrap)
    finally:
        target.chmod(old)
    _storage_refusal(done, catalog, "hint:")


def test_sqlite_opening_the_catalog_read_only_is_exit_7(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic, root or not: SQLite itself opens the file read-only (the DB-API boundary)."""
    real = sqlite3.dbapi2.connect

    def read_only(database: str, *a: Any, **kw: Any) -> sqlite3.Connection:
        kw.pop("uri", None)
        conn: sqlite3.Connection = real(f"file:{database}?mode=ro", *a, uri=True, **kw)
        return conn

    monkeypatch.setattr(sqlite3.dbapi2, "connect", read_only)
    w = Workspace.open(ws)
    try:
        with pytest.raises(StorageError) as info:
            add_source(w, w.actor("admin"), "s1", kind="third-party", origin="https://x.example")
    finally:
        w.engine.dispose()
    assert str(ws / "catalog.db") in info.value.message and "read-only" in info.value.message
    assert "writable" in info.value.advice and info.value.exit_code == EXIT_STORAGE


def test_unopenable_sqlite_catalog_names_the_directory_not_the_server(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_access = os.access
    monkeypatch.setattr(sqlite3.dbapi2, "connect", _raise(sqlite3.OperationalError("unable to open database file")))
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(ws) else real_access(p, m))
    with pytest.raises(StorageError) as info:
        w = Workspace.open(ws)
        try:
            add_source(w, w.actor("admin"), "s1", kind="third-party", origin="https://x.example")
        finally:
            w.engine.dispose()
    assert str(ws / "catalog.db") in info.value.message and "not writable" in info.value.message
    assert "server" not in info.value.message + info.value.advice


def _raise(exc: BaseException) -> Callable[..., Any]:
    def fail(*_a: Any, **_k: Any) -> Any:
        raise exc

    return fail


@pytest.mark.postgres
def test_read_only_postgresql_transaction_is_exit_7(pg_database: str, tmp_path: Path) -> None:
    from dataward.store.catalog import make_engine

    w = Workspace.init(tmp_path / "ws", admin="admin", catalog=pg_database)
    admin = w.actor("admin")
    w.engine.dispose()
    eng = make_engine(pg_database).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        db = conn.execute(text("SELECT current_database()")).scalar()
        conn.execute(text(f'ALTER DATABASE "{db}" SET default_transaction_read_only = on'))
    eng.dispose()
    w = Workspace.open(tmp_path / "ws")
    try:
        with pytest.raises(StorageError) as info:
            add_source(w, admin, "s1", kind="third-party", origin="https://x.example")
    finally:
        w.engine.dispose()
    assert "read-only" in info.value.message and "***" not in info.value.message.replace(":***@", "")
    assert "primary" in info.value.advice and info.value.exit_code == EXIT_STORAGE
    done = _add_source(tmp_path / "ws", "s2")
    assert done.returncode == EXIT_STORAGE and "read-only" in done.stderr and "server is running" not in done.stderr


# --- keys ----------------------------------------------------------------------------------------------------


def _deny(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make opening ``path`` (or listing it, for a directory) fail with EACCES, as chmod would for non-root."""
    real_open, real_listdir = io.open, os.listdir
    denied = str(path)

    def fake_open(file: Any, *a: Any, **k: Any) -> Any:
        if str(file) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **k)

    def fake_listdir(p: Any = ".") -> list[str]:
        if str(p) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_listdir(p)

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "listdir", fake_listdir)


def test_unreadable_key_file_in_the_keyring_is_named(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = FileKeyring()
    (entry,) = ring.entries("admin")
    _deny(monkeypatch, entry.path)
    with pytest.raises(StorageError) as info:
        ring.signer("admin")
    msg = info.value.message
    assert msg == f"cannot read the private key file {entry.path}: permission denied"
    assert "read access" in info.value.advice and info.value.exit_code == EXIT_STORAGE


def test_unreadable_keyring_directory_is_named(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = FileKeyring()
    _deny(monkeypatch, ring.path)
    with pytest.raises(StorageError, match=f"cannot read the keyring directory {ring.path}: permission denied"):
        Workspace.open(ws).actor("admin")


def test_unreadable_workspace_key_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    kd = KeyDirectory(tmp_path / "keys")
    kid = kd.save(Ed25519PrivateKey.generate())
    _deny(monkeypatch, kd.path / f"{kid}.pem")
    with pytest.raises(StorageError, match=r"cannot read the private key file .*: permission denied"):
        kd.load(kid)


def test_keyring_that_cannot_be_written_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = FileKeyring(tmp_path / "ring")
    real = os.open

    def full(path: Any, *a: Any, **k: Any) -> int:
        if str(path).startswith(str(ring.path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(StorageError, match="the disk is full"):
        ring.generate("someone")
    assert [p.name for p in ring.path.iterdir()] == []  # no temp file left


@pytest.mark.slow
def test_unreadable_key_file_by_chmod_through_the_cli(ws: Path) -> None:
    ring = FileKeyring()
    (entry,) = ring.entries("admin")
    wrap = _as_file_modes_apply()
    entry.path.chmod(0o000)
    try:
        done = _add_source(ws, "s1", wrap=wrap)
    finally:
        entry.path.chmod(0o600)
    _storage_refusal(done, entry.path, "read access")


def test_unreadable_key_file_through_the_cli_in_process(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataward.cli import main

    (entry,) = FileKeyring().entries("admin")
    _deny(monkeypatch, entry.path)
    code = main(["-w", str(ws), "--as", "admin", "source", "add", "s1", "--kind", "third-party", "--origin", "x"])
    err = capsys.readouterr().err
    assert code == EXIT_STORAGE and code in EXIT_CODES, err
    assert err.splitlines()[0] == f"error: cannot read the private key file {entry.path}: permission denied"
    assert "Traceback" not in err
