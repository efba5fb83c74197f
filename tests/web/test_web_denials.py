"""Unauthenticated denials are rate-limited and aggregated: one `access.denied` entry per source address and
minute, with a count, written on the first request of a later minute or when the console stops. A flood of
10,000 bad requests adds a handful of entries, not 10,000."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_helpers import World, denials_since, log_size

from dataward.web._denials import OTHER, DenialAggregator
from dataward.web.app import create_app


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0  # a minute boundary (divisible by 60)

    def __call__(self) -> float:
        return self.t


def _app(world: World, clock: Clock) -> Any:
    app = create_app(world.ws)
    app.state.console.denials.clock = clock
    return app


@pytest.mark.slow
def test_a_flood_of_bad_requests_adds_a_handful_of_entries(world: World) -> None:
    clock = Clock()
    app = _app(world, clock)
    before = log_size(world.ws)
    bad = [
        {},  # no token at all
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer dwt_" + "A" * 43},  # our format, unknown (looked up: 1 request in 100)
    ]
    n = 10_000
    started = time.process_time()
    with TestClient(app) as client:
        for i in range(n):
            r = client.get("/api/v1/overview", headers=bad[3 if i % 100 == 99 else i % 3])
            assert r.status_code in (401, 403), r.text
            if i == n // 2:
                assert log_size(world.ws) == before, "a denial was logged on its own"
        assert log_size(world.ws) == before
        assert app.state.console.denials.pending() == n
        clock.t += 60  # the minute is over: the next request writes it
        client.get("/api/v1/overview")
        assert app.state.console.denials.pending() == 1  # the new minute's own request
        logged = denials_since(world.ws, before)
        assert len(logged) == 1
        d = logged[0]
        assert d["count"] == n and d["source_address"] == "testclient"
        assert d["minute"] == "2027-01-15T08:00Z"
        assert sum(d["reasons"].values()) == n and d["actions"] == {"console.login": n}
        assert d["reasons"]["unknown API token"] == n // 100
        assert d["reasons"]["no Bearer token"] > n // 2  # no header, and a Basic one
    # shutdown writes what is pending
    after = denials_since(world.ws, before)
    assert sorted(x["count"] for x in after) == [1, n]
    assert log_size(world.ws) - before == 2
    print(f"{n} bad requests: {time.process_time() - started:.1f} s CPU")


@pytest.mark.slow
def test_failed_sign_ins_are_aggregated_too(world: World) -> None:
    clock = Clock()
    before = log_size(world.ws)
    with TestClient(_app(world, clock)) as client:
        for _ in range(50):
            r = client.post("/login", data={"token": "dwt_" + "B" * 43, "next": "/"})
            assert r.status_code == 403
        assert log_size(world.ws) == before
    logged = denials_since(world.ws, before)
    assert len(logged) == 1 and logged[0]["count"] == 50 and logged[0]["reasons"] == {"unknown API token": 50}


def test_one_entry_per_address_and_minute(world: World) -> None:
    clock = Clock()
    agg = DenialAggregator(world.ws, clock=clock)
    before = log_size(world.ws)
    for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
        agg.add(addr, "console.login", "unknown API token")
    clock.t += 59
    agg.add("10.0.0.1", "console.login", "unknown API token")  # same minute
    assert agg.flush_due() == 0 and log_size(world.ws) == before
    clock.t += 1
    agg.add("10.0.0.1", "console.login", "unknown API token")  # the next minute
    assert agg.flush_due() == 2
    got = {(d["source_address"], d["count"]) for d in denials_since(world.ws, before)}
    assert got == {("10.0.0.1", 3), ("10.0.0.2", 1)}
    assert agg.flush_all() == 1
    assert agg.flush_all() == 0  # nothing twice


def test_many_addresses_and_reasons_stay_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.web import _denials as denials

    monkeypatch.setattr(denials, "MAX_ADDRESSES", 50)
    limit = denials.MAX_ADDRESSES
    clock = Clock()
    agg = DenialAggregator(world.ws, clock=clock)
    before = log_size(world.ws)
    for i in range(limit + 500):
        agg.add(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "console.login", f"token t{i} expired")
    for i in range(100):
        agg.add("10.0.0.0", "console.login", f"token x{i} revoked")
    assert agg.flush_all() == limit + 1  # the addresses beyond the limit share one entry
    logged = denials_since(world.ws, before)
    other = next(d for d in logged if d["source_address"] == OTHER)
    assert other["count"] == 500
    first = next(d for d in logged if d["source_address"] == "10.0.0.0")
    assert first["count"] == 101 and len(first["reasons"]) <= 21
