"""Fixtures for the workflow tests: a workspace with one principal per duty, two sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from workflow_helpers import PEOPLE, Flow

from dataward import principals
from dataward.access import Grant
from dataward.sources import add_source
from dataward.workspace import Workspace


@pytest.fixture
def flow(tmp_path: Path, make_workspace: Callable[..., Workspace]) -> Flow:
    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    for name, roles in PEOPLE.items():
        principals.enroll(ws, admin, name, [Grant(r) for r in roles])
    add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    add_source(ws, admin, "house", kind="internal", origin="the data team", license="Apache-2.0")
    data = tmp_path / "in"
    data.mkdir()
    return Flow(ws, data, {"admin": admin})
