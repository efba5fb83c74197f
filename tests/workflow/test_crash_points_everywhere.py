"""Kill every state-changing command between its transactions (``DATAWARD_CRASH_AT``: ``<action>.before-commit``
and ``<action>.after-commit``, os._exit(137) as SIGKILL would) and check what is left: `log verify` and every
batch's `verify` pass, the command can be run again when its change was not committed, and after
`doctor --fix --grace 0` no unreferenced object or temporary file remains."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from workflow_helpers import Flow

import dataward
from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.log.verify import verify_log
from dataward.maintenance import collect_garbage
from dataward.store.keyring import FileKeyring
from dataward.workflow import approval, audit
from dataward.workflow.screening import screen_batch

SRC = str(Path(dataward.__file__).resolve().parents[1])
FAST = ["integrity", "screening"]

pytestmark = pytest.mark.slow


def _screened(flow: Flow, n: int = 60) -> str:
    b = flow.batch(n)
    screen_batch(flow.ws, flow.actor("sam"), b.id, checks=FAST)
    return b.id


def _audited(flow: Flow) -> str:
    bid = _screened(flow, 120)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=40)  # enough for the default tier's bound
    items = audit.sample_items(flow.ws, bid)
    audit.record_decisions(flow.ws, flow.actor("rita"), bid, [audit.Decision(i.record, "ok") for i in items])
    audit.complete_audit(flow.ws, flow.actor("rita"), bid)
    return bid


def _approved(flow: Flow) -> str:
    bid = _audited(flow)
    assert approval.approve(flow.ws, flow.actor("alice"), bid).complete
    return bid


def _pub(flow: Flow, name: str) -> str:
    _entry, pub = FileKeyring().generate(name)
    path = flow.tmp / f"{name}-{pub.keyid[:8]}.pub"
    path.write_text(pub.hex())
    return str(path)


def _sampled(flow: Flow) -> str:
    bid = _screened(flow)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=20)
    items = audit.sample_items(flow.ws, bid)
    audit.record_decisions(flow.ws, flow.actor("rita"), bid, [audit.Decision(i.record, "ok") for i in items])
    return bid


def _released(flow: Flow) -> str:
    from dataward.release.versions import release

    release(flow.ws, flow.actor("alice"), "ds", [_approved(flow)])
    release(flow.ws, flow.actor("alice"), "ds", [_approved(flow)])
    return "ds"


def _intel_add(flow: Flow) -> tuple[list[str], str]:
    from dataward.screen.intel import FORMAT, parse_feed, sign_feed, write_keypair

    priv, pub = flow.tmp / "feed.key", flow.tmp / "feed.pub"
    write_keypair(priv, pub)
    from dataward.screen.intel import load_private_key

    feed = parse_feed(
        {"format": FORMAT, "id": "acme", "version": 1, "indicators": [{"id": "a1", "type": "token", "value": "cfmn"}]}
    )
    path = flow.tmp / "feed.dsse.json"
    path.write_bytes(sign_feed(feed, load_private_key(priv)))
    return ["intel", "add", str(path), "--key", str(pub)], "admin"


def _keyless(flow: Flow, name: str) -> str:
    """``name`` with its key revoked: a principal that needs a new key (``key add``)."""
    from dataward.principals import revoke_key

    revoke_key(flow.ws, flow.actor("admin"), _key_of(flow, name)[:16], reason="lost")
    return name


def _key_of(flow: Flow, name: str) -> str:
    with flow.ws.engine.connect() as conn:
        return str(flow.ws.active_key_row(conn, name).keyid)


#: command -> (its actions, a set-up that returns the command line and who runs it)
COMMANDS: dict[str, tuple[tuple[str, ...], Callable[[Flow], tuple[list[str], str]]]] = {
    "acquire": (("batch.acquire",), lambda f: (["acquire", "vendor", str(f.batch_file())], "ingrid")),
    "source add": (
        ("source.add",),
        lambda f: (["source", "add", "s9", "--kind", "internal", "--origin", "x"], "admin"),
    ),
    "principal add": (
        ("principal.add",),
        lambda f: (["principal", "add", "dan", "--role", "reviewer", "--key", _pub(f, "dan")], "admin"),
    ),
    "key rotate": (("key.rotate",), lambda f: (["key", "rotate", "rita", "--key", _pub(f, "rita")], "admin")),
    "key rotate (own)": (("key.rotate",), lambda f: (["key", "rotate", "rita", "--no-passphrase"], "rita")),
    "key revoke": (
        ("key.revoke",),
        lambda f: (["key", "revoke", _key_of(f, "bob")[:16], "--reason", "lost laptop"], "admin"),
    ),
    "principal grant": (("role.grant",), lambda f: (["principal", "grant", "rita", "screener"], "admin")),
    "principal revoke-role": (("role.revoke",), lambda f: (["principal", "revoke-role", "carl", "ingester"], "admin")),
    "key add": (("key.add",), lambda f: (["key", "add", _keyless(f, "bob"), "--key", _pub(f, "bob")], "admin")),
    "intel add": (("intel.add",), lambda f: _intel_add(f)),
    "screen": (
        ("batch.screen",),
        lambda f: (["screen", f.batch(60).id, "--check", "integrity", "--check", "screening"], "sam"),
    ),
    "audit sample": (("audit.sample",), lambda f: (["audit", "sample", _screened(f), "--size", "20"], "rita")),
    "audit complete": (("audit.complete",), lambda f: (["audit", "complete", _sampled(f)], "rita")),
    "approve": (("batch.approve",), lambda f: (["approve", _audited(f)], "alice")),
    "release": (("dataset.release",), lambda f: (["release", "ds", "--add", _approved(f)], "alice")),
    "rollback": (
        ("dataset.rollback",),
        lambda f: (["rollback", _released(f), "--to", "1", "--reason", "bad"], "alice"),
    ),
}

CASES = [
    pytest.param(cmd, f"{action}.{when}", id=f"{cmd}@{action}.{when}")
    for cmd, (actions, _setup) in COMMANDS.items()
    for action in actions
    for when in ("before-commit", "after-commit")
]


def _run(flow: Flow, argv: list[str], who: str, crash_at: str | None) -> Any:
    env = {**os.environ, "PYTHONPATH": SRC, "DATAWARD_SANDBOX": "0"}
    env.pop("DATAWARD_CRASH_AT", None)
    if crash_at:
        env["DATAWARD_CRASH_AT"] = crash_at
    cmd = [sys.executable, "-c", "import sys; from dataward.cli import main; sys.exit(main(sys.argv[1:]))"]
    return subprocess.run(
        [*cmd, "-w", str(flow.ws.path), "--as", who, *argv], env=env, capture_output=True, text=True, timeout=600
    )


def _log_count(flow: Flow) -> int:
    from sqlalchemy import func, select

    from dataward.store import _schema as schema

    with flow.ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.log_entries)).scalar() or 0)


@pytest.fixture
def crash_flow(flow: Flow) -> Flow:
    def batch_file() -> Path:
        path = flow.tmp / f"fresh-{len(list(flow.tmp.iterdir()))}.csv"
        path.write_text("text,label\n" + "".join(f"fresh row {i},pos\n" for i in range(20)))
        return path

    flow.batch_file = batch_file  # type: ignore[attr-defined]
    return flow


@pytest.mark.parametrize(("command", "point"), CASES)
def test_a_crash_between_transactions_leaves_a_verifiable_workspace(crash_flow: Flow, command: str, point: str) -> None:
    flow = crash_flow
    argv, who = COMMANDS[command][1](flow)
    flow.ws.engine.dispose()
    before = _log_count(flow)
    done = _run(flow, argv, who, point)
    assert done.returncode == 137, f"{command} did not reach {point}: exit {done.returncode}: {done.stderr[-1500:]}"
    flow.ws.engine.dispose()
    after = _log_count(flow)
    # before the commit nothing of the change is kept; after it, the change and its log entry are all there
    assert (after > before) == point.endswith("after-commit"), (point, before, after)
    assert verify_log(flow.ws).ok, point
    for b in list_batches(flow.ws):
        assert verify_batch(flow.ws, b.id).ok, (point, b.id)
    collect_garbage(flow.ws, flow.actor("admin"), grace_seconds=0, fix=True)
    left = collect_garbage(flow.ws, None, grace_seconds=0)
    assert left["unreferenced_objects"] == [] and left["stale_temp_files"] == [], (point, left)
    if point.endswith("before-commit"):  # nothing was committed: the same command runs again, cleanly
        again = _run(flow, argv, who, None)
        assert again.returncode == 0, (point, again.stderr[-1500:])
        assert verify_log(flow.ws).ok
