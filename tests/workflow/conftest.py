"""Fixtures for the workflow tests: a workspace with one principal per duty, two sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from workflow_helpers import PEOPLE, WITHOUT_DETECTION, Flow

from dataward import principals
from dataward.model.roles import Grant
from dataward.sources import add_source
from dataward.workflow.approval_policy import set_policy
from dataward.workspace import Workspace


@pytest.fixture
def default_flow(tmp_path: Path, make_workspace: Callable[..., Workspace]) -> Flow:
    """The workspace under the default policy (which requires detection in every tier)."""
    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    for name, roles in PEOPLE.items():
        principals.enroll(ws, admin, name, [Grant(r) for r in roles])
    add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    add_source(ws, admin, "house", kind="internal", origin="the data team", license="Apache-2.0")
    data = tmp_path / "in"
    data.mkdir()
    return Flow(ws, data, {"admin": admin})


@pytest.fixture
def flow(default_flow: Flow) -> Flow:
    """The same, under a policy that says openly that no tier requires detection: these tests screen with
    the fast checks (test_workflow_policy checks the default)."""
    set_policy(default_flow.ws, default_flow.actor("admin"), WITHOUT_DETECTION, where="no detection required")
    return default_flow
