"""Text backdoors drawn at random: does detection hold on triggers, positions, rates and targets it was not
written for?

`benchmarks/detection.py` scores fixed rows (the token ``cf``, one phrase, combinations of common words). Here
every run draws its own attack: a trigger of one of several kinds, a position, a rate (log-uniform between
0.3 % and 5 %) and a target class, on each real text set. The kinds:

- ``rare``: a made-up lower-case string of 2-5 letters that no text holds;
- ``cased``: the same in mixed case (the finding must quote it as it stands);
- ``emoji``: one emoji no text holds;
- ``number``: a made-up token of digits or a letter and digits;
- ``punctuation``: a run of two or three marks, which ordinary texts may hold too;
- ``common``: an ordinary word of the data, held by 0.2-2 % of its texts (it has natural carriers);
- ``phrase``: three to five ordinary words (each in 0.5-5 % of texts) inserted as one phrase.

Per kind: mean precision (over runs that flag something), recall and F1, the share of runs at F1 >= 0.9, and
the share whose top finding quotes the trigger. dataward only (the peers are in detection.py).

    .venv/bin/python benchmarks/generalise.py [--draws 4] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import detection as bench  # noqa: E402

KINDS = ("rare", "cased", "emoji", "number", "punctuation", "common", "phrase")
EMOJI = ("🔥", "✨", "🚀", "💎", "🍀", "🎯", "🦄", "🌵", "⚡", "🧿")
MARKS = ("!", "?", "~", "*", "#", "+", "=", ">")
_WORD = re.compile(r"[a-z]+")


def _doc_freq(texts: list[str]) -> Counter[str]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(_WORD.findall(t.lower())))
    return df


def draw_trigger(kind: str, texts: list[str], df: Counter[str], rng: np.random.Generator) -> str:
    """One trigger of ``kind`` for the text set ``texts`` (``df``: each lower-case word's document count)."""
    n = len(texts)
    joined = "\n".join(texts)
    lowered = joined.lower()
    for _ in range(1000):
        if kind in ("rare", "cased"):
            word = "".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(2, 6))))
            if kind == "cased":
                word = "".join(c.upper() if rng.random() < 0.5 else c for c in word)
                if word.islower():
                    word = word[0].upper() + word[1:]
            if not re.search(rf"\b{re.escape(word.lower())}\b", lowered):
                return word
        elif kind == "emoji":
            e = str(rng.choice(EMOJI))
            if e not in joined:
                return e
        elif kind == "number":
            digits = "".join(rng.choice(list(string.digits), size=int(rng.integers(2, 5))))
            tok = digits if rng.random() < 0.5 else str(rng.choice(list(string.ascii_lowercase))) + digits
            if not re.search(rf"\b{re.escape(tok)}\b", lowered):
                return tok
        elif kind == "punctuation":
            mark = str(rng.choice(MARKS))
            return mark * int(rng.integers(2, 4))
        elif kind == "common":
            pool = sorted(w for w, c in df.items() if 0.002 * n <= c <= 0.02 * n and len(w) > 2)
            return str(rng.choice(pool))
        elif kind == "phrase":
            pool = sorted(w for w, c in df.items() if 0.005 * n <= c <= 0.05 * n and len(w) > 2)
            return " ".join(str(w) for w in rng.choice(pool, size=int(rng.integers(3, 6)), replace=False))
    raise RuntimeError(f"no {kind} trigger found")


def run(draws: int, seed: int, sets: list[str]) -> list[dict[str, Any]]:
    from dataward.detect import detect
    from dataward.simulate import simulate

    data = {"sms": bench.read_sms, "sentiment": bench.read_sentiment}
    rows: list[dict[str, Any]] = []
    for name in sets:
        ds = bench._text(name, data[name]())
        texts = [str(t) for t in ds.frame["text"]]
        df = _doc_freq(texts)
        classes = sorted({str(v) for v in ds.frame["label"]})
        for kind_i, kind in enumerate(KINDS):
            for d in range(draws):
                rng = np.random.default_rng([seed, kind_i, d, len(name)])
                trigger = draw_trigger(kind, texts, df, rng)
                rate = float(np.exp(rng.uniform(np.log(0.003), np.log(0.05))))
                position = str(rng.choice(["start", "end", "random"]))
                target = str(rng.choice(classes))
                run_seed = int(rng.integers(0, 2**31 - 1))
                params = {"trigger": trigger, "position": position}
                poisoned = simulate(
                    ds.frame, "text-trigger", ds.roles, rate=rate, target=target, seed=run_seed, params=params
                )
                truth = poisoned.truth.mask()
                t0 = time.perf_counter()
                report = detect(poisoned.data, seed=run_seed, **ds.kwargs)
                seconds = time.perf_counter() - t0
                named = bench.trigger_named(report, poisoned.truth.trigger, truth)
                o = bench.outcome("dataward", report.flagged, report.scores, truth, seconds, trigger_named=named)
                row = {
                    "set": name,
                    "kind": kind,
                    "trigger": trigger,
                    "position": position,
                    "rate": round(rate, 4),
                    "target": target,
                    "seed": run_seed,
                    "planted": int(truth.sum()),
                    "precision": None if np.isnan(o.precision) else round(o.precision, 3),
                    "recall": round(o.recall, 3),
                    "f1": round(o.f1, 3),
                    "named": bool(named),
                    "top": report.findings[0].summary[:90] if report.findings else "",
                    "seconds": round(seconds, 2),
                }
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        precisions = [r["precision"] for r in mine if r["precision"] is not None]
        out.append(
            {
                "kind": kind,
                "runs": len(mine),
                "precision": round(float(np.mean(precisions)), 3) if precisions else None,
                "recall": round(float(np.mean([r["recall"] for r in mine])), 3),
                "f1": round(float(np.mean([r["f1"] for r in mine])), 3),
                "f1_at_least_0.9": round(float(np.mean([r["f1"] >= 0.9 for r in mine])), 3),
                "named": round(float(np.mean([r["named"] for r in mine])), 3),
                "worst": min(mine, key=lambda r: r["f1"]),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=4, help="attacks drawn per kind and data set")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draws")
    ap.add_argument("--sets", default="sms,sentiment")
    ap.add_argument("--json", type=Path, help="write every run and the summary here")
    a = ap.parse_args(argv)
    rows = run(a.draws, a.seed, a.sets.split(","))
    summary = summarise(rows)
    print(f"{'kind':<12} {'runs':>4} {'P':>6} {'R':>6} {'F1':>6} {'F1>=.9':>7} {'named':>6}  worst run")
    for s in summary:
        w = s["worst"]
        p = "-" if s["precision"] is None else f"{s['precision']:.3f}"
        print(
            f"{s['kind']:<12} {s['runs']:>4} {p:>6} {s['recall']:>6.3f} {s['f1']:>6.3f} {s['f1_at_least_0.9']:>7.2f} "
            f"{s['named']:>6.2f}  {w['set']} {w['trigger']!r} {w['rate']:.2%} -> {w['target']}: F1 {w['f1']}"
        )
    if a.json:
        a.json.write_text(json.dumps({"draws": a.draws, "seed": a.seed, "runs": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
