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


def rows_dask(a: argparse.Namespace) -> list[dict[str, Any]]:
    """acquire() of a generated CSV: one process (the peer) against 2 Dask workers and a 2-process pool."""
    runs: dict[str, dict[str, Any]] = {}
    load = _load()
    for mode in ("single", "dask", "processes"):
        cmd = [sys.executable, str(HERE / "scale.py"), "--one", "acquire", str(a.dask_rows), mode]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            return [_row("dask", today=f"not measured: scale.py failed ({out.stderr.strip()[-200:]})")]
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    one, dask, pool = runs["single"], runs["dask"], runs["processes"]
    same = all(r["root"] == one["root"] for r in (dask, pool))
    return [
        _row(
            "dask",
            today=f"{_ratio(one['seconds'], dask['seconds'])}x wall ({dask['seconds']:.1f} s), "
            f"{_ratio(one['cpu_bound_seconds'], dask['cpu_bound_seconds'])}x CPU-bound",
            peer=f"one process: {one['seconds']:.1f} s wall, {one['driver_cpu_seconds']:.1f} s CPU",
            wall=dask["seconds"],
            cpu=round(dask["driver_cpu_seconds"] + sum(dask["worker_cpu_seconds"]), 2),
            peer_wall=one["seconds"],
            peer_cpu=one["driver_cpu_seconds"],
            ratio_wall=_ratio(one["seconds"], dask["seconds"]),
            ratio_cpu=_ratio(one["cpu_bound_seconds"], dask["cpu_bound_seconds"]),
            load=[load, _load()],
            rows_in_file=a.dask_rows,
            same_root=same,
            parts={"2-process pool": {"wall": pool["seconds"], "ratio_wall": _ratio(one["seconds"], pool["seconds"])}},
        )
    ]


_CHECK_CHILD = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import screening
rows = int(sys.argv[2])
out = {}
with tempfile.TemporaryDirectory(prefix="dw-issue18-check-") as tmp:
    d = Path(tmp)
    ref, batch = screening.make(rows, 1, planted=False), screening.make(rows, 2, planted=True)
    screening.write(ref, d / "ref.parquet")
    screening.write(batch, d / "batch.parquet")
    out["dataward"] = screening.run_dataward(d / "ref.parquet", d / "batch.parquet")
    try:
        import great_expectations  # noqa: F401
    except ImportError:
        out["ge"] = None
    else:
        out["ge"] = screening.run_ge(ref.to_pandas(), batch.to_pandas())
print(json.dumps(out))
"""


def rows_check(a: argparse.Namespace) -> list[dict[str, Any]]:
    """``create_baseline`` + ``check_path`` against Great Expectations' suite (in the peers' venv if built)."""
    venv_python = SCREENING_VENV / "bin" / "python"
    python = str(venv_python) if (SCREENING_VENV / ".stamp").exists() and venv_python.exists() else sys.executable
    load = _load()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")])),
    }
    cmd = [python, "-c", _CHECK_CHILD, str(HERE), str(a.check_rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        return [_row("check", today=f"not measured: screening failed ({out.stderr.strip()[-200:]})")]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    dw, ge = res["dataward"], res["ge"]
    caught = all(dw[k] for k in ("caught_new_category", "caught_cluster", "caught_label_shift"))
    row = _row(
        "check",
        today=f"{dw['total_s']:.2f} s wall, {dw['total_cpu_s']:.2f} s CPU (baseline + check)",
        wall=dw["total_s"],
        cpu=dw["total_cpu_s"],
        load=[load, _load()],
        rows_in_file=a.check_rows,
        caught_all_planted=caught,
    )
    if ge is None or "total_s" not in ge:
        row.update(peer=f"not measured: GE not installed in {Path(python).parent.parent.name or python}")
    else:
        row.update(
            peer=f"Great Expectations: {ge['total_s']:.2f} s wall, {ge['total_cpu_s']:.2f} s CPU",
            peer_wall=ge["total_s"],
            peer_cpu=ge["total_cpu_s"],
            ratio_wall=_ratio(ge["total_s"], dw["total_s"]),
            ratio_cpu=_ratio(ge["total_cpu_s"], dw["total_cpu_s"]),
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat (minutes, not tens of minutes)")
    ap.add_argument("--only", nargs="*", choices=("acquire", "records", "log", "dask", "check"))
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--dir", default="/tmp/dataward-bench-speed", help="generated data (shared with speed.py)")
    a = ap.parse_args(argv)
    # the sizes speed.py's parts read, then this table's own
    a.csv_rows, a.append_entries, a.log_entries, a.many_files, a.repeat = 1_000_000, 20_000, 100_000, 192, 3
    a.dask_rows, a.check_rows = 10_000_000, 1_000_000
    if a.quick:
        a.csv_rows, a.append_entries, a.log_entries, a.many_files, a.repeat = 100_000, 5000, 20_000, 32, 1
        a.dask_rows, a.check_rows = 1_000_000, 100_000
        a.dir += "-quick"
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
