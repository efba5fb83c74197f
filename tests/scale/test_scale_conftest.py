"""The shared conftest: PostgreSQL cases skip locally without a server, and fail in CI instead."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
INNER_TEST = """
def test_uses_a_catalog(catalog_url, make_workspace, tmp_path):
    ws = make_workspace(tmp_path, catalog_url)
    assert ws.engine.dialect.name in ("sqlite", "postgresql")
"""


@pytest.mark.parametrize(("ci", "outcome"), [("", {"passed": 1, "skipped": 1}), ("true", {"passed": 1, "errors": 1})])
def test_postgresql_cases_skip_locally_and_fail_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: dict[str, int]
) -> None:
    monkeypatch.delenv("DATAWARD_TEST_PG_URL", raising=False)
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8").replace('pytest_plugins = ["pytester"]', ""))
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "markers=postgres")
    result.assert_outcomes(**outcome)  # in CI the skip in set-up becomes a set-up error: the run fails
    assert (result.ret != 0) == bool(ci)
    if ci:
        result.stdout.fnmatch_lines(["*PostgreSQL test skipped in CI (CI=true)*"])
    else:
        result.stdout.fnmatch_lines(["*SKIPPED*PostgreSQL tests need DATAWARD_TEST_PG_URL*"])

# `make check` (the quick lane) leaves these out: runs pytest in a subprocess (11 s)
pytestmark = pytest.mark.slow
