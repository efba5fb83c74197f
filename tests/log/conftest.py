"""Fixtures for the audit-log tests: a small workspace with a few principals, a source and a batch."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataward import principals
from dataward.acquire.acquire import acquire
from dataward.cli import main
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.store.keyring import FileKeyring
from dataward.workspace import Workspace


@dataclass
class LogEnv:
    path: Path  # the workspace directory
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def db(self) -> Path:
        return self.path / "catalog.db"

    def open(self) -> Workspace:
        return Workspace.open(self.path)

    def cli(self, *args: str, who: str | None = "admin") -> tuple[int, str]:
        """Run the CLI; returns (exit code, stdout + stderr with white space normalized)."""
        self.capsys.readouterr()
        argv = ["-w", str(self.path), *(["--as", who] if who else []), *args]
        rc = int(main(argv))
        out = self.capsys.readouterr()
        gc.collect()  # close pooled SQLite connections of the CLI's workspace
        return rc, " ".join((out.out + "\n" + out.err).split())


def _build(root: Path) -> Path:
    ring = FileKeyring(root / "keyring")  # copied into each test's own keyring by ``logenv``
    ws = Workspace.init(root / "ws", admin="admin", keyring=ring)
    admin = ws.actor("admin", keyring=ring)
    for name, role in (("ingrid", Role.INGESTER), ("alice", Role.APPROVER), ("otto", Role.AUDITOR)):
        principals.enroll(ws, admin, name, [Grant(role)], keyring=ring)
    add_source(ws, admin, "feed", kind="third-party", origin="https://example.org/feed", license="MIT")
    for i in range(3):  # ten entries, as before keys came with their principal in one entry
        ws.record(admin, "log.verify", f"log:padding-{i}", {})
    data = root / "data.csv"
    data.write_text("text,label\nhello,pos\nworld,neg\n", encoding="utf-8")
    acquire(ws, ws.actor("ingrid", keyring=ring), "feed", [data])
    ws.engine.dispose()
    return ws.path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("logtemplate"))


@pytest.fixture
def logenv(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], _keyring: Path
) -> Iterator[LogEnv]:
    """A fresh copy of the template workspace (and of its people's keyring, as this test's keyring); this
    test's witness has seen its log (via the CLI)."""
    path = tmp_path / "ws"
    shutil.copytree(template, path)  # paths in dataward.toml are relative: the copy stands alone
    shutil.copytree(template.parent / "keyring", _keyring)
    env = LogEnv(path, tmp_path, capsys)
    rc, out = env.cli("log", "checkpoint")
    assert rc == 0, out
    yield env
    gc.collect()
