"""Screening benchmark: dataward vs Great Expectations 1.x and Evidently 0.7 (drift preset), same data, same run.

Run in the peers' venv (``make bench-env`` builds ``.venv-bench-screening``)::

    .venv-bench-screening/bin/python benchmarks/screening.py [--rows 1000000] [--rss-rows 10000000]

Data: a trusted reference and a batch of ``--rows`` rows x 10 columns (6 float, 1 integer, 3 categorical
strings, one of them the label). The batch carries planted anomalies: a never-seen category in 0.5% of
rows, a tight +6 sigma cluster in 0.5% of rows and a 2% label shift. Each tool gets the equivalent work:

* dataward: ``create_baseline(reference)`` + ``check_path(batch)`` (all baseline rules, drift, outliers,
  duplicates, PII, text signals), reading the Parquet files itself;
* Great Expectations: 12 expectations (not-null x3, between x4 with the reference's min/max, in-set x3 with
  the reference's values, mean between, regex) on the batch as a pandas DataFrame;
* Evidently: ``Report([DataDriftPreset()]).run(batch, reference)`` on pandas DataFrames.

Peers get their DataFrames already loaded (reading time is not charged to them); import times are
reported separately. Peak RSS of ``dataward check`` on a ``--rss-rows`` file is measured in a child
process. Prints a table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CATS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def make(n: int, seed: int, *, planted: bool) -> pa.Table:
    r = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"f{i}": r.normal(i, 1 + i / 3, n) for i in range(6)}
    cols["count"] = r.poisson(20, n).astype(np.int64)
    cols["cat"] = r.choice(CATS, n)
    cols["region"] = r.choice(REGIONS, n)
    cols["label"] = np.where(r.random(n) < 0.5, "pos", "neg").astype(object)
    if planted:
        k = n // 200
        idx = r.permutation(n)
        cols["cat"][idx[:k]] = "omega"  # never-seen category, 0.5%
        f2 = cols["f2"]
        f2[idx[k : 2 * k]] = 2 + 6 * (1 + 2 / 3) + r.normal(0, 0.01, k)  # +6 sigma tight cluster, 0.5%
        neg = np.flatnonzero(cols["label"] == "neg")
        cols["label"][neg[: int(0.02 * n)]] = "pos"  # 2% label shift
    return pa.table(cols)


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, row_group_size=262_144)


def write_big(path: Path, rows: int) -> None:
    step = 1_000_000
    writer = None
    for i, start in enumerate(range(0, rows, step)):
        t = make(min(step, rows - start), 100 + i, planted=True)
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema)
        writer.write_table(t, row_group_size=262_144)
    assert writer is not None
    writer.close()


def cpu() -> float:
    """CPU seconds of this process (all threads): fairer than wall time on a loaded machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), cpu()
    out = fn(*args)
    return out, time.perf_counter() - w, cpu() - c


def run_dataward(ref: Path, batch: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    from dataward.screen.api import check_path, create_baseline

    t_import = time.perf_counter() - t0
    bl, t_base, c_base = timed(lambda: create_baseline(ref, label="label"))
    rep, t_check, c_check = timed(lambda: check_path(batch, baseline=bl))
    kinds = {(f.kind, f.evidence.get("column")) for f in rep.findings}
    return {
        "import_s": t_import,
        "baseline_s": t_base,
        "check_s": t_check,
        "total_s": t_base + t_check,
        "baseline_cpu_s": c_base,
        "check_cpu_s": c_check,
        "total_cpu_s": c_base + c_check,
        "caught_new_category": ("unseen_category", "cat") in kinds,
        "caught_cluster": ("tight_cluster", "f2") in kinds,
        "caught_label_shift": any(k == "label_shift" for k, _ in kinds),
        "findings": len(rep.findings),
        "per_check_s": {r.check: round(r.seconds, 3) for r in rep.results},
    }


def run_ge(ref_df: Any, df: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    import great_expectations as gx
    import great_expectations.expectations as gxe

    t_import = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), cpu()
    ctx = gx.get_context(mode="ephemeral")
    asset = ctx.data_sources.add_pandas("bench").add_dataframe_asset("batch")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df})
    suite = gx.ExpectationSuite(name="screening")
    for c in ("f0", "cat", "label"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c))
    for c in ("f0", "f1", "f2", "f3"):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column=c, min_value=float(ref_df[c].min()), max_value=float(ref_df[c].max())
            )
        )
    for c in ("cat", "region", "label"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=sorted(ref_df[c].unique())))
    m = float(ref_df["f4"].mean())
    suite.add_expectation(gxe.ExpectColumnMeanToBeBetween(column="f4", min_value=m - 0.05, max_value=m + 0.05))
    suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column="region", regex=r"^[a-z]+$"))
    suite = ctx.suites.add(suite)
    res = batch.validate(suite)
    t_run, c_run = time.perf_counter() - t1, cpu() - c1
    failed = {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column")) for r in res.results if not r.success
    }
    return {
        "import_s": t_import,
        "total_s": t_run,
        "total_cpu_s": c_run,
        "expectations": len(res.results),
        "caught_new_category": ("expect_column_values_to_be_in_set", "cat") in failed,
        "caught_cluster": ("expect_column_values_to_be_between", "f2") in failed,
        "caught_label_shift": False,  # no expectation in the 12 checks the label distribution
    }


def run_evidently(ref_df: Any, df: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    t_import = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), cpu()
    snap = Report([DataDriftPreset()]).run(df, ref_df)
    t_run, c_run = time.perf_counter() - t1, cpu() - c1
    metrics = snap.dict()["metrics"]
    drifted: dict[str, bool] = {}
    for m in metrics:
        name = str(m.get("metric_name", ""))
        if name.startswith("ValueDrift(") and "column=" in name:
            col = name.split("column=")[1].split(",")[0].rstrip(")")
            cfg = m.get("config", {})
            thr = cfg.get("threshold")
            value = m.get("value")
            method = str(cfg.get("method", ""))
            if isinstance(value, int | float) and isinstance(thr, int | float):
                # p-value tests drift below the threshold; distances drift at or above it
                drifted[col] = bool(value < thr if "p_value" in method or "test" in method else value >= thr)
    return {
        "import_s": t_import,
        "total_s": t_run,
        "total_cpu_s": c_run,
        "drifted_columns": sorted(c for c, d in drifted.items() if d),
        "methods": sorted({str(m.get("config", {}).get("method", "")) for m in metrics} - {""}),
        "caught_new_category": drifted.get("cat", False),
        "caught_cluster": drifted.get("f2", False),
        "caught_label_shift": drifted.get("label", False),
    }


def child_rss(batch: Path, ref: Path) -> dict[str, Any]:
    """Peak RSS of a child that builds a baseline on ``ref`` and checks ``batch`` (the big file).

    The child reads its own high-water mark (VmHWM of /proc/self/status): ``ru_maxrss`` of a forked child
    keeps the parent's peak (Linux carries it across exec), which would charge the peers' DataFrames to it.
    """
    code = (
        "import sys, time, re\n"
        "from dataward.screen.api import check_path, create_baseline\n"
        "t=time.perf_counter(); bl=create_baseline(sys.argv[2], label='label')\n"
        "rep=check_path(sys.argv[1], baseline=bl)\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())\n"
        "print(rep.n_records, round(time.perf_counter()-t, 2), int(hwm.group(1)) if hwm else -1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(batch), str(ref)], capture_output=True, text=True)
    n, secs, hwm_kb = ([*proc.stdout.split(), "0", "0", "-1"])[:3]
    return {"records": int(n), "seconds": float(secs), "peak_rss_mb": int(hwm_kb) / 1024, "status": proc.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rss-rows", type=int, default=10_000_000, help="0 to skip the memory run")
    ap.add_argument("--skip", default="", help="comma-separated: ge,evidently")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="dataward-bench-screening-") as tmp:
        d = Path(tmp)
        ref_t, batch_t = make(args.rows, 1, planted=False), make(args.rows, 2, planted=True)
        write(ref_t, d / "ref.parquet")
        write(batch_t, d / "batch.parquet")
        print(
            f"data: {args.rows:,} rows x {batch_t.num_columns} columns; planted: new category 0.5%, "
            "+6 sigma cluster 0.5%, label shift 2%",
            flush=True,
        )
        results: dict[str, Any] = {"rows": args.rows}
        results["dataward"] = run_dataward(d / "ref.parquet", d / "batch.parquet")
        print("dataward", json.dumps(results["dataward"]), flush=True)
        ref_df, df = ref_t.to_pandas(), batch_t.to_pandas()
        del ref_t, batch_t
        if "ge" not in skip:
            try:
                results["great_expectations"] = run_ge(ref_df, df)
            except Exception as exc:  # a broken peer is reported, not fatal
                results["great_expectations"] = {"error": f"{type(exc).__name__}: {exc}"}
            print("great_expectations", json.dumps(results["great_expectations"]), flush=True)
        if "evidently" not in skip:
            try:
                results["evidently"] = run_evidently(ref_df, df)
            except Exception as exc:
                results["evidently"] = {"error": f"{type(exc).__name__}: {exc}"}
            print("evidently", json.dumps(results["evidently"]), flush=True)
        del ref_df, df
        if args.rss_rows:
            write_big(d / "big.parquet", args.rss_rows)
            results["rss"] = child_rss(d / "big.parquet", d / "ref.parquet")
            print("rss", json.dumps(results["rss"]), flush=True)
    dw = results["dataward"]
    print()
    print(f"{'tool':22} {'wall s':>9} {'CPU s':>9} {'import s':>9}  new-cat  cluster  label-shift")
    rows = [("dataward", dw)] + [(k, results[k]) for k in ("great_expectations", "evidently") if k in results]
    for name, r in rows:
        if "error" in r:
            print(f"{name:22} error: {r['error'][:80]}")
            continue
        print(
            f"{name:22} {r['total_s']:9.2f} {r['total_cpu_s']:9.2f} {r['import_s']:9.2f}  "
            f"{r['caught_new_category']!s:7}  "
            f"{r['caught_cluster']!s:7}  {r['caught_label_shift']}"
        )
    for unit, key, check_key in (("wall", "total_s", "check_s"), ("CPU", "total_cpu_s", "check_cpu_s")):
        peers = [results[k][key] for k in ("great_expectations", "evidently") if key in results.get(k, {})]
        if peers:
            total = sum(peers)
            print(
                f"{unit}: peers together {total:.2f} s; dataward baseline + check {dw[key]:.2f} s -> "
                f"{total / dw[key]:.1f}x (target >= 10x); check alone {dw[check_key]:.2f} s -> "
                f"{total / dw[check_key]:.1f}x"
            )
    if "rss" in results:
        r = results["rss"]
        print(
            f"peak RSS, baseline + check of {r['records']:,} rows: {r['peak_rss_mb']:.0f} MB in {r['seconds']} s "
            "(target < 1024 MB)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
