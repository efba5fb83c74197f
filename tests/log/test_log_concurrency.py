"""Several processes appending to one log at once never fork it (SQLite and PostgreSQL).

Each process appends entries one transaction at a time and runs the witness check in between, sharing one
witness file; afterwards the log must verify with every entry present once, every signed checkpoint must be
a prefix of the final tree, and the witness file must still be well-formed and consistent with the log.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dataward.core import merkle
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.log.verify import verify_log
from dataward.store import _schema as schema

PROCESSES, EACH = 4, 25

WORKER = """
import sys
from dataward.workspace import Workspace
from dataward.log.witness import check_witness
ws = Workspace.open(sys.argv[1])
me = ws.actor("admin")
for j in range(int(sys.argv[3])):
    ws.record(me, "log.verify", f"log:p{sys.argv[2]}-{j}", {"process": int(sys.argv[2]), "n": j})
    check_witness(ws)
ws.engine.dispose()
"""


def test_concurrent_appenders_do_not_fork_the_log(
    make_workspace: Any, tmp_path: Path, catalog_url: str, _witness: Path
) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    start = verify_log(ws).entries
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(ws.path), str(i), str(EACH)], stderr=subprocess.PIPE)
        for i in range(PROCESSES)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-2000:]

    res = verify_log(ws)
    assert res.ok, [p.line() for p in res.problems]
    assert res.entries == start + PROCESSES * EACH
    t = schema.log_entries
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t.c.seq, t.c.subject, t.c.leaf_hash).order_by(t.c.seq)).all()
        notes = conn.execute(select(schema.checkpoints.c.size, schema.checkpoints.c.note)).all()
    assert [r.seq for r in rows] == list(range(len(rows)))
    subjects = [r.subject for r in rows[start:]]
    assert sorted(subjects) == sorted(f"log:p{i}-{j}" for i in range(PROCESSES) for j in range(EACH))
    # each process's own entries are in its order (appends are serialized, not reordered)
    for i in range(PROCESSES):
        mine = [s for s in subjects if s.startswith(f"log:p{i}-")]
        assert mine == [f"log:p{i}-{j}" for j in range(EACH)]
    # one checkpoint per transaction, each the root of the prefix of its size
    frontier = merkle.MerkleFrontier()
    roots = {0: merkle.EMPTY_ROOT}
    for r in rows:
        frontier.append(bytes(r.leaf_hash))
        roots[frontier.size] = frontier.root()
    assert {size for size, _ in notes} >= set(range(start, len(rows) + 1)) - {start}
    for size, note in notes:
        cp = parse_signed_checkpoint(note.encode(), {ws.origin: ws.log_public_key()}, origin=ws.origin)
        assert cp.size == size and cp.root_hash == roots[size]
    # the shared witness file survived concurrent updates and holds a checkpoint of this log
    from dataward.core.dsse import key_id

    seen = json.loads(_witness.read_text())[f"log {ws.origin} {key_id(ws.log_public_key())}"]  # keyed by the log
    assert roots[int(seen["size"])] == base64.b64decode(seen["root"])
    assert int(seen["size"]) == len(rows)  # the last check came after the last append: never went backwards


def test_verify_while_others_append_reports_no_false_problem(
    make_workspace: Any, tmp_path: Path, catalog_url: str
) -> None:
    """verify reads one snapshot: entries appended meanwhile are neither missing nor uncovered."""
    ws = make_workspace(tmp_path, catalog_url)
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(ws.path), "0", "60"], stderr=subprocess.PIPE)
    try:
        runs = 0
        while proc.poll() is None or runs < 2:
            res = verify_log(ws)
            assert res.ok, [p.line() for p in res.problems]
            par = verify_log(ws, workers=2, parallel_min_entries=0, chunk=8)
            assert par.ok, [p.line() for p in par.problems]
            runs += 1
    finally:
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()[-2000:]

# `make check` (the quick lane) leaves these out: many processes appending
pytestmark = pytest.mark.slow
