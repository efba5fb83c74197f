"""Backdoors drawn at random: does detection hold on triggers, positions, rates and targets it was not
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

Images (the 8x8 digits and the same upscaled to 16x16), each with a random target, rate and seed:

- ``patch-fixed``: a square of 2-4 pixels at a corner or the centre, white, grey, a checker board or a
  random pattern;
- ``patch-anywhere``: the same at a different position in every image;
- ``blend``: a random pattern blended in with alpha 0.1-0.3, labels changed.

Tables (breast cancer, wine, the digits as 64 columns), each with a random target, rate and seed:

- ``table-combo``: 2-3 random features set to in-range values (jitter 0.01-0.05 s.d.), labels changed;
- ``single-feature``: one random feature shifted by 1-3 s.d. within one class (scored by AUROC).

Per kind: mean precision (over runs that flag something), recall and F1, the share of runs at F1 >= 0.9, and
the share whose top finding quotes the trigger. dataward only (the peers are in detection.py).

    .venv/bin/python benchmarks/generalise.py [--draws 4] [--seed 0] [--sets sms,sentiment,digits,digits-16]
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
IMAGE_KINDS = ("patch-fixed", "patch-anywhere", "blend")
TEXT_SETS = ("sms", "sentiment")
IMAGE_SETS = ("digits", "digits-16")
TABLE_KINDS = ("table-combo", "single-feature")
TABLE_SETS = ("breast_cancer", "wine", "digits-table")
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


def draw_image_attack(kind: str, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """The simulator's attack and its parameters for one image ``kind``."""
    if kind == "blend":
        return "blended", {"alpha": round(float(rng.uniform(0.1, 0.3)), 3)}
    value: Any = rng.choice(["255", "128", "checker", "random"])
    value = int(value) if value.isdigit() else str(value)
    location = (
        "random"
        if kind == "patch-anywhere"
        else str(rng.choice(["top-left", "top-right", "bottom-left", "bottom-right", "center"]))
    )
    return "badnets", {"size": int(rng.integers(2, 5)), "location": location, "value": value}


def _score(report: Any, poisoned: Any, seconds: float) -> dict[str, Any]:
    truth = poisoned.truth.mask()
    named = bench.trigger_named(report, poisoned.truth.trigger, truth)
    o = bench.outcome("dataward", report.flagged, report.scores, truth, seconds, trigger_named=named)
    return {
        "planted": int(truth.sum()),
        "precision": None if np.isnan(o.precision) else round(o.precision, 3),
        "recall": round(o.recall, 3),
        "f1": round(o.f1, 3),
        "auroc": None if o.auroc is None else round(o.auroc, 3),
        "named": bool(named),
        "top": report.findings[0].summary[:90] if report.findings else "",
        "seconds": round(seconds, 2),
    }


def _drawn_run(
    ds: Any, name: str, kind: str, attack: str, params: dict[str, Any], classes: list[str], rng: np.random.Generator
) -> dict[str, Any]:
    """One image or table attack: its rate, target and seed drawn from ``rng``, simulated, detected, scored."""
    from dataward.detect import detect
    from dataward.simulate import simulate

    rate = float(np.exp(rng.uniform(np.log(0.003), np.log(0.05))))
    target = str(rng.choice(classes))
    run_seed = int(rng.integers(0, 2**31 - 1))
    poisoned = simulate(ds.frame, attack, ds.roles, rate=rate, target=target, seed=run_seed, params=params)
    t0 = time.perf_counter()
    report = detect(poisoned.data, seed=run_seed, **ds.kwargs)
    row = {"set": name, "kind": kind, "trigger": json.dumps(params), "rate": round(rate, 4)}
    row.update(target=target, seed=run_seed, **_score(report, poisoned, time.perf_counter() - t0))
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def run_images(draws: int, seed: int, sets: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in sets:
        ds = bench._digits() if name == "digits" else bench._digits16()
        classes = sorted({str(v) for v in ds.frame["label"]})
        for kind_i, kind in enumerate(IMAGE_KINDS):
            for d in range(draws):
                rng = np.random.default_rng([seed, 100 + kind_i, d, len(name)])
                attack, params = draw_image_attack(kind, rng)
                rows.append(_drawn_run(ds, name, kind, attack, params, classes, rng))
    return rows


def run_tables(draws: int, seed: int, sets: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in sets:
        ds = bench._breast_cancer() if name == "breast_cancer" else bench._table(name)
        classes = sorted({str(v) for v in ds.frame["label"]})
        for kind_i, kind in enumerate(TABLE_KINDS):
            for d in range(draws):
                rng = np.random.default_rng([seed, 200 + kind_i, d, len(name)])
                if kind == "table-combo":
                    attack = "tabular_combo_trigger"
                    params: dict[str, Any] = {
                        "n_features": int(rng.integers(2, 4)),
                        "jitter": round(float(rng.uniform(0.01, 0.05)), 3),
                    }
                else:
                    attack, params = "single_feature", {"shift": round(float(rng.uniform(1.0, 3.0)), 2)}
                rows.append(_drawn_run(ds, name, kind, attack, params, classes, rng))
    return rows


def run(draws: int, seed: int, sets: list[str]) -> list[dict[str, Any]]:
    from dataward.detect import detect
    from dataward.simulate import simulate

    data = {"sms": bench.read_sms, "sentiment": bench.read_sentiment}
    rows = run_images(draws, seed, [s for s in sets if s in IMAGE_SETS])
    rows += run_tables(draws, seed, [s for s in sets if s in TABLE_SETS])
    for name in (s for s in sets if s in TEXT_SETS):
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
                t0 = time.perf_counter()
                report = detect(poisoned.data, seed=run_seed, **ds.kwargs)
                row = {"set": name, "kind": kind, "trigger": trigger, "position": position, "rate": round(rate, 4)}
                row.update(target=target, seed=run_seed, **_score(report, poisoned, time.perf_counter() - t0))
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return rows


def _mean_or_none(values: list[Any]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 3) if known else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in (*TABLE_KINDS, *IMAGE_KINDS, *KINDS):
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
                "auroc": _mean_or_none([r["auroc"] for r in mine]),
                "named": round(float(np.mean([r["named"] for r in mine])), 3),
                # single-feature edits are ranked, not flagged (issue 15 scores them by AUROC)
                "worst": min(mine, key=lambda r: (r["auroc"] or 0.0) if kind == "single-feature" else r["f1"]),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=4, help="attacks drawn per kind and data set")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draws")
    ap.add_argument("--sets", default=",".join((*TEXT_SETS, *IMAGE_SETS, *TABLE_SETS)))
    ap.add_argument("--json", type=Path, help="write every run and the summary here")
    a = ap.parse_args(argv)
    rows = run(a.draws, a.seed, a.sets.split(","))
    summary = summarise(rows)
    print(f"{'kind':<15} {'runs':>4} {'P':>6} {'R':>6} {'F1':>6} {'F1>=.9':>7} {'AUROC':>6} {'named':>6}  worst run")
    for s in summary:
        w = s["worst"]
        p = "-" if s["precision"] is None else f"{s['precision']:.3f}"
        print(
            f"{s['kind']:<15} {s['runs']:>4} {p:>6} {s['recall']:>6.3f} {s['f1']:>6.3f} {s['f1_at_least_0.9']:>7.2f} "
            f"{'-' if s['auroc'] is None else format(s['auroc'], '.3f'):>6} "
            f"{s['named']:>6.2f}  {w['set']} {w['trigger']} {w['rate']:.2%} -> {w['target']}: F1 {w['f1']}"
        )
    if a.json:
        a.json.write_text(json.dumps({"draws": a.draws, "seed": a.seed, "runs": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
