"""Checkpoint scanning: dataward vs picklescan and modelscan on the same two corpora, in the same run.

The corpora are built by ``tests/modelscan/modelscan_corpus.py`` (112 malicious files: issue 16's
techniques plus published picklescan/modelscan bypasses; 90 benign files written by scikit-learn, joblib,
numpy, scipy, xgboost, lightgbm, skl2onnx, safetensors, h5py and to torch's layouts). For each scanner and
file the outcome is *flagged* (the scanner reports an issue), *clean*, or *error* (it could not scan the
file, or skipped it as unsupported). A malicious file counts as caught only when flagged; an error is
listed apart (a user sees no alarm, but no "clean" either). A benign file flagged is a false alarm.

picklescan runs in-process (it is a runtime dependency); modelscan runs in its own venv
(``make .venv-bench-modelscan/.stamp``, from benchmarks/requirements-modelscan.txt) through one driver
process that scans every file, so start-up is paid once. Reported: counts, wall and CPU seconds, load.

    python benchmarks/modelscan.py [--quick] [--json out.json]   # --quick: dataward and picklescan only
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "modelscan"))

_MODELSCAN_DRIVER = r"""
import json, sys, time, resource, logging
logging.disable(logging.CRITICAL)
from modelscan.modelscan import ModelScan
out = {}
t0, c0 = time.perf_counter(), time.process_time()
for path in sys.argv[1:]:
    try:
        rep = ModelScan().scan(path)
    except Exception as exc:  # the peer crashing on a file is an error outcome, not ours to hide
        out[path] = {"outcome": "error", "why": f"crash: {type(exc).__name__}"}
        continue
    issues = rep.get("summary", {}).get("total_issues", 0)
    scanned = rep.get("summary", {}).get("scanned", {}).get("total_scanned", 0)
    errors = rep.get("errors", [])
    if issues:
        outcome = "flagged"
    elif errors or not scanned:
        outcome = "error"
    else:
        outcome = "clean"
    out[path] = {"outcome": outcome, "why": (str(errors[0])[:120] if errors else ("" if scanned else "skipped"))}
out["__time__"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
print(json.dumps(out))
"""


def _dataward(paths: list[Path]) -> tuple[dict[str, str], dict[str, float]]:
    from dataward.modelscan import scan_model
    from dataward.modelscan.allowlist import sklearn_estimators

    sklearn_estimators()  # one-time import of scikit-learn's estimator list, outside the timed loop
    out: dict[str, str] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for p in paths:
        out[str(p)] = "flagged" if not scan_model(p).passed else "clean"
    return out, {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def _picklescan(paths: list[Path]) -> tuple[dict[str, str], dict[str, float]]:
    import logging

    from picklescan.scanner import scan_file_path

    logging.disable(logging.CRITICAL)
    out: dict[str, str] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for p in paths:
        try:
            res = scan_file_path(str(p))
        except Exception:  # a crash of the peer on a file is its error outcome
            out[str(p)] = "error"
            continue
        if res.infected_files or res.issues_count:
            out[str(p)] = "flagged"
        elif res.scan_err or not res.scanned_files:
            out[str(p)] = "error"
        else:
            out[str(p)] = "clean"
    return out, {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def _modelscan(paths: list[Path], python: Path) -> tuple[dict[str, str], dict[str, float]] | None:
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", _MODELSCAN_DRIVER, *map(str, paths)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"modelscan driver failed: {proc.stderr[-500:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    timing = data.pop("__time__")
    return {k: v["outcome"] for k, v in data.items()}, timing


def _tally(outcomes: dict[str, str], cases: list[Any], root: Path) -> dict[str, Any]:
    mal = [c for c in cases if c.expect == "fail"]
    ben = [c for c in cases if c.expect == "pass"]

    def of(c: Any) -> str:
        return outcomes[str(c.path(root))]

    return {
        "malicious": len(mal),
        "caught": sum(of(c) == "flagged" for c in mal),
        "missed_clean": sorted(c.name for c in mal if of(c) == "clean"),
        "missed_error": sorted(c.name for c in mal if of(c) == "error"),
        "benign": len(ben),
        "false_alarms": sorted(c.name for c in ben if of(c) == "flagged"),
        "benign_errors": sorted(c.name for c in ben if of(c) == "error"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="dataward and picklescan only (no modelscan venv)")
    ap.add_argument("--json", dest="json_out", default=None, help="write the full result here")
    ap.add_argument("--modelscan-python", default=str(ROOT / ".venv-bench-modelscan" / "bin" / "python"))
    args = ap.parse_args()
    from modelscan_corpus import build

    with tempfile.TemporaryDirectory(prefix="modelscan-bench-") as tmp:
        root = Path(tmp)
        cases = build(root)
        paths = [c.path(root) for c in cases]
        size = sum(p.stat().st_size for p in paths)
        load_before = os.getloadavg()
        results: dict[str, Any] = {}
        runs = [("dataward", lambda: _dataward(paths)), ("picklescan", lambda: _picklescan(paths))]
        if not args.quick:
            runs.append(("modelscan", lambda: _modelscan(paths, Path(args.modelscan_python))))
        for name, run in runs:
            got = run()
            if got is None:
                results[name] = {"skipped": f"no interpreter at {args.modelscan_python} (make bench-env)"}
                continue
            outcomes, timing = got
            results[name] = {**_tally(outcomes, cases, root), **{k: round(v, 2) for k, v in timing.items()}}
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "files": len(paths),
        "bytes": size,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "peak_rss_mib_this_process": round(peak_mib),
        "results": results,
    }
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:10} skipped: {r['skipped']}")
            continue
        print(
            f"{name:10} caught {r['caught']}/{r['malicious']} (missed clean {len(r['missed_clean'])}, "
            f"errors {len(r['missed_error'])})  false alarms {len(r['false_alarms'])}/{r['benign']} "
            f"(benign errors {len(r['benign_errors'])})  {r['wall']} s wall, {r['cpu']} s CPU"
        )
    print(f"load average {report['load_average']['before'][0]:.1f} -> {report['load_average']['after'][0]:.1f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
