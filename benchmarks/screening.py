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
* Evidently: ``Report([DataDriftPreset()]).run(batch, reference)`` on pandas DataFrames;
* the floor: the same checks as dataward's suite written directly in polars (:func:`run_floor`), reading
  the Parquet files itself, as dataward does;
* dataward x2: the same check with the suite split across a 2-process pool (``check --executor processes``).

Peers get their DataFrames already loaded (reading time is not charged to them); import times are
reported separately. Peak RSS of ``dataward check`` on a ``--rss-rows`` file is measured in a child
process. Prints a table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
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


# ------------------------------------------------------------------------------------------ the floor

NUMERIC = [f"f{i}" for i in range(6)] + ["count"]
CATEGORICAL = ["cat", "region", "label", "count"]
STRINGS = ["cat", "region", "label"]
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_PHONE = r"\+?[0-9][0-9 ()-]{7,}[0-9]"


def run_floor(ref: Path, batch: Path) -> dict[str, Any]:
    """The same checks written directly in polars: the floor a hand-tuned script reaches on this data.

    Reference profile: null counts, min/max, mean/std, 101 quantile edges, value sets and frequencies,
    label shares, the mean and covariance of the numeric columns. Batch: schema, nulls, out-of-range values,
    unseen categories, tail mass beyond the reference's 0.1/1/99/99.9% quantiles, tight clusters (1000
    cells: 100 quantile bins x 10), drift (PSI over deciles; PSI of category frequencies), label shift
    (chi-square), multivariate outliers (Mahalanobis distance over the numeric columns, chi-square cut),
    exact duplicate rows, PII (e-mail/phone regex over the string columns), format (regex of the strings).
    Written as a data engineer would for speed: polars expressions in one pass where they fit, NumPy's
    uniform histograms (1000 cells over the reference's range) rather than quantile cells.
    """
    t0 = time.perf_counter()
    import polars as pl

    t_import = time.perf_counter() - t0
    w, c = time.perf_counter(), cpu()
    qs = np.linspace(0, 1, 101)
    # -- reference profile
    r = pl.read_parquet(ref)
    nr = r.height
    prof = r.select(
        *[pl.col(n).null_count().alias(f"{n}:null") for n in r.columns],
        *[pl.col(n).min().alias(f"{n}:min") for n in NUMERIC],
        *[pl.col(n).max().alias(f"{n}:max") for n in NUMERIC],
        *[pl.col(n).mean().alias(f"{n}:mean") for n in NUMERIC],
        *[pl.col(n).std().alias(f"{n}:std") for n in NUMERIC],
    ).row(0, named=True)
    for col in NUMERIC[:6]:  # one sort a column for all its quantiles (a polars quantile expression sorts each time)
        v = np.sort(r[col].drop_nulls().to_numpy())
        prof.update({f"{col}:q{i}": float(x) for i, x in enumerate(np.quantile(v, qs))})
        prof.update({f"{col}:t{q}": float(np.quantile(v, q)) for q in (0.001, 0.01, 0.99, 0.999)})
    freqs = {col: dict(r[col].value_counts(name="n").iter_rows()) for col in CATEGORICAL}
    lohi = {x: (prof[f"{x}:q0"], prof[f"{x}:q100"]) for x in NUMERIC[:6]}
    deciles = {x: np.array([prof[f"{x}:q{i}"] for i in range(10, 100, 10)]) for x in NUMERIC[:6]}
    ref_cells = {x: _cells(r[x].drop_nulls().to_numpy(), *lohi[x]) / nr for x in NUMERIC[:6]}
    X = r.select(NUMERIC).to_numpy().astype(np.float64)
    mu, cov = X.mean(axis=0), np.cov(X, rowvar=False)
    inv = np.linalg.inv(cov)
    del r, X
    # -- the batch
    b = pl.read_parquet(batch)
    n = b.height
    found: dict[str, Any] = {"schema_ok": b.columns == list(prof_columns(prof))}
    agg = b.select(
        *[pl.col(x).null_count().alias(f"{x}:null") for x in b.columns],
        *[((pl.col(x) < prof[f"{x}:min"]) | (pl.col(x) > prof[f"{x}:max"])).sum().alias(f"{x}:out") for x in NUMERIC],
        *[(~pl.col(x).is_in(list(freqs[x]))).sum().alias(f"{x}:unseen") for x in CATEGORICAL],
        *[
            (pl.col(x) < prof[f"{x}:t{q}"] if q < 0.5 else pl.col(x) > prof[f"{x}:t{q}"]).sum().alias(f"{x}:tail{q}")
            for x in NUMERIC[:6]
            for q in (0.001, 0.01, 0.99, 0.999)
        ],
        *[pl.col(x).str.contains(_EMAIL).sum().alias(f"{x}:email") for x in STRINGS],
        *[pl.col(x).str.contains(_PHONE).sum().alias(f"{x}:phone") for x in STRINGS],
        *[(~pl.col(x).str.contains(r"^[a-z]+$")).sum().alias(f"{x}:format") for x in STRINGS],
        pl.struct(b.columns).is_duplicated().sum().alias("duplicates"),
    ).row(0, named=True)
    found["nulls"] = sum(agg[f"{x}:null"] for x in b.columns)
    found["out_of_range"] = {x: agg[f"{x}:out"] for x in NUMERIC if agg[f"{x}:out"]}
    found["unseen"] = {x: agg[f"{x}:unseen"] for x in CATEGORICAL if agg[f"{x}:unseen"]}
    found["tails"] = {
        x: q
        for x in NUMERIC[:6]
        for q in (0.001, 0.01, 0.99, 0.999)
        if (agg[f"{x}:tail{q}"] / n - (q if q < 0.5 else 1 - q)) > 0.002
    }
    found["pii"] = sum(agg[f"{x}:email"] + agg[f"{x}:phone"] for x in STRINGS)
    found["format"] = {x: agg[f"{x}:format"] for x in STRINGS if agg[f"{x}:format"]}
    found["duplicates"] = agg["duplicates"]
    # tight clusters and drift: counts per cell of the reference's quantile bins
    clusters, psi = {}, {}
    for x in NUMERIC[:6]:
        v = b[x].drop_nulls().to_numpy()
        share, expected = _cells(v, *lohi[x]) / n, ref_cells[x]
        sd = np.sqrt(np.maximum(expected * (1 - expected), 1 / nr) / nr + np.maximum(share * (1 - share), 1 / n) / n)
        z = (share - expected) / sd
        if z.max() > 8:
            clusters[x] = int(z.argmax())
        dec = np.bincount(np.searchsorted(deciles[x], v, side="right"), minlength=10) / max(v.size, 1)
        psi[x] = float(np.sum((dec - 0.1) * np.log(np.maximum(dec, 1e-6) / 0.1)))
    for x in CATEGORICAL:
        cur = dict(b[x].value_counts(name="n").iter_rows())
        keys = set(cur) | set(freqs[x])
        p = np.array([freqs[x].get(k, 0) / nr for k in keys]) + 1e-6
        q_ = np.array([cur.get(k, 0) / n for k in keys]) + 1e-6
        psi[x] = float(np.sum((q_ - p) * np.log(q_ / p)))
    found["clusters"] = clusters
    found["drift"] = {k: round(v, 4) for k, v in psi.items() if v > 0.0005}
    ref_lab = np.array([freqs["label"].get(k, 0) for k in ("neg", "pos")], dtype=float)
    cur_lab = dict(b["label"].value_counts(name="n").iter_rows())
    obs = np.array([cur_lab.get(k, 0) for k in ("neg", "pos")], dtype=float)
    exp = ref_lab / ref_lab.sum() * obs.sum()
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    # multivariate outliers: Mahalanobis distance against the reference (chi-square, 7 dof, p < 1e-6: 40.5)
    Xb = b.select(NUMERIC).to_numpy().astype(np.float64) - mu
    d2 = np.einsum("ij,jk,ik->i", Xb, inv, Xb)
    found["outliers"] = int((d2 > 40.5).sum())
    t, cpu_s = time.perf_counter() - w, cpu() - c
    return {
        "import_s": t_import,
        "total_s": t,
        "total_cpu_s": cpu_s,
        "findings": found,
        "caught_new_category": "cat" in found["unseen"],
        "caught_cluster": "f2" in clusters,
        "caught_label_shift": chi2 > 30,
    }


def _cells(v: np.ndarray, lo: float, hi: float, k: int = 1000) -> np.ndarray:
    """Counts in ``k`` equal-width cells over ``[lo, hi]`` and one open cell at each end (NumPy's uniform
    histogram: a multiply per value, no search)."""
    inner, _ = np.histogram(v, bins=k, range=(lo, hi))
    return np.concatenate([[np.count_nonzero(v < lo)], inner, [np.count_nonzero(v > hi)]]).astype(np.float64)


def prof_columns(prof: dict[str, Any]) -> list[str]:
    """The reference's columns, in order (from the null-count keys of its profile)."""
    return [k[: -len(":null")] for k in prof if k.endswith(":null")]


def run_dataward_split(ref: Path, batch: Path, workers: int) -> dict[str, Any]:
    """dataward's check with the suite split across a ``workers``-process pool (``check --executor processes``)."""
    from dataward.scale.processes import ProcessExecutor
    from dataward.scale.runs import check_on
    from dataward.screen.api import create_baseline

    bl, t_base, c_base = timed(lambda: create_baseline(ref, label="label"))
    with ProcessExecutor(workers) as ex:
        ex.map(abs, [0, 1])  # the pool's processes start before the timing
        w, c, cc = time.perf_counter(), cpu(), cpu_children()
        rep = check_on(ex, str(batch), baseline=bl)
        t_check = time.perf_counter() - w
    c_check = cpu() - c + cpu_children() - cc  # the pool's processes are waited for: their CPU is counted
    kinds = {(f.kind, f.evidence.get("column")) for f in rep.findings}
    return {
        "import_s": 0.0,
        "baseline_s": t_base,
        "check_s": t_check,
        "total_s": t_base + t_check,
        "check_cpu_s": c_check,
        "total_cpu_s": c_base + c_check,
        "caught_new_category": ("unseen_category", "cat") in kinds,
        "caught_cluster": ("tight_cluster", "f2") in kinds,
        "caught_label_shift": any(k == "label_shift" for k, _ in kinds),
        "findings": len(rep.findings),
    }


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


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


def _usage() -> dict[str, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"user": r.ru_utime, "sys": r.ru_stime, "minflt": float(r.ru_minflt), "majflt": float(r.ru_majflt)}


def run_side(side: str, ref: Path, batch: Path, calls: int) -> dict[str, Any]:
    """``calls`` timed calls of one side, in this (fresh) process: ``dataward`` (baseline + check, reading the
    Parquet files) or ``ge`` (the 12 expectations on DataFrames read before any timing). Each call gives wall,
    user and system CPU seconds, minor/major page faults and the load average; the first call is kept apart
    (it pays the process's first-call costs: lazy imports, pools, caches), the repeated calls are the steady
    state. Nothing of the other tool is loaded in the process, so neither inherits the other's heap or
    allocator settings (dataward's ``mallopt`` is process-wide, ADR 0077)."""
    if side == "ge":
        ref_df, df = pq.read_table(ref).to_pandas(), pq.read_table(batch).to_pandas()

        def once() -> dict[str, Any]:
            return run_ge(ref_df, df)

    else:

        def once() -> dict[str, Any]:
            return run_dataward(ref, batch)

    out = []
    for _ in range(calls):
        load = os.getloadavg()[0]
        u0, w0 = _usage(), time.perf_counter()
        res = once()
        w, u1 = time.perf_counter() - w0, _usage()
        d = {k: round(u1[k] - u0[k], 3) for k in u0}
        caught = [res[k] for k in ("caught_new_category", "caught_cluster", "caught_label_shift")]
        out.append(
            {
                # the tool's own timed region (imports and, for dataward, nothing else excluded)
                "wall": round(res["total_s"], 3),
                "cpu": round(res["total_cpu_s"], 3),
                # the whole call as seen from outside (for GE: context, suite and validation alike)
                "call_wall": round(w, 3),
                "user": d["user"],
                "sys": d["sys"],
                "minflt": int(d["minflt"]),
                "majflt": int(d["majflt"]),
                "load": round(load, 2),
                "caught": caught,
            }
        )
    return {"side": side, "calls": out}


# Issue 18's figures (1M rows, load average 28, CPU s): the row the new figures are read against.
ISSUE_18 = {"dataward_cpu_s": 4.31, "dataward_wall_s": 24.66, "ge_cpu_s": 4.72, "floor_cpu_s": 2.63}


def run_before(src: str, ref: Path, batch: Path) -> dict[str, Any]:
    """:func:`run_dataward` in a child whose ``dataward`` is imported from ``src`` (an export of the code
    before a change), on the same files in the same run."""
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, __file__, "--dataward-only", str(ref), str(batch)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rss-rows", type=int, default=10_000_000, help="0 to skip the memory run")
    ap.add_argument("--skip", default="", help="comma-separated: ge,evidently,floor,split")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--before-src", default=None, help="also time the dataward under this src directory (same run)")
    ap.add_argument("--dataward-only", nargs=2, metavar=("REF", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument("--side", nargs=4, metavar=("SIDE", "REF", "BATCH", "CALLS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        side, ref, batch, calls = args.side
        print(json.dumps(run_side(side, Path(ref), Path(batch), int(calls))))
        return
    if args.dataward_only:
        print(json.dumps(run_dataward(Path(args.dataward_only[0]), Path(args.dataward_only[1]))))
        return
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
        results["load_before"] = os.getloadavg()
        results["dataward"] = run_dataward(d / "ref.parquet", d / "batch.parquet")
        print("dataward", json.dumps(results["dataward"]), flush=True)
        if args.before_src:
            results["dataward_before"] = run_before(args.before_src, d / "ref.parquet", d / "batch.parquet")
            print("dataward_before", json.dumps(results["dataward_before"]), flush=True)
        if "split" not in skip:
            results["dataward_x2"] = run_dataward_split(d / "ref.parquet", d / "batch.parquet", 2)
            print("dataward_x2", json.dumps(results["dataward_x2"]), flush=True)
        if "floor" not in skip:
            results["floor"] = run_floor(d / "ref.parquet", d / "batch.parquet")
            print("floor", json.dumps(results["floor"]), flush=True)
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
        results["load_after"] = os.getloadavg()
        if args.rss_rows:
            write_big(d / "big.parquet", args.rss_rows)
            results["rss"] = child_rss(d / "big.parquet", d / "ref.parquet")
            print("rss", json.dumps(results["rss"]), flush=True)
    print()
    print(f"{'tool':22} {'wall s':>9} {'CPU s':>9} {'import s':>9}  new-cat  cluster  label-shift")
    print(
        f"{'issue 18 (old, load 28)':22} {ISSUE_18['dataward_wall_s']:9.2f} {ISSUE_18['dataward_cpu_s']:9.2f} "
        f"{'':>9}  (GE {ISSUE_18['ge_cpu_s']} CPU s, floor {ISSUE_18['floor_cpu_s']} CPU s in that run)"
    )
    names = ("dataward_before", "dataward", "dataward_x2", "floor", "great_expectations", "evidently")
    rows = [(k, results[k]) for k in names if k in results]
    for name, r in rows:
        if "error" in r:
            print(f"{name:22} error: {r['error'][:80]}")
            continue
        print(
            f"{name:22} {r['total_s']:9.2f} {r['total_cpu_s']:9.2f} {r['import_s']:9.2f}  "
            f"{r['caught_new_category']!s:7}  "
            f"{r['caught_cluster']!s:7}  {r['caught_label_shift']}"
        )
    la, lb = results.get("load_before", (0, 0, 0)), results.get("load_after", (0, 0, 0))
    print(f"load average (1 min) {la[0]:.1f} before, {lb[0]:.1f} after; dataward = baseline + check")
    ge, ev, fl = (results.get(k, {}) for k in ("great_expectations", "evidently", "floor"))
    for unit, key in (("wall", "total_s"), ("CPU", "total_cpu_s")):
        for who in ("dataward_before", "dataward", "dataward_x2"):
            mine = results.get(who, {}).get(key)
            if not mine:
                continue
            parts = []
            if key in ge:
                parts.append(f"vs GE alone {ge[key] / mine:.2f}x (target >= 3x)")
                if key in ev:
                    parts.append(f"vs GE + Evidently {(ge[key] + ev[key]) / mine:.2f}x")
            if key in fl:
                parts.append(f"of the polars floor {fl[key] / mine:.2f}x (target >= 0.5x)")
            before = results.get("dataward_before", {}).get(key)
            if who == "dataward" and before:
                parts.append(f"{before / mine:.2f}x faster than before (same run)")
            print(f"{unit:4} {who:12} {mine:6.2f} s: " + "; ".join(parts))
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
