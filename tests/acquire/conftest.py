from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataward import principals
from dataward.identity import Actor
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.workspace import Workspace


@dataclass
class Env:
    ws: Workspace
    admin: Actor
    ingester: Actor
    path: Path

    def cli(self, *args: str, principal: str | None = "ingrid") -> int:
        from dataward.cli import main

        pre = ["-w", str(self.ws.path)] + (["--as", principal] if principal else [])
        return main([*pre, *args])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("DATAWARD_WITNESS", str(tmp_path / "witness.json"))
    ws = Workspace.init(tmp_path / "ws", admin="admin")
    admin = ws.actor("admin")
    principals.enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    yield Env(ws, admin, ws.actor("ingrid"), tmp_path)
    ws.engine.dispose()
