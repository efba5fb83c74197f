"""Record contents follow roles and the batch's state in the signed log, and every read is logged (API and
pages, no browser): a trainer gets 403 on quarantined and rejected batches even when the catalog row says
released; each request that shows records adds exactly one `data.read` entry naming the reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from web_helpers import FAST, World, denials_since, log_size, write_csv

from dataward.acquire.acquire import acquire
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction
from dataward.workflow import approval, screening


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    from dataward.web.app import create_app

    with TestClient(create_app(world.ws)) as c:
        yield c


@pytest.fixture(scope="module")
def rejected(world: World) -> str:
    ws = world.ws
    b = acquire(ws, ws.actor("ingrid"), "scratch", [write_csv(world.tmp / "rejected-reads.csv", 12, tag="rj ")])
    screening.screen_batch(ws, ws.actor("sam"), b.id, checks=FAST)
    approval.reject(ws, ws.actor("alice"), b.id, reason="reads test")
    return b.id


@pytest.fixture(scope="module")
def under_review(world: World) -> str:
    """A screened batch with a drawn sample, of this module's own (other tests move the world's batches on)."""
    from dataward.workflow import audit

    ws = world.ws
    b = acquire(ws, ws.actor("ingrid"), "scratch", [write_csv(world.tmp / "review-reads.csv", 60, pii=True, tag="rr ")])
    screening.screen_batch(ws, ws.actor("sam"), b.id, checks=FAST)
    audit.draw_sample(ws, ws.actor("rita"), b.id, size=8)
    return b.id


@pytest.fixture(scope="module")
def released(world: World) -> str:
    """A batch released into this module's own dataset (other tests may revoke the world's)."""
    from dataward.release.versions import release
    from dataward.sources import add_source
    from dataward.workflow import audit

    ws = world.ws
    a = {n: ws.actor(n) for n in ("ingrid", "sam", "rita", "alice", "bob")}
    # its own source: other tests revoke the world's vendor batches, and a revocation raises the vendor's
    # risk tier to one that requires detection (the order of tests across workers decides which ran first)
    add_source(ws, ws.actor("admin"), "reads-vendor", kind="third-party", origin="https://reads.example", license="MIT")
    b = acquire(ws, a["ingrid"], "reads-vendor", [write_csv(world.tmp / "released-reads.csv", 40, tag="rl ")])
    screening.screen_batch(ws, a["sam"], b.id, checks=FAST)
    audit.draw_sample(ws, a["rita"], b.id, size=6)
    items = audit.sample_items(ws, b.id)
    audit.record_decisions(ws, a["rita"], b.id, [audit.Decision(i.record, "ok") for i in items])
    audit.complete_audit(ws, a["rita"], b.id)
    approval.approve(ws, a["alice"], b.id)
    approval.approve(ws, a["bob"], b.id)
    release(ws, a["alice"], "reads", [b.id])
    return b.id


def _reads_since(world: World, size: int) -> list[dict[str, Any]]:
    from dataward.log.query import show_entries

    return [e.details for e in show_entries(world.ws, action="data.read", limit=1000) if e.seq >= size]


def _get(client: TestClient, world: World, who: str, batch: str, numbers: list[int]) -> Any:
    q = "&".join(f"n={n}" for n in numbers)
    return client.get(f"/api/v1/batches/{batch}/records?{q}", headers={"Authorization": f"Bearer {world.token(who)}"})


@pytest.mark.slow
def test_trainer_is_refused_quarantined_and_rejected_records(
    client: TestClient, world: World, rejected: str, under_review: str
) -> None:
    for batch in (world.fresh, rejected):
        before = log_size(world.ws)
        r = _get(client, world, "tina", batch, [0, 1])
        assert r.status_code == 403, (batch, r.text)
        assert "according to the signed log" in r.json()["error"]
        assert [d["principal"] for d in denials_since(world.ws, before)] == ["tina"]
        assert _reads_since(world, before) == []
    # the approvers decide on audited batches, not on quarantined ones; the screener may read under review
    assert _get(client, world, "alice", world.fresh, [0]).status_code == 403
    assert _get(client, world, "sam", under_review, [0]).status_code == 200


@pytest.mark.slow
def test_catalog_state_does_not_open_a_batch_to_trainers(client: TestClient, world: World, rejected: str) -> None:
    with write_transaction(world.ws.engine) as conn:
        conn.execute(update(schema.batches).where(schema.batches.c.id == rejected).values(state="released"))
    try:
        assert _get(client, world, "tina", rejected, [0]).status_code == 403
        _session(client, world, "tina")
        r = client.get(f"/batches/{rejected}/records/0/raw")
        assert r.status_code == 403
    finally:
        with write_transaction(world.ws.engine) as conn:
            conn.execute(update(schema.batches).where(schema.batches.c.id == rejected).values(state="rejected"))


@pytest.mark.slow
def test_each_api_read_is_one_logged_entry(client: TestClient, world: World, released: str) -> None:
    before = log_size(world.ws)
    r = _get(client, world, "tina", released, [3, 0, 7])
    assert r.status_code == 200, r.text
    assert sorted(v["record"] for v in r.json()) == [0, 3, 7]
    reads = _reads_since(world, before)
    assert len(reads) == 1, reads
    d = reads[0]
    assert (d["principal"], d["batch"], d["records"], d["first"], d["last"], d["how"]) == (
        "tina",
        released,
        3,
        0,
        7,
        "api",
    )
    assert d["state"] == "released"


def _session(client: TestClient, world: World, who: str) -> None:
    """Sign ``client`` in as ``who`` (its cookie jar then holds only that session)."""
    client.cookies.clear()
    r = client.post("/login", data={"token": world.token(who), "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert client.cookies.get("dw_session")


@pytest.mark.slow
def test_console_pages_log_one_entry_per_request(client: TestClient, world: World, under_review: str) -> None:
    _session(client, world, "rita")
    before = log_size(world.ws)
    r = client.get(f"/batches/{under_review}/audit")
    assert r.status_code == 200
    reads = _reads_since(world, before)
    assert len(reads) == 1 and reads[0]["principal"] == "rita" and reads[0]["how"] == "console"
    assert reads[0]["records"] >= 8  # the whole sample was read for the review page
    # the batch page shows the records of its findings to the screener: one entry for the whole page
    _session(client, world, "sam")
    before = log_size(world.ws)
    page = client.get(f"/batches/{under_review}")
    assert page.status_code == 200
    reads = _reads_since(world, before)
    assert "may not read this batch" not in page.text
    assert len(reads) == 1 and reads[0]["principal"] == "sam" and reads[0]["records"] >= 1, reads
    # a trainer's pages show no records of a batch under review, and log no read
    _session(client, world, "tina")
    before = log_size(world.ws)
    page = client.get(f"/batches/{under_review}/audit")
    assert page.status_code == 200 and "may not read this batch" in page.text
    assert _reads_since(world, before) == []


def test_cli_audit_review_refuses_a_trainer(world: World, under_review: str) -> None:
    from dataward.cli import main

    before = log_size(world.ws)
    code = main(["-w", str(world.ws.path), "--as", "tina", "audit", "review", under_review])
    assert code == 4
    assert [d["principal"] for d in denials_since(world.ws, before)] == ["tina"]


def test_cli_audit_show_records_follows_the_same_rule(world: World, under_review: str) -> None:
    from dataward.cli import main

    before = log_size(world.ws)
    assert main(["-w", str(world.ws.path), "--as", "tina", "audit", "show", under_review, "--records"]) == 4
    assert _reads_since(world, before) == []
    # without --records nothing is read: no principal needed, nothing logged
    assert main(["-w", str(world.ws.path), "audit", "show", under_review, "--json"]) == 0
    before = log_size(world.ws)
    assert main(["-w", str(world.ws.path), "--as", "rita", "audit", "show", under_review, "--records", "--json"]) == 0
    reads = _reads_since(world, before)
    assert len(reads) == 1 and reads[0]["principal"] == "rita" and reads[0]["how"] == "cli" and reads[0]["records"] >= 8
