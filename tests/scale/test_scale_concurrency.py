"""8 processes x 150 state-changing actions against one workspace, on SQLite and on PostgreSQL.

The full 8 x 1000 run is benchmarks/concurrency.py (the same worker code); this version takes well under
60 s per backend. Every action must either have taken effect with exactly its log entry, or have been
refused cleanly (ConflictError for a name another process took first, AuthorizationError for a denied
attempt, which itself is logged); the log must verify, with no lost, duplicated or forked entries, and
every signed checkpoint must be the root of the log's prefix of its size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dataward.core import merkle
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.log.verify import verify_log
from dataward.model.roles import Grant, Role
from dataward.principals import enroll
from dataward.sources import add_source
from dataward.store import schema

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, ACTIONS = 8, 150


def test_concurrent_writers_lose_nothing(make_workspace: Any, tmp_path: Path, catalog_url: str) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    admin = ws.actor("admin")
    enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "feed", kind="third-party", origin="https://example.org/feed")
    setup_entries = verify_log(ws).entries

    out = tmp_path / "outcomes.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "concurrency.py"), "--workspace", str(ws.path)]
    cmd += ["--processes", str(PROCESSES), "--actions", str(ACTIONS), "--outcomes", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes: list[dict[str, Any]] = json.loads(out.read_text())
    assert len(outcomes) == PROCESSES * ACTIONS

    # every action took effect or was refused cleanly, for the reason its kind allows
    refused = Counter((o["kind"], o["error"]) for o in outcomes if not o["ok"])
    assert set(refused) <= {("source", "ConflictError"), ("denied", "AuthorizationError")}
    assert all(o["ok"] for o in outcomes if o["kind"] in ("record", "acquire"))
    assert not any(o["ok"] for o in outcomes if o["kind"] == "denied")
    by_step = Counter(o["subject"] for o in outcomes if o["kind"] == "source" and o["ok"])
    steps = {o["subject"] for o in outcomes if o["kind"] == "source"}
    assert set(by_step) == steps and set(by_step.values()) == {1}  # one winner per contested name

    t = schema.log_entries
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t.c.seq, t.c.action, t.c.subject, t.c.leaf_hash).order_by(t.c.seq)).all()
        sources = set(conn.execute(select(schema.sources.c.name)).scalars())
        batches = set(conn.execute(select(schema.batches.c.id)).scalars())
        notes = conn.execute(select(schema.checkpoints.c.size, schema.checkpoints.c.note)).all()

    # no lost, duplicated or out-of-order entries
    assert [r.seq for r in rows] == list(range(len(rows)))
    entries = Counter((r.action, r.subject) for r in rows[setup_entries:])
    expected = Counter()
    for o in outcomes:
        if o["kind"] == "record":
            expected[("batch.verify", o["subject"])] += 1
        elif o["kind"] == "source" and o["ok"]:
            expected[("source.add", o["subject"])] += 1
        elif o["kind"] == "acquire":
            expected[("batch.acquire", o["subject"])] += 1
        elif o["kind"] == "denied":
            expected[("access.denied", o["subject"])] += 1
    assert entries == expected
    seq_of = {(r.action, r.subject): r.seq for r in rows}
    for o in outcomes:
        if o["kind"] == "record":
            assert o["seqs"] == [seq_of[("batch.verify", o["subject"])]]
    assert sources == {"feed"} | {s.removeprefix("source:") for s in steps}
    assert batches == {o["subject"].removeprefix("batch:") for o in outcomes if o["kind"] == "acquire"}

    # the log verifies, and every checkpoint signed along the way is a prefix of the final tree
    log = verify_log(ws)
    assert log.ok, [p.line() for p in log.problems]
    assert log.entries == len(rows) == setup_entries + sum(expected.values())
    pub = ws.log_public_key()
    roots = {}
    frontier = merkle.MerkleFrontier()
    for r in rows:
        frontier.append(bytes(r.leaf_hash))
        roots[frontier.size] = frontier.root()
    assert len(notes) >= len(rows) - setup_entries
    for size, note in notes:
        cp = parse_signed_checkpoint(note.encode(), {ws.origin: pub}, origin=ws.origin)
        assert cp.size == size and cp.root_hash == roots[size]

# `make check` (the quick lane) leaves these out: many processes appending
pytestmark = pytest.mark.slow
