"""Scale-out benchmark: one process vs a 2-worker Dask LocalCluster, on generated CSV data sets.

Steps (each run in a fresh subprocess, so peak memory is per step):
  leaves   record leaves of one large CSV already in the object store (acquisition's CPU-bound part)
  acquire  the whole `acquire()` (streamed copy + SHA-256 into quarantine, leaves, manifest, signing)
  profile  a screening baseline profile (create_baseline vs partitioned profiles merged)
  detect   the partitionable detection counts: token/label document counts, MinHash signatures, PII
           matches (one partition in this process vs partitions on the workers); by default only on
           the smallest data set (--detect-rows), the single pass over 10M rows takes too long here

Peers: the single-process code path (the reference) vs the Dask executor with 2 workers. Reported:
wall time, speed-up ratio, peak RSS of the driver and of each Dask worker, and growth from the small to
the large data set (time and memory ratio per 10x rows).

    .venv/bin/python benchmarks/scale.py                      # 1M and 10M rows (data under /tmp)
    .venv/bin/python benchmarks/scale.py --rows 200000 2000000 --steps leaves profile --json out.json

Data sets are generated once under $DATAWARD_BENCH_DIR (default /tmp/dataward-bench-scale), never in git.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(os.environ.get("DATAWARD_BENCH_DIR", "/tmp/dataward-bench-scale"))
STEPS = ("leaves", "acquire", "profile", "detect")
MODES = ("single", "dask", "processes")  # peers: this process; a 2-worker Dask LocalCluster; a 2-process pool


def generate(rows: int) -> Path:
    path = BENCH_DIR / f"data-{rows}.csv"
    if path.exists():
        return path
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    vocab = [f"w{i}" for i in range(2000)] + ["free", "money", "click", "here", "naïve", "café"]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("text,label,score,group\n")
        chunk: list[str] = []
        for i in range(rows):
            words = " ".join(rng.choices(vocab, k=rng.randint(3, 12)))
            chunk.append(f"{words},{i % 2},{rng.gauss(0, 1):.4f},g{i % 7}\n")
            if len(chunk) >= 100_000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    tmp.rename(path)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_peaks(ex: Any) -> list[float]:
    def peak() -> float:
        import resource as r

        return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024

    return [round(v, 1) for v in ex._client.run(peak).values()]


def _warm() -> None:
    """Import what the steps use, so that no timing includes a first import (in the driver or a worker)."""
    import dataward.acquire.acquire
    import dataward.detect.text_triggers
    import dataward.scale._detect
    import dataward.scale._profile
    import dataward.scale.merkle_parts
    import dataward.screen.api
    import dataward.screen.near_duplicates
    import dataward.screen.pii  # noqa: F401


def _native() -> bool:
    """Whether the leaf hashes ran in the native extension (a checkout without its in-place build falls back
    to pure Python, 3-5x the CPU: such a figure is not the product's)."""
    from dataward.core import leafhash

    return bool(leafhash.NATIVE)


def _worker_cpu(ex: Any) -> dict[str, float]:
    if not hasattr(ex, "_client"):  # not a Dask executor: process pools are measured at the end
        return {}

    def cpu() -> float:
        import time as t

        return t.process_time()

    return {k: float(v) for k, v in ex._client.run(cpu).items()}


def run_step(step: str, rows: int, mode: str) -> dict[str, Any]:
    """One measurement (in this process)."""
    os.environ.setdefault("DATAWARD_WITNESS", str(BENCH_DIR / "witness.json"))
    os.environ.setdefault("DATAWARD_KEYRING", str(BENCH_DIR / "keyring"))  # never the user's own keyring
    from dataward.scale.dask import DaskExecutor
    from dataward.scale.interface import Executor

    data = generate(rows)
    from dataward.scale._local import LocalExecutor
    from dataward.scale.processes import ProcessExecutor

    ex: Executor | None = (
        {"dask": DaskExecutor, "processes": ProcessExecutor}[mode](workers=2) if mode != "single" else None
    )
    workdir = Path(tempfile.mkdtemp(dir=BENCH_DIR))
    try:
        _warm()
        if isinstance(ex, DaskExecutor):  # warm the workers (imports) outside the timing
            ex._client.run(_warm)
        t0 = time.perf_counter()
        c0 = time.process_time()
        if step == "leaves":
            from dataward.records.leaves import record_digests
            from dataward.scale.records import FileRef, partitioned_record_digests
            from dataward.store.objects import ObjectStore

            store = ObjectStore(str(workdir / "objects"))
            with open(data, "rb") as f, store.open_writer() as w:
                while chunk := f.read(1 << 20):
                    w.write(chunk)
                sha = w.commit("quarantine")
            t0, c0 = time.perf_counter(), time.process_time()
            w0 = _worker_cpu(ex) if ex is not None else {}
            if ex is None:
                rd = record_digests(lambda: store.open("quarantine", sha), data.name, "csv", file_sha256=sha)
            else:
                ref = FileRef(data.name, sha, data.stat().st_size, "csv")
                rd = partitioned_record_digests(ex, store, [ref])[0]
            result = {"records": rd.count, "leaves": rd}
        elif step == "acquire":
            from dataward.acquire.acquire import acquire
            from dataward.model.roles import Grant, Role
            from dataward.principals import enroll
            from dataward.sources import add_source
            from dataward.workspace import Workspace

            ws = Workspace.init(workdir / "ws", admin="admin")
            admin = ws.actor("admin")
            enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
            add_source(ws, admin, "feed", kind="synthetic", origin="benchmark")
            t0, c0 = time.perf_counter(), time.process_time()
            w0 = _worker_cpu(ex) if ex is not None else {}
            # LocalExecutor: the single-process path (acquire() would otherwise pick a process pool itself)
            batch = acquire(ws, ws.actor("ingrid"), "feed", [data], executor=ex or LocalExecutor())
            result = {"records": batch.record_count, "root": batch.merkle_root}
        elif step == "detect":
            import hashlib

            from dataward.core.canonical import canonical_json
            from dataward.scale._detect import partitioned_detection_counts

            w0 = _worker_cpu(ex) if ex is not None else {}
            one = 1 << 40  # one partition: the single pass
            dc = partitioned_detection_counts(
                ex or LocalExecutor(), data, text="text", label="label", partition_bytes=None if ex else one
            )
            digest = hashlib.sha256(canonical_json({"t": dc.token_label, "p": [list(x) for x in dc.pii]}))
            digest.update(dc.minhash.tobytes())
            result = {"records": dc.n_records, "root": digest.hexdigest()}
        else:
            from dataward.scale._profile import partitioned_baseline
            from dataward.screen.api import create_baseline

            w0 = _worker_cpu(ex) if ex is not None else {}
            if ex is None:
                b = create_baseline(data, label="label", group=("group",))
            else:
                b = partitioned_baseline(ex, data, label="label", group=("group",))
            result = {"records": b.profile.n_records, "columns": len(b.profile.columns)}
        wall = time.perf_counter() - t0
        driver_cpu = time.process_time() - c0
        if "leaves" in result:  # the check value, computed outside the timing
            result = {"records": result["records"], "root": result.pop("leaves").root().hex()}
        w1 = _worker_cpu(ex) if ex is not None else {}
        worker_cpu = [round(w1[k] - w0.get(k, 0.0), 2) for k in sorted(w1)]
        peaks = _worker_peaks(ex) if w1 else []
        if ex is not None and not w1:  # a local process pool: its children, reaped by close()
            ex.close()
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker_cpu = [round((ru.ru_utime + ru.ru_stime) / ex.workers, 2)] * ex.workers  # mean per worker
            peaks = [round(ru.ru_maxrss / 1024, 1)]
        out = {
            "step": step,
            "rows": rows,
            "mode": mode,
            "seconds": round(wall, 2),
            "driver_cpu_seconds": round(driver_cpu, 2),
            "worker_cpu_seconds": worker_cpu,
            # on an idle machine with one core per worker: the driver's own work plus the busiest worker
            "cpu_bound_seconds": round(driver_cpu + max(worker_cpu, default=0.0), 2),
            "driver_peak_rss_mb": round(_peak_rss_mb(), 1),
            "worker_peak_rss_mb": peaks,
            "native": _native(),
            **result,
        }
    finally:
        if ex is not None:
            ex.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--json", type=Path, help="write all measurements here")
    ap.add_argument("--detect-rows", type=int, nargs="+", help="data set sizes for the detect step (default: smallest)")
    ap.add_argument("--one", nargs=3, metavar=("STEP", "ROWS", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_step(a.one[0], int(a.one[1]), a.one[2])))
        return 0
    results: list[dict[str, Any]] = []
    for rows in a.rows:
        t = time.perf_counter()
        generate(rows)
        print(f"data set {rows:,} rows ready ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        for step in a.steps:
            if step == "detect" and rows not in (a.detect_rows or [min(a.rows)]):
                continue
            pair = {}
            for mode in MODES:
                cmd = [sys.executable, __file__, "--one", step, str(rows), mode]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    return 1
                pair[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(pair[mode])
            s = pair["single"]
            same = {k: v for k, v in s.items() if k in ("records", "root", "columns")}
            print(
                f"{step:8s} {rows:>11,} rows  single {s['seconds']:7.1f} s, CPU {s['driver_cpu_seconds']:.1f} s, "
                f"{s['driver_peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
            for mode in MODES[1:]:
                d = pair[mode]
                assert same == {k: d[k] for k in same}, f"{step}: results differ {pair}"
                workers = "/".join(f"{m:.0f}" for m in d["worker_peak_rss_mb"])
                print(
                    f"{'':26s}{mode:9s} x2 {d['seconds']:7.1f} s (driver {d['driver_peak_rss_mb']:.0f} MB, "
                    f"workers {workers} MB)  speed-up {s['seconds'] / d['seconds']:.2f}x wall, "
                    f"{s['cpu_bound_seconds'] / d['cpu_bound_seconds']:.2f}x CPU-bound (CPU s: driver "
                    f"{d['driver_cpu_seconds']:.1f} + workers {'/'.join(f'{c:.1f}' for c in d['worker_cpu_seconds'])})",
                    file=sys.stderr,
                )
    if len(a.rows) >= 2:
        lo, hi = min(a.rows), max(a.rows)
        for step in a.steps:
            if not any(r["step"] == step and r["rows"] == hi for r in results):
                continue
            for mode in MODES:
                r0 = next(r for r in results if (r["step"], r["rows"], r["mode"]) == (step, lo, mode))
                r1 = next(r for r in results if (r["step"], r["rows"], r["mode"]) == (step, hi, mode))
                print(
                    f"growth {step:8s} {mode:6s} {lo:,} -> {hi:,} rows ({hi / lo:.0f}x): time "
                    f"{r1['seconds'] / r0['seconds']:.1f}x, driver memory "
                    f"{r1['driver_peak_rss_mb'] / r0['driver_peak_rss_mb']:.1f}x",
                    file=sys.stderr,
                )
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
