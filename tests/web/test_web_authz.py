"""Authorization over HTTP against a live server: every role x every endpoint (API and pages), expired and
revoked tokens, posts without or with a foreign CSRF token, another principal's session: no unexpected allow,
and every refusal of a signed-in principal is in the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from web_helpers import PEOPLE, World, denials_since, live_server, log_size

from dataward.access import allowed
from dataward.model.roles import Grant, Role
from dataward.store import _schema as schema
from dataward.web.auth import create_token, revoke_token

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

ANY = "authenticated"  # a valid token, no role needed
RECORDS = "records"  # reading a batch's record contents: decided by the batch's state in the signed log
#: (method, path template) -> the actions a principal needs (all of them)
API: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/api/v1/whoami"): (ANY,),
    ("GET", "/api/v1/overview"): ("console.read",),
    ("GET", "/api/v1/sources"): ("console.read",),
    ("GET", "/api/v1/batches"): ("console.read",),
    ("GET", "/api/v1/batches/{batch_id}"): ("console.read",),
    ("GET", "/api/v1/batches/{batch_id}/records"): ("console.read", RECORDS),
    ("GET", "/api/v1/batches/{batch_id}/audit"): ("console.read",),
    ("POST", "/api/v1/batches/{batch_id}/audit/sample"): ("console.read", "audit.sample"),
    ("POST", "/api/v1/batches/{batch_id}/audit/decisions"): ("console.read", "audit.decide"),
    ("POST", "/api/v1/batches/{batch_id}/audit/complete"): ("console.read", "audit.complete"),
    ("GET", "/api/v1/batches/{batch_id}/policy"): ("console.read",),
    ("GET", "/api/v1/batches/{batch_id}/approval-statement"): ("console.read", "batch.approve"),
    ("POST", "/api/v1/batches/{batch_id}/approvals"): ("console.read", "batch.approve"),
    ("POST", "/api/v1/batches/{batch_id}/approvals/statement"): ("console.read", "batch.approve"),
    ("POST", "/api/v1/batches/{batch_id}/reject"): ("console.read", "batch.reject"),
    ("GET", "/api/v1/versions"): ("console.read",),
    ("GET", "/api/v1/versions/{spec}"): ("console.read",),
    ("GET", "/api/v1/diff"): ("console.read",),
    ("GET", "/api/v1/lineage"): ("console.read",),
    ("GET", "/api/v1/log"): ("console.read",),
    ("GET", "/api/v1/log/checkpoint"): ("console.read",),
    ("GET", "/api/v1/log/key"): ("console.read",),
    ("GET", "/api/v1/log/{seq}"): ("console.read",),
    ("GET", "/api/v1/log/{seq}/proof"): ("console.read",),
}
BODIES: dict[str, Any] = {
    "/api/v1/batches/{batch_id}/audit/decisions": {"record": 0, "decision": "ok"},
    "/api/v1/batches/{batch_id}/reject": {"reason": "authorization matrix"},
    "/api/v1/batches/{batch_id}/approvals/statement": {"payloadType": "x", "payload": "", "signatures": []},
}
QUERIES: dict[str, str] = {
    "/api/v1/batches/{batch_id}/records": "?n=0&n=1",
    "/api/v1/diff": "?from=reviews@1&to=reviews@1",
}
#: page routes: (method, path template) -> actions; state-changing forms carry the session's CSRF token
PAGES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/"): ("console.read",),
    ("GET", "/batches/{batch_id}"): ("console.read",),
    ("GET", "/batches/{batch_id}/records/{number}/raw"): ("console.read", RECORDS),
    ("GET", "/batches/{batch_id}/audit"): ("console.read",),
    ("POST", "/batches/{batch_id}/audit/decide"): ("console.read", "audit.decide"),
    ("POST", "/batches/{batch_id}/audit/sample"): ("console.read", "audit.sample"),
    ("POST", "/batches/{batch_id}/audit/complete"): ("console.read", "audit.complete"),
    ("GET", "/batches/{batch_id}/approval"): ("console.read",),
    ("GET", "/batches/{batch_id}/approval/statement"): ("console.read", "batch.approve"),
    ("POST", "/batches/{batch_id}/approve"): ("console.read", "batch.approve"),
    ("POST", "/batches/{batch_id}/approve/upload"): ("console.read", "batch.approve"),
    ("POST", "/batches/{batch_id}/reject"): ("console.read", "batch.reject"),
    ("GET", "/versions"): ("console.read",),
    ("GET", "/versions/{spec}"): ("console.read",),
    ("GET", "/lineage"): ("console.read",),
    ("GET", "/incidents"): ("console.read",),
    ("GET", "/log"): ("console.read",),
    ("GET", "/log/{seq}"): ("console.read",),
    ("GET", "/log/{seq}/proof.json"): ("console.read",),
}
PUBLIC_PAGES = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
WHO = ["admin", *PEOPLE]


def _grants(who: str) -> list[Grant]:
    return [Grant(Role.ADMIN)] if who == "admin" else [Grant(r) for r in PEOPLE[who]]


#: the state -> readers table of the issue, written out here (not imported) as the test's oracle
READERS = {
    "quarantined": {"screener", "reviewer"},
    "screened": {"screener", "reviewer"},
    "audited": {"approver"},
    "approved": {"approver"},
    "released": {"trainer", "approver", "auditor"},
    "rejected": {"auditor"},
    "revoked": {"auditor"},
}


def _logged_state(world: World) -> str:
    from dataward.evidence.load import trusted_state

    return trusted_state(world.ws).batches[world.fresh].state


def _should(who: str, actions: tuple[str, ...], world: World | None = None) -> bool:
    def ok(a: str) -> bool:
        if a == ANY:
            return True
        if a == RECORDS:
            assert world is not None
            return any(str(g.role) in READERS[_logged_state(world)] for g in _grants(who))
        return allowed(_grants(who), a, "vendor")

    return all(ok(a) for a in actions)


def _fill(path: str, world: World) -> str:
    return (
        path.replace("{batch_id}", world.fresh)
        .replace("{spec}", "reviews@1")
        .replace("{seq}", "1")
        .replace("{number}", "0")
    )


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[str]:
    with live_server(world.ws, server_side_signing=True) as url:
        yield url


@pytest.fixture(scope="module")
def offline_server(world: World) -> Iterator[str]:
    with live_server(world.ws, server_side_signing=False) as url:
        yield url


@pytest.fixture(params=["server-signing", "offline-signing"])
def any_server(request: pytest.FixtureRequest) -> str:
    """The matrix runs in both modes: without server-side signing, refusals must not change."""
    return str(request.getfixturevalue("server" if request.param == "server-signing" else "offline_server"))


def test_route_tables_cover_every_route(world: World) -> None:
    from fastapi.routing import APIRoute

    from dataward.web import _routes_api as routes_api
    from dataward.web import _routes_pages as routes_pages

    def table(router: Any) -> set[tuple[str, str]]:
        return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods}

    assert table(routes_api.router) == set(API)
    assert table(routes_pages.router) == set(PAGES) | PUBLIC_PAGES


def _api_call(client: httpx.Client, method: str, path: str, world: World, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = _fill(path, world) + QUERIES.get(path, "")
    return client.request(method, url, headers=headers, json=BODIES.get(path) if method == "POST" else None)


def test_api_every_role_every_endpoint(any_server: str, world: World) -> None:
    unexpected: list[str] = []
    with httpx.Client(base_url=any_server, timeout=60) as client:
        for who in WHO:
            token = world.token(who)
            for (method, path), actions in API.items():
                before = log_size(world.ws)
                should = _should(who, actions, world)
                r = _api_call(client, method, path, world, token)
                if r.status_code == 500 or (r.is_success and not should):
                    unexpected.append(f"{who} {method} {path}: {r.status_code} {r.text[:120]}")
                if should and r.status_code in (401, 403):
                    unexpected.append(f"{who} {method} {path}: refused ({r.status_code}) {r.text[:120]}")
                if not should:
                    assert r.status_code == 403, (who, path, r.status_code, r.text)
                    logged = denials_since(world.ws, before)
                    assert any(d["principal"] == who for d in logged), (who, path, "denial not logged")
    assert not unexpected, "\n".join(unexpected)


def test_api_without_valid_token(server: str, world: World) -> None:
    ws, admin = world.ws, world.ws.actor("admin")
    _, expired = create_token(ws, admin, "alice", timedelta(days=1))
    with ws.engine.begin() as conn:
        conn.execute(
            update(schema.tokens)
            .where(schema.tokens.c.token_hash == __import__("dataward.web.auth").web.auth.token_hash(expired))
            .values(expires_at="2000-01-01T00:00:00.000000Z")
        )
    info, revoked = create_token(ws, admin, "alice", timedelta(days=1))
    revoke_token(ws, admin, info.id)
    bad = {"none": None, "garbage": "not-a-token", "unknown": "dwt_" + "A" * 43, "expired": expired, "revoked": revoked}
    unexpected: list[str] = []
    with httpx.Client(base_url=server, timeout=60) as client:
        for name, token in bad.items():
            before = log_size(ws)
            for method, path in API:
                r = _api_call(client, method, path, world, token)
                if r.status_code != 401:
                    unexpected.append(f"{name} {method} {path}: {r.status_code}")
            # not one entry per refusal: counted per address and minute (tests/web/test_web_denials.py), so at
            # most the entry of a minute that ended while these ran
            logged = denials_since(ws, before)
            assert len(logged) <= 1, f"{name} token refusals logged one by one"
            assert all(d["principal"] == "(unauthenticated)" and d["count"] >= 1 for d in logged)
        # a browser session cookie is no credential for the API
        client.post("/login", data={"token": world.token("alice")})
        assert client.cookies.get("dw_session")
        r = client.get("/api/v1/whoami")
        assert r.status_code == 401
    assert not unexpected, "\n".join(unexpected)


def _session(server: str, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server, timeout=60)
    r = client.post("/login", data={"token": token, "next": "/"})
    if r.status_code == 403:  # no console.read: no session at all
        return client, ""
    assert r.status_code == 303, r.text
    page = client.get("/versions")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m is not None
    return client, m.group(1)


def _page_call(client: httpx.Client, method: str, path: str, world: World, csrf: str | None) -> httpx.Response:
    url = _fill(path, world)
    if method == "GET":
        return client.get(url)
    data: dict[str, Any] = {"record": "0", "decision": "ok", "reason": "authorization matrix"}
    if csrf is not None:
        data["csrf"] = csrf
    if path.endswith("/approve/upload"):
        return client.post(url, data=data, files={"statement": ("s.dsse", b"{}", "application/json")})
    return client.post(url, data=data)


def test_pages_every_role_every_route(any_server: str, world: World) -> None:
    unexpected: list[str] = []
    for who in WHO:
        client, csrf = _session(any_server, world.token(who))
        with closing(client):
            if not csrf:
                assert not _should(who, ("console.read",)), f"{who} could not sign in"
                r = client.get("/")
                assert r.status_code == 303 and "/login" in r.headers["location"]
                continue
            for (method, path), actions in PAGES.items():
                should = _should(who, actions, world)
                r = _page_call(client, method, path, world, csrf)
                ok = r.is_success or (r.status_code == 303 and "/login" not in r.headers.get("location", ""))
                if r.status_code == 500 or (ok and not should):
                    unexpected.append(f"{who} {method} {path}: {r.status_code}")
                if should and r.status_code == 403:
                    unexpected.append(f"{who} {method} {path}: refused {r.text[:200]}")
                if not should:
                    assert r.status_code == 403, (who, path, r.status_code)
    assert not unexpected, "\n".join(unexpected)


def test_posts_need_the_sessions_own_csrf_token(server: str, world: World) -> None:
    alice, alice_csrf = _session(server, world.token("alice"))
    sam, sam_csrf = _session(server, world.token("sam"))
    posts = [k for k in PAGES if k[0] == "POST"]
    with closing(alice), closing(sam):
        for _, path in posts:
            for client, csrf, name in (
                (alice, None, "alice without csrf"),
                (alice, "", "alice with empty csrf"),
                (alice, sam_csrf, "alice with sam's csrf"),
                (sam, alice_csrf, "sam with alice's csrf"),
            ):
                before = log_size(world.ws)
                r = _page_call(client, "POST", path, world, csrf)
                assert r.status_code == 403, (name, path, r.status_code, r.text[:200])
                assert "CSRF" in r.text
                # this principal's refusal, once: the log may also take the minute's roll-up of other tests'
                # refused logins (an access.denied entry with counts, no principal) while the request runs
                mine = [d for d in denials_since(world.ws, before) if d.get("principal") == name.split()[0]]
                assert len(mine) == 1, (name, path, "csrf refusal not logged", mine)
                assert mine[0]["action"] == "console.post" and "CSRF" in mine[0]["reason"]
        # logout is a post too: without the token it keeps the session
        assert alice.post("/logout", data={}).status_code == 403
        assert alice.get("/").status_code == 200
        # another principal's session id does not grant anything: sessions are server-side and random
        stranger = httpx.Client(base_url=server, timeout=60, cookies={"dw_session": "x" * 43})
        with stranger:
            r = stranger.get("/")
            assert r.status_code == 303 and "/login" in r.headers["location"]


def test_revoking_a_token_ends_its_sessions(server: str, world: World) -> None:
    ws, admin = world.ws, world.ws.actor("admin")
    info, secret = create_token(ws, admin, "dave", timedelta(hours=1))
    client, _ = _session(server, secret)
    with closing(client):
        assert client.get("/").status_code == 200
        revoke_token(ws, admin, info.id)
        r = client.get("/")
        assert r.status_code == 303 and "/login" in r.headers["location"]
        r = client.post("/login", data={"token": secret})
        assert r.status_code == 403 and "revoked" in r.text


def test_images_come_from_quarantine_only_for_its_readers(server: str, world: World, tmp_path: Path) -> None:
    import io

    from PIL import Image

    from dataward.acquire.acquire import acquire

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    png = tmp_path / "red.png"
    png.write_bytes(buf.getvalue())
    b = acquire(world.ws, world.ws.actor("ingrid"), "scratch", [png])
    # a quarantined batch: its screener and reviewer read it; the auditor, a trainer and the admin do not
    for who, expect in (("rita", 200), ("sam", 200), ("dave", 403), ("tina", 403), ("admin", 403)):
        client, _ = _session(server, world.token(who))
        with closing(client):
            r = client.get(f"/batches/{b.id}/records/0/raw")
            assert r.status_code == expect, (who, r.status_code)
            if expect == 200:
                assert r.headers["content-type"] == "image/png" and r.content == buf.getvalue()
            assert client.get(f"/batches/{b.id}/records/1/raw").status_code in (403, 404)
