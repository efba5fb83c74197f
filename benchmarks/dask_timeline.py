"""Timeline of one acquisition on a 2-worker Dask LocalCluster: where the wall time above the workers' CPU goes.

Prints (and with ``--json`` writes) timestamps relative to the start: the cluster's start, every executor
``map`` (submitted, returned) with each task's start and end on its worker (wall clock and the worker
process's CPU time), and the driver's own steps (cuts, preallocation, the fold of the nodes, the batch's
creation, the close). The same input and steps as ``scale.py --one acquire ROWS dask``.

    PYTHONPATH=src .venv/bin/python benchmarks/dask_timeline.py [--rows 10000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0 = time.time()
EVENTS: list[dict[str, Any]] = []


def _mark(what: str, t0: float, t1: float, cpu: float | None = None, **kw: Any) -> None:
    EVENTS.append({"what": what, "start": round(t0 - T0, 3), "end": round(t1 - T0, 3), "cpu": cpu, **kw})


def _thread_sched() -> tuple[float, float]:
    """This thread's time on a CPU and waiting for one (seconds, ``/proc/.../schedstat``; zeros elsewhere)."""
    import threading

    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            run, wait, _n = f.read().split()
        return int(run) / 1e9, int(wait) / 1e9
    except OSError:
        return 0.0, 0.0


def _timed_task(fn: Callable[[Any], Any], x: Any) -> tuple[Any, dict[str, Any]]:
    """Run one task and say when (wall clock) it ran, its process's CPU time and faults, and its thread's time
    on a CPU, waiting for one, and blocked (the rest: I/O, page faults served by the host, locks)."""
    import os as o
    import resource
    import time as t

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    s0 = _thread_sched()
    w0, c0 = t.time(), t.process_time()
    out = fn(x)
    w1, c1 = t.time(), t.process_time()
    s1 = _thread_sched()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    info = {
        "pid": o.getpid(),
        "start": w0,
        "end": w1,
        "cpu": c1 - c0,
        "user": r1.ru_utime - r0.ru_utime,
        "sys": r1.ru_stime - r0.ru_stime,
        "majflt": r1.ru_majflt - r0.ru_majflt,
        "minflt": r1.ru_minflt - r0.ru_minflt,
        "run": s1[0] - s0[0],
        "runq_wait": s1[1] - s0[1],
    }
    info["blocked"] = (w1 - w0) - info["run"] - info["runq_wait"]
    return out, info


def _wrap_driver(module: Any, name: str) -> None:
    """Record every call of ``module.name`` in the driver (wall and driver CPU)."""
    fn = getattr(module, name)

    @functools.wraps(fn)
    def inner(*a: Any, **kw: Any) -> Any:
        w0, c0 = time.time(), time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            _mark(f"driver {name}", w0, time.time(), round(time.process_time() - c0, 3))

    setattr(module, name, inner)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import scale

    os.environ.setdefault("DATAWARD_WITNESS", str(scale.BENCH_DIR / "witness.json"))
    os.environ.setdefault("DATAWARD_KEYRING", str(scale.BENCH_DIR / "keyring"))
    data = scale.generate(a.rows)

    import dataward.acquire.acquire as acq
    import dataward.scale.ingest as ing
    from dataward.scale.dask import DaskExecutor

    class Timed(DaskExecutor):
        def map(self, fn: Callable[[Any], Any], items: Any) -> list[Any]:
            w0, c0 = time.time(), time.process_time()
            out = super().map(functools.partial(_timed_task, fn), items)
            w1 = time.time()
            tasks = [
                {
                    k: (round(v - T0, 3) if k in ("start", "end") else round(v, 3) if isinstance(v, float) else v)
                    for k, v in info.items()
                }
                for _r, info in out
            ]
            name = getattr(fn, "__name__", str(fn))
            kinds = sorted({type(x).__name__ for x in items})
            what = f"map {name} {'/'.join(kinds)} x{len(items)}"
            _mark(what, w0, w1, round(time.process_time() - c0, 3), tasks=tasks)
            return [r for r, _t in out]

    for mod, names in (
        (acq, ("_ingest_large", "_record_digests_all", "_create_batch", "collect_inputs")),
        (ing, ("newline_cuts", "root_from_nodes", "_header")),
    ):
        for n in names:
            _wrap_driver(mod, n)

    def worker_cpu(ex: Any) -> dict[str, float]:
        def cpu() -> tuple[int, float]:
            import os as o
            import time as t

            return o.getpid(), t.process_time()

        return {str(p): c for p, c in ex._client.run(cpu).values()}

    w0, c0 = time.time(), time.process_time()
    ex = Timed(workers=2)
    _mark("cluster start", w0, time.time(), round(time.process_time() - c0, 3))
    workdir = Path(tempfile.mkdtemp(dir=scale.BENCH_DIR))
    try:
        scale._warm()
        w0 = time.time()
        ex._client.run(scale._warm)
        _mark("workers' imports", w0, time.time())
        from dataward.acquire.acquire import acquire
        from dataward.model.roles import Grant, Role
        from dataward.principals import enroll
        from dataward.sources import add_source
        from dataward.workspace import Workspace

        ws = Workspace.init(workdir / "ws", admin="admin")
        admin = ws.actor("admin")
        enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
        add_source(ws, admin, "feed", kind="synthetic", origin="benchmark")
        before = worker_cpu(ex)
        w0, c0 = time.time(), time.process_time()
        batch = acquire(ws, ws.actor("ingrid"), "feed", [data], executor=ex)
        w1, c1 = time.time(), time.process_time()
        after = worker_cpu(ex)
        _mark("acquire", w0, w1, round(c1 - c0, 3), workers={k: round(after[k] - before.get(k, 0), 3) for k in after})
        w0 = time.time()
        ex.close()
        _mark("close", w0, time.time())
    finally:
        ex.close()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    acq_ev = next(e for e in EVENTS if e["what"] == "acquire")
    busiest = max(acq_ev["workers"].values())
    summary = {
        "rows": a.rows,
        "root": batch.merkle_root,
        "wall": round(acq_ev["end"] - acq_ev["start"], 3),
        "driver_cpu": acq_ev["cpu"],
        "worker_cpu": acq_ev["workers"],
        "fixed": round(acq_ev["end"] - acq_ev["start"] - busiest, 3),
        "load": os.getloadavg(),
    }
    for e in sorted(EVENTS, key=lambda e: e["start"]):
        cpu = "" if e["cpu"] is None else f" driver CPU {e['cpu']:.3f}"
        print(f"{e['start']:8.3f} {e['end']:8.3f} {e['end'] - e['start']:7.3f}  {e['what']}{cpu}")
        for t in e.get("tasks", []):
            print(
                f"{'':8s} {t['start']:8.3f}-{t['end']:8.3f} pid {t['pid']} CPU {t['cpu']:.3f} (user {t['user']:.3f}"
                f" sys {t['sys']:.3f}) on-CPU {t['run']:.3f} runq {t['runq_wait']:.3f} blocked {t['blocked']:.3f}"
                f" faults {t['majflt']}/{t['minflt']}"
            )
    print(json.dumps(summary))
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "events": EVENTS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
