"""Shared fixtures for the whole suite.

- ``_witness`` (autouse): DATAWARD_WITNESS points at a file under the test's tmp dir, so no test ever
  reads or writes the user's real witness in ~/.config.
- ``_keyring`` (autouse): DATAWARD_KEYRING points at a per-test keyring dir under tmp_path, so every
  principal's private key lives in "the caller's keyring" (never in a workspace, never in ~/.local).
  ``enroll`` generates a key there and registers the principal with its public half.
- ``catalog_url``: parametrized over ``sqlite`` and ``postgresql``. The PostgreSQL case gets a fresh
  database ``dw_<random>`` on the server named by DATAWARD_TEST_PG_URL (``scripts/pg-test-server start``
  prints one), dropped afterwards. Without that variable the PostgreSQL case is skipped locally; in CI
  (CI=true) a skipped PostgreSQL test is turned into a failure by the hook below.
- ``make_workspace``: a callable ``make_workspace(tmp_path, catalog_url, admin="admin") -> Workspace``
  that disposes of the workspaces' connection pools at teardown.

Use them as::

    def test_something(make_workspace, tmp_path, catalog_url):
        ws = make_workspace(tmp_path, catalog_url)
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]  # tests/scale/test_scale_conftest.py runs this file in an inner session

PG_ENV = "DATAWARD_TEST_PG_URL"
PG_SKIP_REASON = f"PostgreSQL tests need {PG_ENV} (run: export {PG_ENV}=$(scripts/pg-test-server start))"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    from dataward.store.catalog import normalize_url

    return make_url(normalize_url(url)).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _witness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "witness.json"
    monkeypatch.setenv("DATAWARD_WITNESS", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _session_keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module- and session-scoped fixtures run before ``_keyring``: never let them touch the user's keyring."""
    path = tmp_path_factory.mktemp("session") / "keyring"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWARD_KEYRING", str(path))
        mp.setenv("DATAWARD_WITNESS", str(path.parent / "witness.json"))
        yield path


@pytest.fixture(autouse=True)
def _keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keyring"
    monkeypatch.setenv("DATAWARD_KEYRING", str(path))
    # keys the CLI generates are passphrase-encrypted by default: exercise that path with a test passphrase
    monkeypatch.setenv("DATAWARD_PASSPHRASE", "correct horse battery staple")
    return path


@pytest.fixture
def enroll() -> Callable[..., Any]:
    """``enroll(ws, admin, name, grants=(), **kw) -> Actor``: a key in the test's keyring, registered."""
    from dataward.principals import enroll as enroll_principal

    return enroll_principal


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (URL); dropped after the test."""
    admin = pg_admin_url()
    if admin is None:
        pytest.skip(PG_SKIP_REASON)
    from sqlalchemy import text

    from dataward.store.catalog import make_engine

    name = f"dw_{secrets.token_hex(6)}"
    eng = make_engine(admin).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield _with_database(admin, name)
    finally:
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def make_workspace() -> Iterator[Callable[..., Any]]:
    from dataward.workspace import Workspace

    made: list[Workspace] = []

    def make(tmp_path: Path, catalog_url: str | None = None, *, admin: str = "admin", **kw: Any) -> Workspace:
        ws = Workspace.init(tmp_path / "ws", admin=admin, catalog=catalog_url, **kw)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.engine.dispose()


# a module whose every test is slow says so in one top-level line (tests that are slow one by one carry
# their own decorator)
_SLOW_MODULE = re.compile(rb"^pytestmark = pytest\.mark\.slow\b", re.M)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # In the quick lane (-m "not slow") such a module is not even imported: its imports (schemathesis,
    # playwright, model training, the whole CLI) cost more collection time than deselecting its tests saves.
    if config.getoption("markexpr") != "not slow" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py":
        return None
    try:
        source = collection_path.read_bytes()
    except OSError:
        return None
    return True if _SLOW_MODULE.search(source) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test that runs against PostgreSQL carries the `postgres` marker (select with -m postgres), and
    # `slow` too: the quick lane (`make check`, -m "not slow") runs the SQLite case of each catalog test.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("catalog_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if item.get_closest_marker("postgres") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    # In CI a PostgreSQL test must run: skipping it would hide a catalog that was never tested.
    if report.skipped and in_ci() and item.get_closest_marker("postgres") is not None:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: PostgreSQL test skipped in CI (CI=true); {PG_SKIP_REASON}"


def pytest_report_header(config: pytest.Config) -> str:
    url = pg_admin_url()
    if url is None:
        return f"dataward: PostgreSQL catalog tests {'FAIL' if in_ci() else 'skip'} ({PG_ENV} unset)"
    from dataward.store.catalog import redact_url

    return f"dataward: PostgreSQL catalog tests against {redact_url(url)}"
