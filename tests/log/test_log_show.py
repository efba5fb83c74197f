"""`dataward log show` filters: action and subject wildcards, principal, time window, order, limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataward.cli import main

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


def _show(env: LogEnv, *args: str) -> list[dict[str, Any]]:
    env.capsys.readouterr()
    assert main(["-w", str(env.path), "log", "show", "--json", *args]) == 0
    return list(json.loads(env.capsys.readouterr().out))


def test_filters_combine(logenv: LogEnv) -> None:
    everything = _show(logenv, "--limit", "1000")
    assert [e["seq"] for e in everything] == sorted((e["seq"] for e in everything), reverse=True)
    adds = _show(logenv, "--action", "principal.*")
    assert adds and {e["action"] for e in adds} == {"principal.add"}
    assert {e["seq"] for e in adds} == {e["seq"] for e in everything if e["action"] == "principal.add"}
    by_ingrid = _show(logenv, "--principal", "ingrid")
    assert [e["action"] for e in by_ingrid] == ["batch.acquire"]
    sources = _show(logenv, "--subject", "source:*", "--principal", "admin")
    assert [e["subject"] for e in sources] == ["source:feed"]
    oldest = _show(logenv, "--oldest-first", "--limit", "2")
    assert [e["seq"] for e in oldest] == [0, 1] and oldest[0]["action"] == "workspace.init"
    middle = everything[len(everything) // 2]["time"]
    later = _show(logenv, "--since", middle, "--limit", "1000")
    earlier = _show(logenv, "--until", middle, "--limit", "1000")
    assert len(later) + len(earlier) == len(everything)
    assert all(e["time"] >= middle for e in later) and all(e["time"] < middle for e in earlier)
    assert _show(logenv, "--since", "2999-01-01") == []
    # only * is a wildcard: SQL's % and _ match themselves
    assert _show(logenv, "--subject", "source:f_ed") == []
    assert _show(logenv, "--subject", "source:fe%") == []
    assert len(_show(logenv, "--subject", "source:fe*")) == 1


def test_bad_time_is_a_clean_error(logenv: LogEnv) -> None:
    rc, out = logenv.cli("log", "show", "--since", "yesterday-ish", who=None)
    assert rc == 2 and "not an ISO-8601 time" in out and "Traceback" not in out


def test_piped_output_keeps_every_value_whole(logenv: LogEnv) -> None:
    """Piped (not a terminal): one tab-separated line per entry, no table art, no cut or wrapped values."""
    import re

    entries = _show(logenv, "--limit", "1000")
    logenv.capsys.readouterr()
    assert main(["-w", str(logenv.path), "log", "show", "--limit", "1000"]) == 0
    out = logenv.capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split("\t")[:5] == ["#", "time", "principal", "action", "subject"]
    assert len(lines) == len(entries) + 1  # nothing wrapped onto a second line
    assert "…" not in out and "━" not in out and "│" not in out
    digests = {m for e in entries for m in re.findall(r"\b[0-9a-f]{64}\b", json.dumps(e["details"]))}
    assert digests and all(d in out for d in digests)
