"""Fixtures for the web console tests: one prepared workspace per module, a live server per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web")
    old = os.environ.get("DATAWARD_WITNESS")
    os.environ["DATAWARD_WITNESS"] = str(tmp / "witness.json")
    w = build_world(tmp)
    yield w
    w.ws.engine.dispose()
    if old is None:
        os.environ.pop("DATAWARD_WITNESS", None)
    else:
        os.environ["DATAWARD_WITNESS"] = old


@pytest.fixture(autouse=True)
def _web_keyring(_session_keyring: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's world is built (before any test's own keyring exists) with the session keyring; the
    console acts with the keys of that keyring while a test runs."""
    monkeypatch.setenv("DATAWARD_KEYRING", str(_session_keyring))
    return _session_keyring


@pytest.fixture
def artifacts() -> Path:
    """Where the browser tests write screenshots: $DATAWARD_SCREENSHOTS, else tests/web/artifacts/."""
    d = Path(os.environ.get("DATAWARD_SCREENSHOTS") or Path(__file__).parent / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(autouse=True)
def _world_keyring(request: pytest.FixtureRequest, _keyring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's `world` was built (and its principals' keys generated) under the session keyring: a
    test that uses it acts with those keys, not with the empty per-test keyring."""
    if "world" in request.fixturenames:
        monkeypatch.setenv("DATAWARD_KEYRING", str(request.getfixturevalue("_session_keyring")))
