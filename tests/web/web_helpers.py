"""Helpers for the web console tests (imported by name: a unique module name, no package)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dataward import principals
from dataward.acquire.acquire import acquire
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.web.auth import create_token
from dataward.workflow import approval, audit, screening
from dataward.workflow.approval_policy import default_policy_text, set_policy
from dataward.workspace import Workspace

PEOPLE: dict[str, list[Role]] = {
    "ingrid": [Role.INGESTER],
    "sam": [Role.SCREENER],
    "rita": [Role.REVIEWER],
    "alice": [Role.APPROVER],
    "bob": [Role.APPROVER],
    "dave": [Role.AUDITOR],
    "tina": [Role.TRAINER],
}
FAST = ["integrity", "screening"]
# small samples must pass: a lax medium tier that needs two approvals (and lets masked PII through)
# (and skips detection openly: the default policy requires it in every tier)
MEDIUM = (
    "[tiers.medium]\napprovals = 2\nmax_audit_error_upper = 0.75\npii_allowed = true\nmax_flagged_fraction = 0.5\n"
    'required_checks = ["integrity", "screening"]\n'
)


def write_csv(path: Path, n: int, *, pii: bool = False, tag: str = "") -> Path:
    lines = ["text,label"]
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        extra = f" mail me at person{i}@example.com" if pii and i % 10 == 0 else ""
        lines.append(f"{tag}review number {i} was {'great' if i % 2 else 'poor'}{extra},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class World:
    ws: Workspace
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)  # principal -> secret
    token_ids: dict[str, str] = field(default_factory=dict)
    released: str = ""  # batch in ds@1
    review: str = ""  # screened, sampled: the browser test reviews it
    audited: str = ""  # audited, waiting for approvals (authz tests)
    fresh: str = ""  # quarantined, from its own source (the authorization tests act on it)

    def token(self, who: str) -> str:
        return self.tokens[who]


def build_world(tmp: Path) -> World:
    ws = Workspace.init(tmp / "ws", admin="admin")
    admin = ws.actor("admin")
    for name, roles in PEOPLE.items():
        principals.enroll(ws, admin, name, [Grant(r) for r in roles])
    set_policy(ws, admin, default_policy_text().replace("[tiers.medium]\n", MEDIUM), where="test policy")
    add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    # the authorization tests reject batches of their own source: rejections raise a source's risk
    add_source(ws, admin, "scratch", kind="third-party", origin="https://scratch.example", license="MIT")
    w = World(ws, tmp)
    for name in ["admin", *PEOPLE]:
        info, secret = create_token(ws, admin, name, timedelta(days=1))
        w.tokens[name], w.token_ids[name] = secret, info.id
    data = tmp / "in"
    data.mkdir()
    a = {n: ws.actor(n) for n in PEOPLE}

    def to_audited(n: int, tag: str) -> str:
        b = acquire(ws, a["ingrid"], "vendor", [write_csv(data / f"{tag}.csv", n, tag=tag)])
        screening.screen_batch(ws, a["sam"], b.id, checks=FAST)
        audit.draw_sample(ws, a["rita"], b.id, size=6)
        items = audit.sample_items(ws, b.id)
        audit.record_decisions(ws, a["rita"], b.id, [audit.Decision(i.record, "ok") for i in items])
        audit.complete_audit(ws, a["rita"], b.id)
        return b.id

    from dataward.release.versions import release

    w.released = to_audited(40, "first ")
    approval.approve(ws, a["alice"], w.released)
    approval.approve(ws, a["bob"], w.released)
    release(ws, a["alice"], "reviews", [w.released])
    w.audited = to_audited(40, "second ")
    rb = acquire(ws, a["ingrid"], "vendor", [write_csv(data / "review.csv", 60, pii=True, tag="third ")])
    screening.screen_batch(ws, a["sam"], rb.id, checks=FAST)
    audit.draw_sample(ws, a["rita"], rb.id, size=8)
    w.review = rb.id
    w.fresh = acquire(ws, a["ingrid"], "scratch", [write_csv(data / "fresh.csv", 20, tag="fourth ")]).id
    return w


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(ws: Workspace, *, server_side_signing: bool) -> Iterator[str]:
    """uvicorn on 127.0.0.1 and a free port, in a thread; yields the base URL."""
    import uvicorn

    from dataward.web.app import create_app

    app = create_app(ws, server_side_signing=server_side_signing)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # readiness wait; a loaded machine starts slowly
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def log_size(ws: Workspace) -> int:
    from dataward.log.query import show_entries

    last = show_entries(ws, limit=1)
    return last[0].seq + 1 if last else 0


def denials_since(ws: Workspace, size: int) -> list[dict[str, Any]]:
    """The access.denied entries appended since the log had ``size`` entries."""
    from dataward.log.query import show_entries

    return [e.details for e in show_entries(ws, action="access.denied", limit=1000) if e.seq >= size]
