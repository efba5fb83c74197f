"""False-alarm table: ``detect`` and ``check`` on clean real data sets, nothing planted.

Every data set here is believed clean (a little natural label noise is part of real data). For each one we
report the fraction of records flagged at medium severity or above and the highest severity, by:

- ``detect``: the detector ensemble (:func:`dataward.detect.detect`); a record is flagged when the
  ensemble flags it, and each finding's severity is mapped with the workflow's one mapping
  (:func:`dataward.workflow.checks.severity_of_score`);
- ``check``: the screening suite (:func:`dataward.screen.api.check_path`) with the source licence declared
  (CC-BY-4.0, the licence of the shared data) and the PII switch at ``warn``; the exit status the CLI would
  give (``--fail-on high``) is reported too;

- ``screen``: ``dataward screen B`` in a fresh workspace (the source registered with the licence, the file
  acquired as batch B, the default checks with PII at warn): the same two engines through the workflow's
  one severity mapping, with the batch's flagged fraction as the signed report states it.

Done means (issue 15): no finding at high or critical, at most 1 % of records flagged at medium or above by
``check`` and ``detect``, and ``check`` exits 0. The table goes to stdout (Markdown) and JSON to
benchmarks/out/false_alarms.json, with load average and CPU time::

    python benchmarks/false_alarms.py            # every data set
    python benchmarks/false_alarms.py --quick    # a few small sets
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
OUT = ROOT / "benchmarks" / "out" / "false_alarms.json"
LICENCE = "CC-BY-4.0"
RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


# ------------------------------------------------------------------------------------------- data sets
# Each builder writes the data set under ``root`` and returns (path, column options).
Builder = Callable[[Path], tuple[Path, dict[str, Any]]]


def _sentiment(name: str) -> Builder:
    def build(root: Path) -> tuple[Path, dict[str, Any]]:
        raw = (DATA / "sentiment" / f"{name}_labelled.txt").read_bytes().decode("utf-8")
        rows = [line.rsplit("\t", 1) for line in raw.split("\n") if "\t" in line]  # split on \n only (NEL)
        frame = pd.DataFrame({"text": [r[0].strip() for r in rows], "label": [r[1].strip() for r in rows]})
        path = root / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path, {"label": "label", "text": "text"}

    return build


def _sms(root: Path) -> tuple[Path, dict[str, Any]]:
    frame = pd.read_csv(DATA / "sms_spam.tsv", sep="\t", quoting=3, dtype=str, keep_default_na=False)
    path = root / "sms.csv"
    frame.to_csv(path, index=False)
    return path, {"label": "Label", "text": "SMS"}


def _sklearn(name: str) -> Builder:
    def build(root: Path) -> tuple[Path, dict[str, Any]]:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        cols = [f"f{i}" for i in range(bunch.data.shape[1])] if name == "digits" else list(bunch.feature_names)
        frame = pd.DataFrame(bunch.data, columns=[c.replace(" ", "_") for c in cols])
        frame["label"] = [str(bunch.target_names[t]) for t in bunch.target]
        path = root / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path, {"label": "label"}

    return build


def _digit_images(root: Path) -> tuple[Path, dict[str, Any]]:
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    folder = root / "digit_images"
    for i, (img, target) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        sub = folder / str(target)
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255.0 / 16.0).astype(np.uint8)).save(sub / f"{i:05d}.png")
    return folder, {}


def _synthetic(kind: str, n: int = 2000, d: int = 10) -> Builder:
    def build(root: Path) -> tuple[Path, dict[str, Any]]:
        rng = np.random.default_rng(7)
        x = rng.uniform(0.0, 1.0, (n, d)) if kind == "uniform" else rng.normal(0.0, 1.0, (n, d))
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(d)])
        frame["label"] = rng.choice(["a", "b", "c"], size=n)  # unrelated to the features
        path = root / f"{kind}.csv"
        frame.to_csv(path, index=False)
        return path, {"label": "label"}

    return build


def gaussian_classes_frame(seed: int = 7) -> pd.DataFrame:
    """Three Gaussian classes whose labels follow the features: 3 s.d. apart along x0, the middle one also
    1.5 s.d. up x1, x7 skewed (a column that separates classes makes label shares climb across boundaries;
    ADR 0096)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(3):
        z = rng.normal(size=(200, 8))
        z[:, 0] += 3 * k
        z[:, 1] += 1.5 * (k % 2)
        z[:, 7] = np.exp(z[:, 7])
        part = pd.DataFrame(z, columns=[f"x{i}" for i in range(8)])
        part["label"] = f"c{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _gaussian_classes(root: Path) -> tuple[Path, dict[str, Any]]:
    path = root / "gaussian_classes.csv"
    gaussian_classes_frame().to_csv(path, index=False)
    return path, {"label": "label"}


def _templated(root: Path) -> tuple[Path, dict[str, Any]]:
    """A templated text column: every value starts with the same words (real sentences after them)."""
    path, _ = _sentiment("yelp")(root)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["text"] = "Customer review: " + frame["text"] + " (rated online)"
    out = root / "templated.csv"
    frame.to_csv(out, index=False)
    return out, {"label": "label", "text": "text"}


DATASETS: dict[str, Builder] = {
    "sms_spam": _sms,
    "amazon": _sentiment("amazon_cells"),
    "imdb": _sentiment("imdb"),
    "yelp": _sentiment("yelp"),
    "digits": _sklearn("digits"),
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "iris": _sklearn("iris"),
    "digit_images": _digit_images,
    "uniform": _synthetic("uniform"),
    "gaussian": _synthetic("gaussian"),
    "gaussian_classes": _gaussian_classes,
    "templated_text": _templated,
}
QUICK = ("yelp", "breast_cancer", "wine", "uniform", "templated_text")


# ------------------------------------------------------------------------------------------- runners


def run_detect(path: Path, cols: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The ensemble on ``path``: fraction flagged, highest finding severity, each detector's time."""
    from dataward.detect import detect

    text = cols.get("text")
    report = detect(path, label=cols.get("label"), text=text, image="image" if path.is_dir() else None, seed=seed)
    severities = [f.severity for f in report.findings]
    medium = {i for f in report.findings if RANK[f.severity] >= 2 for i in f.records}
    flagged = set(np.flatnonzero(report.flagged).tolist()) | medium
    return {
        "n": report.n_records,
        "flagged": len(flagged) / max(1, report.n_records),
        "max_severity": max(severities, key=RANK.__getitem__, default="none"),
        "findings": [f"{f.severity}: {f.check}: {f.summary}" for f in report.findings[:6]],
        "detector_seconds": {d["name"]: d["seconds"] for d in report.detectors if not d.get("skipped")},
        "seconds": round(report.seconds, 2),
    }


def run_check(path: Path, cols: dict[str, Any]) -> dict[str, Any]:
    """The screening suite with the licence declared and PII at warn; the exit status of ``dataward check``."""
    from dataclasses import replace

    from dataward.screen.api import check_path
    from dataward.screen.interface import Severity
    from dataward.screen.policy import ScreenPolicy

    if path.is_dir():
        return {"skipped": "the screening suite reads tables (image folders are screened through detect)"}
    report = check_path(
        path,
        label=cols.get("label"),
        text=(cols["text"],) if cols.get("text") else None,
        source_licence=LICENCE,
        policy=replace(ScreenPolicy(), pii="warn"),
    )
    medium: set[int] = set()
    counts = 0
    worst = "none"
    lines = []
    for res in report.results:
        for f in res.findings:
            sev = str(f.severity.value)
            if worst == "none" or RANK[sev] > RANK[worst]:
                worst = sev
            if RANK[sev] >= 2:
                medium.update(int(r) for r in f.records)
                counts = max(counts, int(f.evidence.get("n_records", len(f.records))))
                lines.append(f"{sev}: {f.check}/{f.kind}: {f.summary}")
    n = max(1, report.n_records)
    return {
        "n": report.n_records,
        "flagged": max(len(medium), counts) / n,
        "max_severity": worst,
        "exit": 1 if report.failed(Severity.HIGH) else 0,
        "findings": lines[:6],
        "seconds": round(report.seconds, 2),
    }


def run_screen(path: Path, cols: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """``dataward screen B`` in a fresh workspace: the source is registered with its licence, the file is
    acquired as batch B and screened with the default checks (detection and screening) and PII at warn.
    Reported: the batch's flagged fraction and the highest severity of the signed report's findings."""
    from dataward import principals
    from dataward.acquire.acquire import acquire
    from dataward.model.roles import Grant, Role
    from dataward.sources import add_source
    from dataward.workflow.screening import screen_batch
    from dataward.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="false-alarms-ws-") as tmp:
        ws = Workspace.init(Path(tmp) / "ws", admin="admin")
        try:
            admin = ws.actor("admin")
            principals.enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
            principals.enroll(ws, admin, "sam", [Grant(Role.SCREENER)])
            add_source(ws, admin, "shared", kind="third-party", origin="public data sets", license=LICENCE)
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            batch = acquire(ws, ws.actor("ingrid"), "shared", files)
            policy = Path(tmp) / "policy.yaml"
            policy.write_text("screening:\n  pii: warn\n", encoding="utf-8")
            options: dict[str, dict[str, Any]] = {
                "detection": {k: v for k, v in cols.items() if k in ("label", "text")} | {"seed": seed},
                "screening": {k: v for k, v in cols.items() if k in ("label", "text")} | {"policy": str(policy)},
            }
            t0 = time.perf_counter()
            report = screen_batch(ws, ws.actor("sam"), batch.id, options=options)
            seconds = time.perf_counter() - t0
        finally:
            ws.engine.dispose()
    worst = max((f.severity for f in report.findings), key=lambda s: RANK.get(s, 0), default="none")
    return {
        "n": report.records,
        "flagged": report.flagged_fraction,
        "max_severity": worst,
        "checks": {c["name"]: c["status"] for c in report.checks},
        "findings": [f"{f.severity}: {f.check}/{f.kind}: {f.summary}" for f in report.findings[:6]],
        "seconds": round(seconds, 2),
    }


# ------------------------------------------------------------------------------------------- main


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few small data sets")
    ap.add_argument("--only", default="", help="comma-separated data set names")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else (QUICK if args.quick else DATASETS)) if n]
    rows: list[dict[str, Any]] = []
    t0, c0 = time.perf_counter(), _cpu()
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            path, cols = DATASETS[name](root)
            row: dict[str, Any] = {
                "data": name,
                "detect": run_detect(path, cols),
                "check": run_check(path, cols),
                "screen": run_screen(path, cols),
            }
            rows.append(row)
            print(f"{name}: " + json.dumps({k: _brief(v) for k, v in row.items() if k != "data"}), file=sys.stderr)
    meta = {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(_cpu() - c0, 1),
        "cpus": os.cpu_count(),
    }
    ok = all(_passes(r) for r in rows)
    print(_table(rows, meta))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows, "all_pass": ok}, indent=2) + "\n")
    return 0 if ok else 1


def _brief(v: Any) -> Any:
    if isinstance(v, dict) and "flagged" in v:
        return {"flagged": round(v["flagged"], 4), "max": v["max_severity"], "exit": v.get("exit")}
    return v


def _passes(row: dict[str, Any]) -> bool:
    for tool in ("detect", "check", "screen"):
        r = row.get(tool)
        if not r or "skipped" in r:
            continue
        if "error" in r or RANK.get(r["max_severity"], 0) >= 3 or r["flagged"] > 0.01 or r.get("exit", 0) != 0:
            return False
    return True


def _table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    tools = [t for t in ("detect", "check", "screen") if any(t in r for r in rows)]
    head = "| data | n | " + " | ".join(f"{t} flagged | {t} max" for t in tools) + " | pass |"
    lines = [head, "|" + " --- |" * (3 + 2 * len(tools))]
    for r in rows:
        cells = [r["data"], str(r["detect"]["n"])]
        for t in tools:
            v = r.get(t, {})
            if "flagged" in v:
                cells += [
                    f"{100 * v['flagged']:.2f} %",
                    v["max_severity"] + (f" (exit {v['exit']})" if "exit" in v else ""),
                ]
            else:
                cells += ["-", v.get("skipped", v.get("error", "-"))[:40]]
        cells.append("yes" if _passes(r) else "**no**")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"\nload average {meta['load_average']}, wall {meta['wall_seconds']} s, CPU {meta['cpu_seconds']} s "
        f"on {meta['cpus']} CPUs"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
