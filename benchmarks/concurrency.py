"""Concurrent writers against one workspace: P processes x N state-changing actions each.

The mixture per process: mostly ``ws.record`` entries, plus source adds whose names collide across
processes (one wins, the others are refused with ConflictError), tiny acquisitions, and denied attempts
(an ingester adding a source: refused and logged as ``access.denied``). Afterwards the log must verify,
hold exactly the entries the processes reported, with sequence numbers 0..n-1 and no gaps.

    .venv/bin/python benchmarks/concurrency.py --catalog sqlite            # 8 x 1000 on SQLite
    .venv/bin/python benchmarks/concurrency.py --catalog "$DATAWARD_TEST_PG_URL"
    .venv/bin/python benchmarks/concurrency.py --workspace WS --processes 8 --actions 150 --outcomes out.json

With ``--workspace`` the workspace must exist with principals ``admin`` and ``ingrid`` (ingester) and a
source ``feed``; otherwise one is created under a temporary directory. tests/scale/test_scale_concurrency.py
runs the 8 x 150 version and checks the outcomes itself.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dataward.acquire.acquire import acquire
from dataward.errors import AuthorizationError, ConflictError
from dataward.log.verify import verify_log
from dataward.model.roles import Grant, Role
from dataward.principals import enroll
from dataward.sources import add_source
from dataward.workspace import Workspace


def setup_workspace(path: Path, catalog: str | None) -> Workspace:
    ws = Workspace.init(path, admin="admin", catalog=catalog)
    admin = ws.actor("admin")
    enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "feed", kind="third-party", origin="https://example.org/feed")
    return ws


def kind_of(i: int) -> str:
    """The action a process takes at step ``i`` (the same schedule in every process, so names collide)."""
    if i % 10 == 3:
        return "source"
    if i % 25 == 7:
        return "acquire"
    if i % 50 == 11:
        return "denied"
    return "record"


def worker(args: tuple[str, int, int, str]) -> list[dict[str, Any]]:
    ws_path, w, n, tmp = args
    ws = Workspace.open(ws_path)
    admin, ingrid = ws.actor("admin"), ws.actor("ingrid")
    out: list[dict[str, Any]] = []
    try:
        for i in range(n):
            kind = kind_of(i)
            o: dict[str, Any] = {"w": w, "i": i, "kind": kind, "ok": True, "seqs": [], "error": None}
            try:
                if kind == "record":
                    subject = f"worker:{w}:{i}"
                    o["subject"] = subject
                    o["seqs"] = [e.seq for e in ws.record(ingrid, "batch.verify", subject, {"w": w, "i": i})]
                elif kind == "source":
                    o["subject"] = f"source:s{i}"
                    add_source(ws, admin, f"s{i}", kind="internal", origin=f"worker {w}")
                elif kind == "acquire":
                    f = Path(tmp) / f"w{w}-{i}.txt"
                    f.write_bytes(f"worker {w} step {i}\nsecond record\n".encode())
                    b = acquire(ws, ingrid, "feed", [f], workers=1)
                    o["subject"] = f"batch:{b.id}"
                else:
                    o["subject"] = f"source:denied-{w}-{i}"
                    add_source(ws, ingrid, f"denied-{w}-{i}", kind="internal", origin="x")
            except (ConflictError, AuthorizationError) as exc:
                o["ok"] = False
                o["error"] = type(exc).__name__
            out.append(o)
    finally:
        ws.engine.dispose()
    return out


def run(ws_path: Path, processes: int, actions: int) -> tuple[list[dict[str, Any]], float]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.get_context("spawn")
        t0 = time.perf_counter()
        with ctx.Pool(processes) as pool:
            results = pool.map(worker, [(str(ws_path), w, actions, tmp) for w in range(processes)])
        elapsed = time.perf_counter() - t0
    return [o for r in results for o in r], elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default="sqlite", help="'sqlite' or a PostgreSQL URL (new workspace)")
    ap.add_argument("--workspace", type=Path, help="an existing workspace (see above)")
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--actions", type=int, default=1000)
    ap.add_argument("--outcomes", type=Path, help="write every action's outcome here (JSON)")
    a = ap.parse_args(argv)
    tmpdir = None
    if a.workspace is None:
        tmpdir = tempfile.TemporaryDirectory()
        a.workspace = Path(tmpdir.name) / "ws"
        setup_workspace(a.workspace, None if a.catalog == "sqlite" else a.catalog).engine.dispose()
    try:
        outcomes, elapsed = run(a.workspace, a.processes, a.actions)
        ws = Workspace.open(a.workspace)
        log = verify_log(ws)
        ws.engine.dispose()
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    done = sum(o["ok"] for o in outcomes)
    summary = {
        "catalog": ws.engine.dialect.name,
        "processes": a.processes,
        "actions": len(outcomes),
        "took_effect": done,
        "refused": len(outcomes) - done,
        "seconds": round(elapsed, 2),
        "actions_per_second": round(len(outcomes) / elapsed, 1),
        "log_entries": log.entries,
        "log_ok": log.ok,
        "log_problems": [p.line() for p in log.problems[:5]],
    }
    if a.outcomes:
        a.outcomes.write_text(json.dumps(outcomes), encoding="utf-8")
    print(
        f"{summary['catalog']}: {a.processes} processes x {a.actions} actions in {elapsed:.1f} s "
        f"({summary['actions_per_second']}/s); {done} took effect, {summary['refused']} refused; "
        f"log {log.entries} entries, {'verifies' if log.ok else 'DOES NOT VERIFY'}",
        file=sys.stderr,
    )
    print(json.dumps(summary))
    return 0 if log.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("DATAWARD_WITNESS", os.path.join(tempfile.gettempdir(), "dataward-bench-witness.json"))
    # the bench principals' keys live in a scratch keyring, never in the user's own
    os.environ.setdefault("DATAWARD_KEYRING", tempfile.mkdtemp(prefix="dataward-bench-keyring-"))
    sys.exit(main())
