"""Issue 18's table in one run: every row with the issue's figure, today's, the floor or peer measured in the same
run, the ratio, wall and CPU seconds and the load average.

The rows come from the existing benchmarks, called rather than copied:

- acquire of many files (the CLI) and the 1M-row CSV's records + Merkle root: ``speed.part_acquire`` and
  ``speed.part_records`` (against ``openssl dgst -sha256`` / ``cp -r`` + ``sync`` in the same run);
- log append and full verify: ``speed.part_log`` (against bare Ed25519 signing / verification);
- Dask with 2 workers: ``scale.py --one acquire ROWS MODE`` for one process, 2 Dask workers and a 2-process
  pool (each in its own process, as scale.py runs them);
- screening ``check`` of 1M x 10: ``screening.run_dataward`` against ``screening.run_ge`` (Great Expectations),
  in the screening peers' venv when it is built; without it the GE cell says "not measured".

The machine may be shared: ratios are throughput ratios against the floor or peer of the same run (> 1: dataward
is faster), by wall and by CPU (user + sys, children and threads included). ``--quick`` uses small sizes (the
issue's figures are then not comparable, only the ratios roughly). Prints the table; ``--json`` writes it.

Run: .venv/bin/python benchmarks/issue18.py [--quick] [--only acquire records log dask check] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speed  # noqa: E402 - the benchmarks directory is on the path above

#: the issue's own figures (filed at low load on 2 cores) and targets, by row
ISSUE = {
    "acquire": ("acquire 805 MB of files, CLI", "2.06 s vs openssl 0.64 s: 0.31x", ">= 0.8x the floor"),
    "records": ("1M-row CSV: records + Merkle root", "2.67 s vs openssl 0.08 s: 0.03x", ">= 0.5x openssl"),
    "append": ("log append, batched", "15.3k/s vs signing 28k/s: 0.55x", ">= 25k/s"),
    "verify": ("log full verify, 100k entries", "9.35 s", "<= 1.2x the verify floor"),
    "dask": ("acquire 10M rows, Dask 2 workers vs 1 process", "1.41x", ">= 1.7x"),
    "check": ("check 1M x 10 vs Great Expectations", "2.41 s vs GE 2.45 s: 1.0x", ">= 3x GE"),
}
#: the screening peers' venv (``make bench-env``): beside the interpreter's own venv unless named
SCREENING_VENV = Path(
    os.environ.get("DATAWARD_SCREENING_VENV", Path(sys.executable).parent.parent.parent / ".venv-bench-screening")
)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _ratio(peer: float | None, mine: float | None) -> float | None:
    """Throughput ratio of two times (peer time / dataward time)."""
    return round(peer / mine, 3) if peer and mine else None


def _row(key: str, **kw: Any) -> dict[str, Any]:
    workload, filed, target = ISSUE[key]
    return {"row": key, "workload": workload, "issue": filed, "target": target, **kw}


# ---------------------------------------------------------------------------------------------- rows


def rows_speed(a: argparse.Namespace, tmp: Path, key: str) -> list[dict[str, Any]]:
    """The acquire, records and log rows, from benchmarks/speed.py's parts."""
    if key == "acquire":
        cli, copy, startup = speed.part_acquire(a, tmp)
        return [
            _row(
                "acquire",
                today=f"{cli['after']:.2f} s wall, {cli['cpu_after']:.2f} s CPU",
                peer=cli["floor_is"],
                wall=cli["after"],
                cpu=cli["cpu_after"],
                peer_wall=cli["floor"],
                peer_cpu=cli["cpu_floor"],
                ratio_wall=_ratio(cli["floor"], cli["after"]),
                ratio_cpu=_ratio(cli["cpu_floor"], cli["cpu_after"]),
                load=cli["load"],
                size=f"{a.many_files} files x 4 MiB",
                parts={
                    "copy path in-process": {"wall": copy["after"], "cpu": copy["cpu_after"], "load": copy["load"]},
                    "CLI import": {"wall": startup["after"], "cpu": startup["cpu_after"], "load": startup["load"]},
                },
            )
        ]
    if key == "records":
        hashing, reader = speed.part_records(a, tmp)
        return [
            _row(
                "records",
                today=f"{reader['after']:.3f} s wall, {reader['cpu_after']:.3f} s CPU",
                peer="openssl dgst -sha256 over the file",
                wall=reader["after"],
                cpu=reader["cpu_after"],
                peer_wall=reader["floor"],
                peer_cpu=reader["cpu_floor"],
                ratio_wall=_ratio(reader["floor"], reader["after"]),
                ratio_cpu=_ratio(reader["cpu_floor"], reader["cpu_after"]),
                load=reader["load"],
                native=reader["native"],
                parts={"leaf hashes + root only": {"wall": hashing["after"], "cpu": hashing["cpu_after"]}},
                rows_in_file=a.csv_rows,
            )
        ]
    append, verify, *_incremental = speed.part_log(a, tmp)
    n = a.append_entries
    return [
        _row(
            "append",
            # the log rows are judged in CPU against floors measured in CPU (the machine is shared)
            today=f"{append['entries_per_s_wall']:,.0f}/s wall, {append['after']:,.0f}/CPU-s",
            peer=append["floor_is"],
            wall=append["wall_after"],
            cpu=append["cpu_after"],
            peer_wall=None,
            peer_cpu=append["cpu_floor"],
            ratio_wall=None,
            ratio_cpu=_ratio(append["cpu_floor"], append["cpu_after"]),
            load=append["load"],
            entries=n,
        ),
        _row(
            "verify",
            today=f"{verify['wall_after']:.2f} s wall, {verify['cpu_after']:.2f} s CPU",
            peer=verify["floor_is"],
            wall=verify["wall_after"],
            cpu=verify["cpu_after"],
            peer_wall=None,
            peer_cpu=verify["cpu_floor"],
            ratio_wall=None,
            ratio_cpu=_ratio(verify["cpu_floor"], verify["cpu_after"]),
            load=verify["load"],
            entries=a.log_entries,
        ),
    ]


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _spread(xs: list[float]) -> list[float]:
    return [round(min(xs), 3), round(max(xs), 3)] if xs else []


def warm_file(path: Path) -> dict[str, Any]:
    """Read ``path`` through once so that the next reader finds it in the page cache (every mode the same way),
    after writing back dirty pages (a previous run's output must not be flushed during the next timing).
    Returns how long that took and how much of the file was resident before (``fincore``, when present)."""
    os.sync()
    resident = None
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", str(path)], capture_output=True, text=True, check=False)
    if out.returncode == 0 and out.stdout.strip().isdigit():
        resident = round(int(out.stdout.strip()) / max(1, path.stat().st_size), 3)
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        while f.readinto(buf):
            pass
    return {"resident_before": resident, "warm_s": round(time.perf_counter() - t, 3)}


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    xs = [r[key] for r in runs]
    return {"median": round(_median(xs), 3), "spread": _spread(xs), "runs": xs}


def rows_dask(a: argparse.Namespace) -> list[dict[str, Any]]:
    """acquire() of a generated CSV: one process (the peer) against 2 Dask workers and a 2-process pool.

    Each cell runs in its own process (``scale.py --one``). Before every cell the input is read through once
    (the page cache is warm for every mode alike, and dirty pages of the previous cell are written back);
    the modes alternate, their order rotating from round to round, for ``--rounds`` rounds. The row
    gives the median of each mode and the spread (min-max) of wall and CPU time, the ratio of the medians
    and the median of the ratios within a round, with the load average beside every cell."""
    sys.path.insert(0, str(HERE))
    import scale

    data = scale.generate(a.dask_rows)
    modes = list(a.dask_modes)
    if a.before_src:  # the code before a change, alternated with the rest in the same rounds
        modes.append("dask-before")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    rounds: list[dict[str, dict[str, Any]]] = []
    for r in range(a.dask_repeat):
        order = modes[r % len(modes) :] + modes[: r % len(modes)]
        this: dict[str, dict[str, Any]] = {}
        for mode in order:
            warm = warm_file(data)
            load0 = _load()
            cmd = [sys.executable, str(HERE / "scale.py"), "--one", "acquire", str(a.dask_rows), mode.split("-")[0]]
            env = {**os.environ, "PYTHONPATH": a.before_src} if mode == "dask-before" else None
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if out.returncode:
                return [_row("dask", today=f"not measured: scale.py failed ({out.stderr.strip()[-200:]})")]
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res.update(warm)
            res["load"] = [load0, _load()]
            res["cpu_seconds"] = round(res["driver_cpu_seconds"] + sum(res["worker_cpu_seconds"]), 2)
            res["round"] = r
            runs[mode].append(res)
            this[mode] = res
            print(
                f"dask round {r} {mode:9s} {res['seconds']:6.2f} s wall, {res['cpu_seconds']:5.2f} s CPU "
                f"(bound {res['cpu_bound_seconds']:.2f}), cached {warm['resident_before']}, load {res['load']}",
                file=sys.stderr,
            )
        rounds.append(this)
    same = all(x["root"] == runs["single"][0]["root"] for m in modes for x in runs[m])
    native = all(x.get("native", False) for m in modes for x in runs[m])
    wall = {m: _summary(runs[m], "seconds") for m in modes}
    cpu = {m: _summary(runs[m], "cpu_seconds") for m in modes}
    bound = {m: _summary(runs[m], "cpu_bound_seconds") for m in modes}
    paired = [round(x["single"]["seconds"] / x["dask"]["seconds"], 3) for x in rounds]
    paired_bound = [round(x["single"]["cpu_bound_seconds"] / x["dask"]["cpu_bound_seconds"], 3) for x in rounds]
    loads = [x["load"][0][0] for m in modes for x in runs[m]] + [x["load"][1][0] for m in modes for x in runs[m]]
    n = len(paired)
    return [
        _row(
            "dask",
            today=f"{_ratio(wall['single']['median'], wall['dask']['median'])}x wall "
            f"({wall['dask']['median']:.1f} s, {wall['dask']['spread'][0]:.1f}-{wall['dask']['spread'][1]:.1f}), "
            f"{_ratio(bound['single']['median'], bound['dask']['median'])}x CPU-bound, median of {n}"
            + ("" if native else " (NOT NATIVE: pure-Python leaf hashes)"),
            peer=f"one process: {wall['single']['median']:.1f} s wall "
            f"({wall['single']['spread'][0]:.1f}-{wall['single']['spread'][1]:.1f}), "
            f"{cpu['single']['median']:.1f} s CPU; Dask CPU {cpu['dask']['median']:.1f} s in all; "
            f"per-round wall ratios {paired}",
            wall=wall["dask"]["median"],
            cpu=cpu["dask"]["median"],
            peer_wall=wall["single"]["median"],
            peer_cpu=cpu["single"]["median"],
            ratio_wall=_ratio(wall["single"]["median"], wall["dask"]["median"]),
            ratio_cpu=_ratio(bound["single"]["median"], bound["dask"]["median"]),
            load=_spread(loads),
            rows_in_file=a.dask_rows,
            same_root=same,
            native=native,
            repeats=n,
            wall_s=wall,
            cpu_s=cpu,
            cpu_bound_s=bound,
            paired_ratio_wall=paired,
            paired_ratio_cpu_bound=paired_bound,
            runs=runs,
            parts={
                {"processes": "2-process pool", "dask-before": "Dask x2, code before"}[m]: {
                    "wall": wall[m]["median"],
                    "cpu": cpu[m]["median"],
                    "ratio_wall": _ratio(wall["single"]["median"], wall[m]["median"]),
                    "ratio_cpu_bound": _ratio(bound["single"]["median"], bound[m]["median"]),
                    "paired_ratio_wall": [round(x["single"]["seconds"] / x[m]["seconds"], 3) for x in rounds],
                }
                for m in modes
                if m not in ("single", "dask")
            },
        )
    ]


_CHECK_DATA = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import screening
rows, d = int(sys.argv[2]), Path(sys.argv[3])
screening.write(screening.make(rows, 1, planted=False), d / "ref.parquet")
screening.write(screening.make(rows, 2, planted=True), d / "batch.parquet")
"""

#: timed calls of each side per fresh process; the first is the first-call figure, the others the steady state
CHECK_CALLS = 3


def _check_stats(calls: list[dict[str, Any]], key: str) -> dict[str, Any]:
    xs = [c[key] for c in calls]
    return {"median": round(_median(xs), 3), "spread": _spread(xs)}


def rows_check(a: argparse.Namespace) -> list[dict[str, Any]]:
    """``create_baseline`` + ``check_path`` against Great Expectations' suite (in the peers' venv if built).

    Each side runs in its own fresh process (``screening.py --side``), so that neither inherits the other's heap,
    allocator settings or page-cache state; GE's DataFrames are read before its timing. One untimed process of
    each side first faults the libraries and the files into memory (pages idle for a minute may have been
    reclaimed). Then ``--rounds`` rounds alternate the order of the sides; each process times
    ``CHECK_CALLS`` calls. The first call of a process (lazy imports, pools, first touch of memory) and the
    later calls (the steady state) are summarised apart: median and min-max of wall and CPU seconds (user and
    system apart), with the load average of every call. The row's ratio is the steady state's, the
    conservative one; the first calls' ratio is beside it."""
    venv_python = SCREENING_VENV / "bin" / "python"
    python = str(venv_python) if (SCREENING_VENV / ".stamp").exists() and venv_python.exists() else sys.executable
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")])),
    }
    load = _load()
    with tempfile.TemporaryDirectory(prefix="dw-issue18-check-") as tmp:
        d = Path(tmp)
        made = subprocess.run(
            [python, "-c", _CHECK_DATA, str(HERE), str(a.check_rows), tmp], capture_output=True, text=True, env=env
        )
        if made.returncode:
            return [_row("check", today=f"not measured: data failed ({made.stderr.strip()[-200:]})")]
        sides = ["dataward", "ge"]

        def side(name: str, calls: int) -> dict[str, Any] | str:
            cmd = [python, str(HERE / "screening.py"), "--side", name, str(d / "ref.parquet"), str(d / "batch.parquet")]
            out = subprocess.run([*cmd, str(calls)], capture_output=True, text=True, check=False, env=env)
            if out.returncode:
                return out.stderr.strip()[-200:]
            res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            return res

        ge_ok = True
        for name in sides:  # warm-up: libraries and files into memory, nothing timed
            got = side(name, 1)
            if isinstance(got, str):
                if name == "dataward":
                    return [_row("check", today=f"not measured: screening failed ({got})")]
                ge_ok = False
                sides = ["dataward"]
        procs: dict[str, list[dict[str, Any]]] = {n: [] for n in sides}
        for r in range(a.check_repeat):
            for name in sides if r % 2 == 0 else sides[::-1]:
                got = side(name, CHECK_CALLS)
                if isinstance(got, str):
                    return [_row("check", today=f"not measured: {name} failed ({got})")]
                procs[name].append(got)
                c = got["calls"]
                print(
                    f"check round {r} {name:8s} wall {[x['wall'] for x in c]} CPU {[x['cpu'] for x in c]} "
                    f"(sys {[x['sys'] for x in c]}) load {[x['load'] for x in c]}",
                    file=sys.stderr,
                )
    summary: dict[str, Any] = {}
    for name, ps in procs.items():
        first = [p["calls"][0] for p in ps]
        steady = [c for p in ps for c in p["calls"][1:]]
        summary[name] = {
            part: {k: _check_stats(cs, k) for k in ("wall", "cpu", "user", "sys", "minflt")}
            for part, cs in (("first", first), ("steady", steady))
            if cs
        }
    dw = summary["dataward"]
    caught = all(all(c["caught"]) for p in procs["dataward"] for c in p["calls"])
    loads = [c["load"] for ps in procs.values() for p in ps for c in p["calls"]]
    steady = "steady" if "steady" in dw else "first"
    row = _row(
        "check",
        today=f"{dw[steady]['wall']['median']:.2f} s wall, {dw[steady]['cpu']['median']:.2f} s CPU "
        f"({dw[steady]['cpu']['spread'][0]:.2f}-{dw[steady]['cpu']['spread'][1]:.2f}); first call "
        f"{dw['first']['cpu']['median']:.2f} s CPU (baseline + check)",
        wall=dw[steady]["wall"]["median"],
        cpu=dw[steady]["cpu"]["median"],
        load=[load, _spread(loads), _load()],
        rows_in_file=a.check_rows,
        caught_all_planted=caught,
        rounds=a.check_repeat,
        calls_per_process=CHECK_CALLS,
        sides=summary,
        processes=procs,
    )
    if not ge_ok:
        row.update(peer=f"not measured: GE not installed in {Path(python).parent.parent.name or python}")
        return [row]
    ge = summary["ge"]
    row.update(
        peer=f"Great Expectations: {ge[steady]['wall']['median']:.2f} s wall, {ge[steady]['cpu']['median']:.2f} s CPU "
        f"({ge[steady]['cpu']['spread'][0]:.2f}-{ge[steady]['cpu']['spread'][1]:.2f}); first call "
        f"{ge['first']['cpu']['median']:.2f} s CPU; first calls' ratio "
        f"{_ratio(ge['first']['wall']['median'], dw['first']['wall']['median'])}x wall, "
        f"{_ratio(ge['first']['cpu']['median'], dw['first']['cpu']['median'])}x CPU",
        peer_wall=ge[steady]["wall"]["median"],
        peer_cpu=ge[steady]["cpu"]["median"],
        ratio_wall=_ratio(ge[steady]["wall"]["median"], dw[steady]["wall"]["median"]),
        ratio_cpu=_ratio(ge[steady]["cpu"]["median"], dw[steady]["cpu"]["median"]),
        ratio_first_wall=_ratio(ge["first"]["wall"]["median"], dw["first"]["wall"]["median"]),
        ratio_first_cpu=_ratio(ge["first"]["cpu"]["median"], dw["first"]["cpu"]["median"]),
    )
    return [row]


# ---------------------------------------------------------------------------------------------- main


def _fmt(x: Any, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    """The table, one line per row of the issue (with the peer spelled out underneath)."""
    head = f"{'row':<46} {'issue':<32} {'today':<44} {'x peer wall':>11} {'x CPU':>7}  {'target':<24} load"
    print(head)
    print("-" * len(head))
    for r in rows:
        load = r.get("load")
        size = r.get("size") or (f"{r['rows_in_file']:,} rows" if "rows_in_file" in r else None)
        name = r["workload"] if size is None else f"{r['workload']} [{size}]"
        print(
            f"{name:<46} {r['issue']:<32} {r.get('today', '-'):<44} {_fmt(r.get('ratio_wall')):>10}x "
            f"{_fmt(r.get('ratio_cpu')):>6}x  {r['target']:<24} {load}"
        )
        if r.get("peer"):
            print(f"{'':<46}   peer/floor, same run: {r['peer']}")
        for part, v in (r.get("parts") or {}).items():
            if "ratio_wall" in v:
                print(f"{'':<46}   {part}: {v['wall']:.2f} s wall, {v['ratio_wall']}x the peer's wall")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat (minutes, not tens of minutes)")
    ap.add_argument("--only", nargs="*", choices=("acquire", "records", "log", "dask", "check"))
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--rounds", type=int, help="alternated rounds of the dask and check rows (default 3; --quick 1)")
    ap.add_argument("--dask-modes", nargs="+", default=["single", "dask", "processes"], help="the dask row's cells")
    ap.add_argument("--before-src", help="the dask row also runs Dask x2 on the code under this src directory")
    ap.add_argument("--dir", default="/tmp/dataward-bench-speed", help="generated data (shared with speed.py)")
    a = ap.parse_args(argv)
    # the sizes speed.py's parts read, then this table's own
    a.csv_rows, a.append_entries, a.log_entries, a.many_files, a.repeat = 1_000_000, 20_000, 100_000, 192, 3
    a.dask_rows, a.check_rows = 10_000_000, 1_000_000
    a.dask_repeat = a.check_repeat = 3
    if a.quick:
        a.csv_rows, a.append_entries, a.log_entries, a.many_files, a.repeat = 100_000, 5000, 20_000, 32, 1
        a.dask_rows, a.check_rows = 1_000_000, 100_000
        a.dask_repeat = a.check_repeat = 1
        a.dir += "-quick"
    if a.rounds:
        a.dask_repeat = a.check_repeat = a.rounds
    only = a.only or ["acquire", "records", "log", "dask", "check"]
    print(f"cpus: {os.cpu_count()}, load average at start: {_load()}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="dw-issue18-"))
    try:
        for key in ("acquire", "records", "log"):
            if key in only:
                rows.extend(rows_speed(a, tmp, key))
                print(f"{key}: done, load {_load()}", file=sys.stderr)
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    if "dask" in only:
        rows.extend(rows_dask(a))
    if "check" in only:
        rows.extend(rows_check(a))
    print_table(rows)
    meta = {"cpus": os.cpu_count(), "quick": a.quick, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "load_end": _load()}
    print(f"load average at end: {meta['load_end']}")
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
