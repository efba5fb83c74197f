"""Label-flip benchmark: dataward's ``label_issues`` against cleanlab on the same data, in the same run.

Random label flips (the simulator's ``label_flip``) at 5 % and 10 % on real data: SMS spam and the three
"sentiment labelled sentences" files joined (text), scikit-learn's digits, breast_cancer, wine and iris
(tabular). Three harder small dense tables are opt-in (``--only moons,blobs,digits600``: two moons with four
noise columns, a noisy 3-class ``make_classification`` and 600 digits as a table; docs/adr/0074, 0082).
For each case, precision, recall and F1 of:

- ``dataward``: the ``label_issues`` detector alone, as shipped (out-of-fold probabilities; word, character
  and naive Bayes views on text; the label-noise mixture's first-pass test, then the expected-F1 cut, with
  class biases and confident learning where a test asks for them; docs/adr/0060);
- ``dataward-union``: the same fit with ``flag_rule="mixture+confident-joint"`` (the shipped flags or the
  confident joint per class pair on the natural model, docs/adr/0048), read off the same run;
- ``ensemble``: the flags of the whole ensemble, ``dataward.detect.detect`` with every default detector
  fused by ``combine`` (what ``dataward detect`` reports; docs/adr/0075); ``--no-ensemble`` skips it;
- ``cleanlab-same-probs``: cleanlab 2.9 ``find_label_issues`` fed dataward's calibrated probabilities;
- ``cleanlab-default``: ``CleanLearning`` over a logistic regression with its own cross-validation.

cleanlab is AGPL and never a dataward dependency: its peer runs in a separate venv (``--peer-python``,
default ``.venv-bench-detection/bin/python`` from ``make bench-env``) through
benchmarks/_label_flips_cleanlab_peer.py, once for all cases at the end (cleanlab's import alone takes
seconds). Without it, the cleanlab columns are empty::

    python benchmarks/label_flips.py --quick                    # 1 seed, 5 % only
    python benchmarks/label_flips.py --seeds 3 --peer-python .venv-bench-detection/bin/python
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

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
OUT = ROOT / "benchmarks" / "out" / "label_flips.json"
PEER = ROOT / "benchmarks" / "_label_flips_cleanlab_peer.py"


def _sms() -> tuple[pd.DataFrame, dict[str, str]]:
    rows = [line.split("\t", 1) for line in (DATA / "sms_spam.tsv").read_text("utf-8").split("\n")[1:] if "\t" in line]
    return pd.DataFrame({"text": [r[1] for r in rows], "label": [r[0] for r in rows]}), {"text": "text"}


def _sentiment() -> tuple[pd.DataFrame, dict[str, str]]:
    rows = []
    for name in ("amazon_cells", "imdb", "yelp"):
        for line in (DATA / "sentiment" / f"{name}_labelled.txt").read_text("utf-8").split("\n"):
            if "\t" in line:
                text, label = line.rsplit("\t", 1)
                rows.append((text.strip(), "positive" if label.strip() == "1" else "negative"))
    return pd.DataFrame(rows, columns=["text", "label"]), {"text": "text"}


def _sklearn(name: str) -> Any:
    def build() -> tuple[pd.DataFrame, dict[str, str]]:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        frame = pd.DataFrame(bunch.data, columns=[f"f{i}" for i in range(bunch.data.shape[1])])
        frame["label"] = [str(bunch.target_names[t]) for t in bunch.target]
        return frame, {}

    return build


DATASETS = {
    "sms_spam": _sms,
    "sentiment": _sentiment,
    "digits": _sklearn("digits"),
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "iris": _sklearn("iris"),
}


def _table_frame(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = [f"c{t}" for t in y]
    return frame, {}


def _moons(seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Two moons, 500 records, noise 0.2, with four N(0, 1) columns beside the two informative ones."""
    from sklearn.datasets import make_moons

    x, y = make_moons(500, noise=0.2, random_state=seed)
    return _table_frame(np.hstack([x, np.random.default_rng(seed).normal(size=(500, 4))]), y)


def _blobs(seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Noisy 3-class ``make_classification`` (400 x 10, 5 informative, class_sep 1.2; its default flip_y = 0.01
    already draws 1 % of the labels at random, unmarked in the truth for every column alike)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(400, n_features=10, n_informative=5, n_classes=3, class_sep=1.2, random_state=seed)
    return _table_frame(x, y)


def _digits600(seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """The first 600 rows of scikit-learn's digits as a table (10 classes, a small dense table)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _table_frame(bunch.data[:600], bunch.target[:600])


#: harder small dense tables outside the default run (docs/adr/0074, 0082): ``--only moons,blobs,digits600``;
#: moons and blobs are drawn with the case's seed (data seed = flip seed)
EXTRA_TABLES = {"moons": _moons, "blobs": _blobs, "digits600": _digits600}


def prf(flags: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> dict[str, float]:
    tp = int(np.sum(flags & truth))
    fp = int(np.sum(flags & ~truth))
    fn = int(np.sum(~flags & truth))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}


def run_case(
    name: str, rate: float, seed: int, job: Path | None, ensemble: bool = True
) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    """dataward on one case; with ``job``, the peer's input is written there (the peer runs once, at the end)."""
    from dataward.detect import detect, from_frame
    from dataward.detect._labels import LabelIssues
    from dataward.simulate import Roles, simulate

    frame, roles = EXTRA_TABLES[name](seed) if name in EXTRA_TABLES else DATASETS[name]()
    poisoned = simulate(frame, "label_flip", Roles(label="label", text=roles.get("text")), rate=rate, seed=seed)
    truth = poisoned.truth.mask()
    rep = from_frame(poisoned.data, label="label", text=roles.get("text"))
    t0 = time.perf_counter()
    detector = LabelIssues()
    result = detector.score(rep, seed=seed)
    row: dict[str, Any] = {"data": name, "rate": rate, "seed": seed, "n": rep.n_records}
    row["dataward"] = {**prf(result.flagged, truth), "seconds": round(time.perf_counter() - t0, 2)}
    # the opt-in rule (flag_rule="mixture+confident-joint") flags this union; same fit, so read it off this run
    assert detector.last_confident_joint is not None and detector.last_probabilities is not None
    row["dataward-union"] = prf(result.flagged | detector.last_confident_joint, truth)
    if ensemble:
        t1 = time.perf_counter()
        report = detect(rep, seed=seed)
        row["ensemble"] = {**prf(report.flagged, truth), "seconds": round(time.perf_counter() - t1, 2)}
    if job is not None:
        assert rep.labels is not None
        extra: dict[str, Any] = (
            {"text": np.asarray(rep.texts, dtype=str)}
            if rep.texts is not None
            else {"features": poisoned.data.drop(columns=["label"]).to_numpy(dtype=np.float64)}
        )
        np.savez(job, y=rep.labels, probs=detector.last_probabilities, seed=np.int64(seed), **extra)
    return row, truth


def run_peers(peer_python: Path, jobs: list[Path], rows: list[dict[str, Any]], truths: list[Any]) -> None:
    """cleanlab on every job in one peer process (one import of cleanlab), results added to ``rows``."""
    t1 = time.perf_counter()
    out = subprocess.run([str(peer_python), str(PEER), *map(str, jobs)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        for row in rows:
            row["peer_error"] = out.stderr.strip().splitlines()[-1:] or ["failed"]
        return
    peers = json.loads(out.stdout)
    peers = peers if isinstance(peers, list) else [peers]
    for row, truth, flags in zip(rows, truths, peers, strict=True):
        for peer, f in flags.items():
            row[peer] = prf(np.asarray(f, dtype=bool), truth)
    rows[0]["peer_seconds_all"] = round(time.perf_counter() - t1, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 5 %% flips only")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--only", default="", help=f"comma-separated data sets: {', '.join([*DATASETS, *EXTRA_TABLES])}")
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-bench-detection" / "bin" / "python"))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--no-ensemble", action="store_true", help="skip the whole ensemble's row (detect())")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS and n not in EXTRA_TABLES]
    if unknown:
        ap.error(f"unknown data set(s): {', '.join(unknown)}")
    rates = (0.05,) if args.quick else (0.05, 0.10)
    seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
    peer = Path(args.peer_python)
    if not peer.exists():
        print(f"cleanlab peer skipped: {peer} not found (make bench-env)", file=sys.stderr)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    truths = []
    jobs: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for rate in rates:
                for seed in seeds:
                    job = Path(tmp) / f"job{len(rows)}.npz" if peer.exists() else None
                    row, truth = run_case(name, rate, seed, job, ensemble=not args.no_ensemble)
                    rows.append(row)
                    truths.append(truth)
                    if job is not None:
                        jobs.append(job)
                    print(json.dumps(row), file=sys.stderr)
        if jobs:
            run_peers(peer, jobs, rows, truths)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    meta = {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, 1),
    }
    print(_table(rows, meta))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


def _table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    tools = ["dataward", "dataward-union", "ensemble", "cleanlab-same-probs", "cleanlab-default"]
    head = "| data | flips | seeds | " + " | ".join(f"{t} F1" for t in tools) + " |"
    lines = [head, "|" + " --- |" * (3 + len(tools))]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["rate"]), []).append(r)
    for (name, rate), rs in groups.items():
        cells = [name, f"{rate:.0%}", str(len(rs))]
        for t in tools:
            f1s = [r[t]["f1"] for r in rs if t in r]
            cells.append(f"{np.mean(f1s):.3f} ({min(f1s):.2f}-{max(f1s):.2f})" if f1s else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\nload average {meta['load_average']}, wall {meta['wall_seconds']} s, CPU {meta['cpu_seconds']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
