"""Speed and scale of ``dataward detect`` on text: 100k records (target < 30 s wall) and 1M (< 10 min), < 4 GiB.

Records are resampled from ../shared/data SMS spam with light noise (a dropped word, upper-casing, a number)
and a 1 % text trigger; ``dataward detect`` (the CLI, every default text detector) runs in a subprocess.
Reported: wall and CPU seconds, peak RSS, load average before and after, each detector's seconds and
whether it stepped aside or searched a sample (and why), and how many planted records were flagged.
Output: a Markdown line per size and JSON in benchmarks/out/detect_scale.json::

    python benchmarks/detect_scale.py --sizes 20000          # quick
    python benchmarks/detect_scale.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
OUT = ROOT / "benchmarks" / "out" / "detect_scale.json"

_CHILD = r"""
import json, resource, subprocess, sys, time
path, exe = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
cmd = [exe, "detect", path, "--label", "label", "--text", "text", "--json-out", path + ".json", "--quiet"]
proc = subprocess.run(cmd, capture_output=True, text=True)
seconds = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "peak_rss_bytes": ru.ru_maxrss * 1024, "stderr": proc.stderr[-500:]}))
"""


def make_texts(n: int, seed: int) -> pd.DataFrame:
    return make_poisoned(n, seed)[0]


def make_poisoned(n: int, seed: int) -> tuple[pd.DataFrame, list[int]]:
    """The records and the positions the simulator planted the trigger in."""
    from dataward.simulate import Roles, simulate

    rows = [line.split("\t", 1) for line in (DATA / "sms_spam.tsv").read_text("utf-8").split("\n")[1:] if "\t" in line]
    labels = np.array([r[0] for r in rows])
    base = [r[1] for r in rows]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), n)
    texts = []
    for i in pick.tolist():
        words = base[i].split(" ")
        if len(words) > 3 and rng.random() < 0.5:
            del words[int(rng.integers(len(words)))]
        if rng.random() < 0.3:
            j = int(rng.integers(len(words)))
            words[j] = words[j].upper()
        if rng.random() < 0.2:
            words.append(str(int(rng.integers(1000))))
        texts.append(" ".join(words))
    frame = pd.DataFrame({"text": texts, "label": labels[pick]})
    poisoned = simulate(frame, "text-trigger", Roles(label="label", text="text"), rate=0.01, target="ham", seed=seed)
    return poisoned.data, sorted(int(i) for i in poisoned.truth.changed)


def run(n: int, seed: int) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("dataward"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.jsonl"
        frame, planted = make_poisoned(n, seed)
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
        del frame
        before = [round(x, 2) for x in os.getloadavg()]
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), exe], capture_output=True, text=True, check=True
        )
        out: dict[str, Any] = json.loads(child.stdout)
        out["load_before"], out["load_after"] = before, [round(x, 2) for x in os.getloadavg()]
        report = Path(str(path) + ".json")
        if report.exists():
            rep = json.loads(report.read_text())
            out["detectors"] = {
                d["name"]: (f"skipped: {d['skipped'][:70]}" if d.get("skipped") else round(d["seconds"], 2))
                for d in rep["detectors"]
            }
            # detectors that searched a sample say so, and why, in their parameters
            out["sampled"] = {d["name"]: d["params"]["sampled"] for d in rep["detectors"] if d["params"].get("sampled")}
            out["n_flagged"] = rep["n_flagged"]
            flagged = {r["index"] for r in rep["records"] if r["flagged"]}
            out["planted"], out["planted_flagged"] = len(planted), len(flagged.intersection(planted))
        out["n"] = n
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        r = run(n, args.seed)
        rows.append(r)
        print(
            f"| {n:,} | {r['seconds']:.1f} s wall | {r['cpu_seconds']:.1f} s CPU | "
            f"{r['peak_rss_bytes'] / 2**30:.2f} GiB | load {r['load_before']} -> {r['load_after']} | "
            f"{r.get('detectors')} | {r.get('planted_flagged')}/{r.get('planted')} planted flagged | rc {r['rc']} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["rc"] in (0, 1) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
