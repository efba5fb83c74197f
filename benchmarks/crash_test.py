"""Crash test: SIGKILL dataward at random points during acquire, approve and release, then check the workspace.

A long-lived worker process imports dataward once and forks one child per operation; the driver kills the
child with SIGKILL after a random delay (uniform over 0..1.3x the operation's measured duration, so some
finish), then checks, with nothing cached from before the kill:

- the audit log verifies (``verify_log(ws).ok``: signatures, tree, stored nodes, signed checkpoint);
- every batch verifies (``verify_batch``: manifest signature, every file, record digest and Merkle root);
- no version is half made: every version row has its batches, its signed manifest verifies against the
  catalog (``verify_version``), every batch in a version is released, and every released batch is in a
  version;
- the log matches the catalog both ways: every batch row has its ``batch.acquire`` entry and every such
  entry its batch row; every version row its ``dataset.release`` entry and vice versa; every approved batch
  carries a valid signed approval.

Usage: python benchmarks/crash_test.py [--trials N] [--seed S] [--json]
(the fast variant, >= 100 trials, runs in tests/versions/test_crash.py). There is no peer to compare with:
the figures are kill counts per operation and the share of kills that landed mid-operation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEOPLE = {"ingrid": "ingester", "sam": "screener", "rita": "reviewer", "alice": "approver"}
OPS = ("acquire", "approve", "release")


# the worker (child side) -----------------------------------------------------------------------------------
def _run_op(cmd: dict[str, Any]) -> None:
    from dataward.workspace import Workspace

    ws = Workspace.open(cmd["ws"])
    try:
        _dispatch(ws, cmd)
    finally:
        ws.engine.dispose()


def _dispatch(ws: Any, cmd: dict[str, Any]) -> None:
    from dataward.acquire.acquire import acquire
    from dataward.release.versions import release
    from dataward.workflow import approval, audit, screening

    op = cmd["op"]
    if op == "acquire":
        acquire(ws, ws.actor("ingrid"), "vendor", [cmd["path"]])
    elif op == "approve":
        b = cmd["batch"]
        screening.screen_batch(ws, ws.actor("sam"), b, checks=["integrity", "screening"])
        audit.draw_sample(ws, ws.actor("rita"), b)
        items = audit.sample_items(ws, b)
        audit.record_decisions(ws, ws.actor("rita"), b, [audit.Decision(i.record, "ok") for i in items])
        audit.complete_audit(ws, ws.actor("rita"), b)
        approval.approve(ws, ws.actor("alice"), b)
    elif op == "release":
        release(ws, ws.actor("alice"), cmd["dataset"], [cmd["batch"]])
    else:
        raise ValueError(op)


def _warm_up() -> None:
    """Run each operation once on a scratch workspace, so that every lazy import happens before forking."""
    import gc

    with tempfile.TemporaryDirectory(prefix="dataward-warm-") as tmp:
        ws = Path(tmp) / "ws"
        make_workspace(ws)
        p = Path(tmp) / "d.csv"
        p.write_text("text,label\nwarm,0\nup,1\n", encoding="utf-8")
        _run_op({"op": "acquire", "ws": str(ws), "path": str(p)})
        b = batches_in(ws, "quarantined")[0]
        _run_op({"op": "approve", "ws": str(ws), "batch": b})
        _run_op({"op": "release", "ws": str(ws), "batch": b, "dataset": "warm"})
    gc.collect()  # the scratch workspace's engines are gone; no connection is inherited by the children


def worker_main() -> None:
    """Read one JSON command per line and fork a child for it. Protocol per command: print the child's pid;
    print ``exited`` once it has ended (waitid with WNOWAIT: it stays an unreaped zombie, so its pid cannot
    be reused and the driver's kill can only ever reach our own child); wait for the driver's ``reap``;
    reap it and print its status."""
    _warm_up()
    while line := sys.stdin.readline():
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _run_op(cmd)
            except BaseException as exc:  # report, never propagate into the worker loop
                sys.stderr.write(f"op {cmd['op']} failed: {type(exc).__name__}: {exc}\n")
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        print(json.dumps({"exited": pid}), flush=True)
        sys.stdin.readline()  # "reap"
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": status}), flush=True)


# the driver ------------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=env,
        )
        self._buf = b""

    def _send(self, obj: Any) -> None:
        assert self.proc.stdin
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    def _line(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The worker's next line (None if none came within ``timeout`` seconds)."""
        assert self.proc.stdout
        fd = self.proc.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("the crash-test worker died: " + self.close())
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        out: dict[str, Any] = json.loads(line)
        return out

    def run(self, cmd: dict[str, Any], kill_after: float | None) -> str:
        """Run ``cmd`` in a fresh child; SIGKILL it if still running after ``kill_after`` s.

        Returns 'killed', 'done' or 'failed'. The child is not reaped before the kill decision, so the pid
        signalled is always our own child (alive or a zombie), never a reused one.
        """
        self._send(cmd)
        first = self._line()
        assert first is not None
        pid = int(first["pid"])
        if self._line(kill_after) is None:  # still running when the delay ran out
            os.kill(pid, signal.SIGKILL)
            assert self._line() is not None  # "exited"
        self._send("reap")
        last = self._line()
        assert last is not None
        status = int(last["status"])
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            return "killed"
        return "done" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "failed"

    def close(self) -> str:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""


def lenient_policy_text() -> str:
    """The default policy, relaxed so that tiny test batches can pass the gate."""
    from dataward.workflow import approval_policy

    text = approval_policy.default_policy_text()
    for key in ("max_audit_error_upper", "max_flagged_fraction"):
        text = re.sub(rf"{key} = [0-9.]+", f"{key} = 1.0", text)
    return text.replace("approvals = 2", "approvals = 1").replace(', "detection"]', "]")


def make_workspace(path: Path) -> None:
    from dataward import principals
    from dataward.model.roles import Grant, Role
    from dataward.sources import add_source
    from dataward.workflow import approval_policy
    from dataward.workspace import Workspace

    # the principals' keys live in a keyring next to the workspace (inherited by the worker processes)
    os.environ.setdefault("DATAWARD_KEYRING", str(path.parent / "keyring"))
    ws = Workspace.init(path, admin="admin")
    admin = ws.actor("admin")
    for name, role in PEOPLE.items():
        principals.enroll(ws, admin, name, [Grant(Role(role))])
    add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    approval_policy.set_policy(ws, admin, lenient_policy_text(), where="crash-test policy")
    ws.engine.dispose()


@dataclass
class Report:
    trials: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    checks: int = 0
    seconds: float = 0.0
    check_seconds: float = 0.0
    durations: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": dict(self.trials),
            "total_trials": sum(self.trials.values()),
            "outcomes": dict(self.outcomes),
            "checks": self.checks,
            "problems": self.problems,
            "ok": not self.problems,
            "seconds": round(self.seconds, 1),
            "check_seconds": round(self.check_seconds, 1),
            "calibrated_op_seconds": {k: round(v, 3) for k, v in self.durations.items()},
        }


def check_workspace(path: Path, *, full: bool = True) -> list[str]:
    """Every invariant listed in the module docstring; returns the problems (empty: all hold)."""
    from sqlalchemy import select

    from dataward.acquire.verify import verify_batch
    from dataward.batches import list_batches
    from dataward.log.verify import verify_log
    from dataward.release.versions import approval_problem, list_versions, verify_version
    from dataward.store import _schema as schema
    from dataward.workspace import Workspace

    ws = Workspace.open(path)
    problems: list[str] = []
    try:
        lv = verify_log(ws)
        problems += [f"log: {p.line()}" for p in lv.problems]
        batches = list_batches(ws)
        versions = list_versions(ws)
        t = schema.log_entries
        with ws.engine.connect() as conn:
            acquired = {
                r.subject.split(":", 1)[1]
                for r in conn.execute(select(t.c.subject).where(t.c.action == "batch.acquire"))
                if r.subject.startswith("batch:")
            }
            released_entries = {
                r.subject.split(":", 1)[1]
                for r in conn.execute(
                    select(t.c.subject).where(t.c.action.in_(("dataset.release", "dataset.rollback")))
                )
            }
            keys = ws.public_keys(conn)
            for b in batches:
                if b.state in ("approved", "released"):
                    why = approval_problem(ws, conn, b, keys)
                    if why:
                        problems.append(f"batch {b.id} is {b.state} without a valid approval: {why}")
            vb, dv = schema.version_batches, schema.dataset_versions
            counts = Counter((r.dataset, r.number) for r in conn.execute(select(vb.c.dataset, vb.c.number)))
            declared = {(r.dataset, r.number): int(r.batch_count) for r in conn.execute(select(dv))}
        ids = {b.id for b in batches}
        problems += [f"batch {i} has no acquire log entry" for i in sorted(ids - acquired)]
        problems += [f"acquire log entry for {i} but no batch row" for i in sorted(acquired - ids)]
        specs = {v.spec for v in versions}
        problems += [f"version {s} has no release log entry" for s in sorted(specs - released_entries)]
        problems += [f"release log entry for {s} but no version row" for s in sorted(released_entries - specs)]
        in_versions: set[str] = set()
        for v in versions:
            in_versions.update(v.batches)
            have, want = counts[(v.dataset, v.number)], declared[(v.dataset, v.number)]
            if have != want:
                problems.append(f"version {v.spec} is half made ({have} batch rows, {want} declared)")
            rep = verify_version(ws, v.spec, full=False)
            problems += [f"version {v.spec}: {p}" for p in rep.problems]
        for b in batches:
            if b.state == "released" and b.id not in in_versions:
                problems.append(f"batch {b.id} is released but in no version")
            if full:
                rep2 = verify_batch(ws, b.id)
                problems += [f"batch {b.id}: {p.line()}" for p in rep2.problems]
    finally:
        ws.engine.dispose()
    return problems


def batches_in(path: Path, state: str) -> list[str]:
    from dataward.batches import list_batches
    from dataward.workspace import Workspace

    ws = Workspace.open(path)
    try:
        return [b.id for b in list_batches(ws, state=state)]
    finally:
        ws.engine.dispose()


def run_trials(
    root: Path,
    counts: dict[str, int],
    *,
    seed: int = 0,
    rows: int = 3,
    check_every: int = 1,
    progress: Any = None,
) -> Report:
    """Kill ``counts[op]`` operations of each kind at random points; check the workspace after each."""
    rng = random.Random(seed)
    ws_path = root / "ws"
    make_workspace(ws_path)
    env = {**os.environ, "DATAWARD_WITNESS": str(root / "witness.json")}
    worker = Worker(env)
    report = Report()
    start = time.perf_counter()
    n = 0

    def data_file() -> str:
        """A delivery: a CSV, and every other time a directory with an opaque file beside it (written to the
        store around the page cache, ADR 0058: whole blocks direct, a tail buffered)."""
        nonlocal n
        n += 1
        d = root / "in" / f"d{n}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / "d.csv"
        lines = [f"row {n}-{i} {rng.random():.6f},{i % 2}" for i in range(rows)]
        p.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
        if n % 2:
            return str(p)
        (d / "blob.bin").write_bytes(rng.randbytes(rng.randrange(256 << 10, 1 << 20)))
        return str(d)

    def timed(cmd: dict[str, Any]) -> float:
        t = time.perf_counter()
        outcome = worker.run(cmd, None)
        if outcome != "done":
            report.problems.append(f"calibration {cmd['op']} {outcome}")
        return time.perf_counter() - t

    try:
        samples: dict[str, list[float]] = {op: [] for op in OPS}
        for _ in range(3):  # the median of three runs of each operation, unkilled
            samples["acquire"].append(timed({"op": "acquire", "ws": str(ws_path), "path": data_file()}))
            first = batches_in(ws_path, "quarantined")[0]
            samples["approve"].append(timed({"op": "approve", "ws": str(ws_path), "batch": first}))
            cmd0 = {"op": "release", "ws": str(ws_path), "batch": first, "dataset": "train"}
            samples["release"].append(timed(cmd0))
        durations = {op: sorted(v)[1] for op, v in samples.items()}
        report.durations = durations
        plan = [op for op in OPS for _ in range(counts.get(op, 0))]
        rng.shuffle(plan)
        for i, op in enumerate(plan):
            cmd: dict[str, Any] = {"op": op, "ws": str(ws_path)}
            if op == "acquire":
                cmd["path"] = data_file()
            elif op == "approve":
                fresh = batches_in(ws_path, "quarantined")
                if not fresh:
                    worker.run({"op": "acquire", "ws": str(ws_path), "path": data_file()}, None)
                    fresh = batches_in(ws_path, "quarantined")
                cmd["batch"] = fresh[0]
            else:
                ready = batches_in(ws_path, "approved")
                if not ready:
                    b = batches_in(ws_path, "quarantined") or []
                    if not b:
                        worker.run({"op": "acquire", "ws": str(ws_path), "path": data_file()}, None)
                        b = batches_in(ws_path, "quarantined")
                    worker.run({"op": "approve", "ws": str(ws_path), "batch": b[0]}, None)
                    ready = batches_in(ws_path, "approved")
                if not ready:
                    report.problems.append("could not prepare an approved batch for a release trial")
                    continue
                cmd["batch"] = ready[0]
                cmd["dataset"] = rng.choice(["train", "eval"])
            delay = rng.uniform(0, 1.3 * durations[op])
            outcome = worker.run(cmd, delay)
            report.trials[op] += 1
            report.outcomes[f"{op}:{outcome}"] += 1
            if outcome == "failed":
                report.problems.append(f"trial {i} ({op}) failed without being killed")
            if (i + 1) % check_every == 0 or i == len(plan) - 1:
                full = (i + 1) % (check_every * 10) == 0 or i == len(plan) - 1
                t0 = time.perf_counter()
                problems = check_workspace(ws_path, full=full)
                report.check_seconds += time.perf_counter() - t0
                report.checks += 1
                report.problems += [f"after trial {i} ({op} {outcome}): {p}" for p in problems]
                if problems:
                    break
            if progress:
                progress(i + 1, len(plan))
    finally:
        err = worker.close()
        report.seconds = time.perf_counter() - start
    failed = [ln for ln in err.splitlines() if ln.startswith("op ")]
    report.problems += failed[:5]
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--trials", type=int, default=300, help="total trials, split over acquire/approve/release")
    ap.add_argument("--rows", type=int, default=200, help="records per delivered file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    per = max(1, args.trials // 3)
    counts = {"acquire": per, "approve": per, "release": args.trials - 2 * per}
    from rich.progress import Progress

    with tempfile.TemporaryDirectory(prefix="dataward-crash-") as tmp, Progress(transient=True) as bar:
        task = bar.add_task("crash trials", total=args.trials)
        report = run_trials(
            Path(tmp),
            counts,
            seed=args.seed,
            rows=args.rows,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out = report.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        killed = sum(v for k, v in report.outcomes.items() if k.endswith(":killed"))
        print(
            f"{out['total_trials']} trials in {out['seconds']} s: {killed} killed mid-operation, {out['checks']} checks"
        )
        for k in sorted(report.outcomes):
            print(f"  {k:20} {report.outcomes[k]}")
        print("OK: every invariant held" if not report.problems else f"FAILED: {len(report.problems)} problem(s)")
        for p in report.problems[:20]:
            print(f"  {p}")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
