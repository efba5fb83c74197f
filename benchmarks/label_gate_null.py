"""The label-noise gate's null: clean small tables whose labels are drawn from a known p(y | x), no flips.

``label_issues`` flags nothing unless its first-pass test rejects "no label noise beyond natural ambiguity"
(docs/adr/0060, 0074, 0097). This benchmark draws tables where that null holds by construction and reports
how often the gate rejects at 0.01 and 0.05 and how many records the detector then flags:

- ``ring``: ``p(y = 1 | x) = sigmoid(a (r^2 - 1.4))``, ``r^2 = x0^2 + x1^2`` (a smooth ring, classes
  balanced: 1.4 is about the median of ``r^2``);
- ``sine``: ``p(y = 1 | x) = sigmoid(a sin(2 x0) sign(x1))`` (a sign-sine that jumps at ``x1 = 0``; broad
  regions where ``p`` stays near ``sigmoid(+-a)``);
- ``three``: three classes with logits ``a (r^2 - 1.4)``, ``a sin(2 x0) sign(x1)`` and 0;
- ``logistic``: labels from a logistic model on 3-11 Gaussian or Student-t(3) features (docs/adr/0074's null).

Each table: 150-900 records, ``a`` in 1.5-5, 2-6 N(0, 1) features for the non-linear families (docs/adr/0097),
all drawn from the table's index, so a table is the same in every run::

    python benchmarks/label_gate_null.py                          # 30 tables of each family
    python benchmarks/label_gate_null.py --only ring,sine --tables 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "label_gate_null.json"
FAMILIES = ("ring", "sine", "three", "logistic")
#: each family's tables are drawn from seeds offset by this times the family's position (disjoint streams)
_STREAM = 10_000


def _draw(p: np.ndarray[Any, Any], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """One label per row of the class probabilities ``p``."""
    return np.asarray((p.cumsum(axis=1) > rng.random((p.shape[0], 1))).argmax(axis=1), dtype=np.int64)


def _softmax(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray[Any, Any] = e / e.sum(axis=1, keepdims=True)
    return out


def null_table(
    family: str, index: int, sharpness: float | None = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any]]:
    """Table ``index`` of ``family``: features, labels drawn from the family's p(y | x), and its parameters.
    ``sharpness`` replaces the drawn ``a`` of the non-linear families (a large one makes the classes separable:
    the flipped table the gate must still catch)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}")
    rng = np.random.default_rng(_STREAM * (FAMILIES.index(family) + 1) + index)
    n = int(rng.integers(150, 901))
    if family == "logistic":
        d = int(rng.integers(3, 12))
        heavy = bool(rng.integers(0, 2))
        x = rng.standard_t(3, size=(n, d)) if heavy else rng.normal(size=(n, d))
        k = int(rng.integers(2, 5))
        logits = x @ (rng.normal(size=(d, k)) * float(rng.uniform(0.5, 2.0)))
        return x, _draw(_softmax(logits), rng), {"n": n, "d": d, "classes": k, "student_t": heavy}
    d = int(rng.integers(2, 7))
    a = float(rng.uniform(1.5, 5.0))
    if sharpness is not None:
        a = float(sharpness)
    x = rng.normal(size=(n, d))
    ring = a * (x[:, 0] ** 2 + x[:, 1] ** 2 - 1.4)
    sine = a * np.sin(2.0 * x[:, 0]) * np.sign(x[:, 1])
    if family == "three":
        logits = np.column_stack([ring, sine, np.zeros(n)])
    else:
        z = ring if family == "ring" else sine
        logits = np.column_stack([np.zeros(n), z])
    return x, _draw(_softmax(logits), rng), {"n": n, "d": d, "a": round(a, 3), "classes": logits.shape[1]}


def run_table(family: str, index: int, **params: Any) -> dict[str, Any]:
    """``label_issues`` on one null table: the gate's p-value, the records flagged and the CPU seconds."""
    from dataward.detect import from_arrays
    from dataward.detect._labels import LabelIssues
    from dataward.detect.interface import Modality

    x, y, shape = null_table(family, index)
    c0 = time.process_time()
    result = LabelIssues(**params).score(from_arrays(x, y, modality=Modality.TABULAR), seed=index)
    return {
        "family": family,
        "index": index,
        **shape,
        "p_value": float(result.params["noise_p_value"]),
        "flagged": int(result.flagged.sum()),
        "cpu_seconds": round(time.process_time() - c0, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per family: tables, rejections at 0.01 and 0.05, and the records flagged where any were."""
    out: dict[str, dict[str, Any]] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        rs = [r for r in rows if r["family"] == family]
        out[family] = {
            "tables": len(rs),
            "reject_01": sum(r["p_value"] <= 0.01 for r in rs),
            "reject_05": sum(r["p_value"] <= 0.05 for r in rs),
            "flagged_tables": sum(r["flagged"] > 0 for r in rs),
            "flagged": sorted(r["flagged"] for r in rs if r["flagged"] > 0),
            "cpu_seconds": round(sum(r["cpu_seconds"] for r in rs), 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma-separated families: {', '.join(FAMILIES)}")
    ap.add_argument("--tables", type=int, default=30, help="tables per family")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    families = [f for f in args.only.split(",") if f] or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        ap.error(f"unknown famil(ies): {', '.join(unknown)}")
    t0 = time.perf_counter()
    rows = []
    for family in families:
        for index in range(args.tables):
            rows.append(run_table(family, index))
            print(json.dumps(rows[-1]), file=sys.stderr)
    me = resource.getrusage(resource.RUSAGE_SELF)
    meta = {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(me.ru_utime + me.ru_stime, 1),
    }
    table = summary(rows)
    lines = ["| family | tables | rejected at 0.01 | at 0.05 | tables flagged | records flagged |", "|" + " --- |" * 6]
    for family, s in table.items():
        flagged = ", ".join(map(str, s["flagged"])) or "-"
        lines.append(
            f"| {family} | {s['tables']} | {s['reject_01']} | {s['reject_05']} | {s['flagged_tables']} | {flagged} |"
        )
    lines.append(f"\nload average {meta['load_average']}, wall {meta['wall_seconds']} s, CPU {meta['cpu_seconds']} s")
    print("\n".join(lines))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "summary": table, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
