"""API tokens through the CLI (create, list, revoke, rotate), stored only as hashes; `dataward serve`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from web_helpers import free_port, log_size

from dataward import principals
from dataward.cli import main
from dataward.errors import AuthorizationError, InputError
from dataward.log.query import show_entries
from dataward.model.roles import Grant, Role
from dataward.web.auth import authenticate, create_token, parse_duration
from dataward.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    w = Workspace.init(tmp_path / "ws", admin="admin")
    admin = w.actor("admin")
    principals.enroll(w, admin, "rita", [Grant(Role.REVIEWER)])
    return w


def _cli(ws: Workspace, *args: str, who: str = "admin") -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["-w", str(ws.path), "--as", who, *args])
    return int(code), out.getvalue()


def test_create_list_revoke_rotate(ws: Workspace) -> None:
    code, out = _cli(ws, "token", "create", "rita", "--expires", "2h", "--json")
    assert code == 0
    made = json.loads(out)
    secret = made["token"]
    assert secret.startswith("dwt_") and len(secret) >= 40 and made["status"] == "active"
    assert authenticate(ws, secret).name == "rita"
    # only the SHA-256 is stored: the secret appears nowhere in the catalog
    catalog = (ws.path / "catalog.db").read_bytes()
    assert secret.encode() not in catalog
    code, out = _cli(ws, "token", "list", "--json")
    listed = json.loads(out)
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    # rotate: create a new one, revoke the old one
    code, out = _cli(ws, "token", "create", "rita", "--json")
    new = json.loads(out)["token"]
    assert _cli(ws, "token", "revoke", made["id"])[0] == 0
    with pytest.raises(AuthorizationError, match="revoked"):
        authenticate(ws, secret)
    assert authenticate(ws, new).name == "rita"
    assert _cli(ws, "token", "revoke", made["id"])[0] != 0  # already revoked
    actions = [e.action for e in show_entries(ws, limit=10)]
    assert actions.count("token.create") == 2 and actions.count("token.revoke") == 1
    assert all(secret not in json.dumps(e.details) for e in show_entries(ws, limit=10))


def test_only_admins_manage_tokens_and_refusals_are_logged(ws: Workspace) -> None:
    before = log_size(ws)
    code, _ = _cli(ws, "token", "create", "rita", who="rita")
    assert code == AuthorizationError.exit_code
    last = show_entries(ws, limit=1)[0]
    assert last.seq >= before and last.action == "access.denied" and last.details["action"] == "token.create"
    assert _cli(ws, "token", "create", "nobody")[0] != 0
    assert _cli(ws, "token", "create", "rita", "--expires", "forever")[0] == InputError.exit_code


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_durations_and_expiry(ws: Workspace) -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("0d", "400d", "1y", "", "-1h"):
        with pytest.raises(InputError):
            parse_duration(bad)
    _, secret = create_token(ws, ws.actor("admin"), "rita", timedelta(seconds=1))
    assert authenticate(ws, secret).name == "rita"
    time.sleep(1.1)
    with pytest.raises(AuthorizationError, match="expired"):
        authenticate(ws, secret)
    with pytest.raises(AuthorizationError, match="unknown"):
        authenticate(ws, "dwt_" + "x" * 43)


@pytest.mark.slow
def test_serve_binds_loopback_and_serves(ws: Workspace, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATAWARD_WITNESS": str(tmp_path / "witness-serve.json")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dataward.cli import run; run()", "-w", str(ws.path), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120  # readiness wait, not a timing: a loaded CI box starts slowly
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("dataward serve did not start") from None
                time.sleep(0.2)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert httpx.get(f"http://127.0.0.1:{port}/static/console.js").status_code == 200
        spec = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").json()
        assert "/api/v1/batches/{batch_id}/policy" in spec["paths"]
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
