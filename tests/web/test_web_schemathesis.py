"""Property-based API testing: schemathesis generates requests from the console's OpenAPI document and sends
them, with a valid token of a principal that holds every workflow role, to a live server. No request may
produce a server error (5xx)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from web_helpers import World, live_server

from dataward import principals
from dataward.model.roles import Grant, Role
from dataward.web.auth import create_token

WORKFLOW_ROLES = [Role.SCREENER, Role.REVIEWER, Role.APPROVER, Role.AUDITOR, Role.TRAINER]


@pytest.fixture(scope="module")
def fuzz_server(world: World) -> Iterator[tuple[str, str]]:
    ws, admin = world.ws, world.ws.actor("admin")
    principals.enroll(ws, admin, "omni", [Grant(r) for r in WORKFLOW_ROLES])
    from datetime import timedelta

    _, token = create_token(ws, admin, "omni", timedelta(hours=1))
    with live_server(ws, server_side_signing=True) as url:
        yield url, token


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
    return [r.ok() for r in schema.get_all_operations()]


def _runner(op: Any, token: str, mode: GenerationMode, failures: list[str], statuses: list[int]) -> Any:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run(case: Any) -> None:
        try:
            resp = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])
        except Exception as exc:  # collect every failing operation, not just the first
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:300]}")
            raise
        statuses.append(resp.status_code)

    return run


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_has_no_server_error(fuzz_server: tuple[str, str], mode: GenerationMode) -> None:
    url, token = fuzz_server
    operations = _operations(url)
    assert len(operations) >= 20
    failures: list[str] = []
    statuses: list[int] = []
    for op in operations:
        with contextlib.suppress(Exception):  # recorded in failures
            _runner(op, token, mode, failures, statuses)()
    assert not failures, "\n".join(failures)
    assert len(statuses) >= len(operations)
    if mode is GenerationMode.POSITIVE:  # valid requests with a valid token get past authentication
        assert sum(200 <= s < 300 for s in statuses) >= 10, statuses

# `make check` (the quick lane) leaves these out: property-based API fuzzing
pytestmark = pytest.mark.slow
