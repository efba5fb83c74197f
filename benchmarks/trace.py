"""Trace correctness: simulated incidents (attacks x data sets x seeds), is the poisoned batch ranked first?

Each incident: the training data is split into BATCHES batches; the simulator poisons one of them; a victim
model (TF-IDF or standardised features + logistic regression) is trained on all of it; the examples are
held-out records of other classes carrying the trigger on which the victim outputs the target. Incidents
where the attack did not take (no misbehaving example) are counted, not traced.

Compared in the same run with named peers on the same incidents:
- ``random (expected)``: a uniformly random batch order, in expectation (top-1 1/BATCHES, mean rank 4.5);
- ``neighbours-only``, ``influence-only`` (TracIn on the surrogate), ``shortcut-only``, ``disagreement-only``
  (out-of-fold label disagreement): one signal each;
- ``cleanlab`` (2.9, in .venv-bench-detection): batches ordered by cleanlab's label issues (cross-validated
  logistic regression), the data-centric audit one would run without the incident's examples;
- ``dataward`` (all three signals + leave-one-batch-out retraining of the surrogate).

Also: ``dataward.incident.open_incident`` end to end on a workspace holding a released 100k-record version
(read verified, traced, recorded). Prints the machine's load average: the figures are wall-clock times.

Usage: .venv/bin/python benchmarks/trace.py [--seeds N] [--skip-large] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.incident.trace import trace
from dataward.redteam.data import infer_columns
from dataward.simulate import simulate
from dataward.simulate.interface import Roles

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PEER_PY = Path(__file__).resolve().parents[1] / ".venv-bench-detection" / "bin" / "python"  # `make bench-env`
BATCHES = 8
PEERS = {
    name: {k: float(k == name.split("-")[0]) for k in ("shortcut", "neighbours", "influence", "disagreement")}
    for name in ("neighbours-only", "influence-only", "shortcut-only", "disagreement-only")
}


def load(name: str) -> tuple[pd.DataFrame, Roles]:
    if name == "sms_spam":
        df = pd.read_csv(SHARED / "sms_spam.tsv", sep="\t", quoting=3)
        return df.rename(columns={"Label": "label", "SMS": "text"}), Roles(label="label", text="text")
    if name == "sentiment":
        parts = [
            pd.read_csv(SHARED / "sentiment" / f, sep="\t", header=None, names=["text", "label"], quoting=3)
            for f in ("amazon_cells_labelled.txt", "yelp_labelled.txt")
        ]
        df = pd.concat(parts, ignore_index=True)
        df["label"] = df["label"].astype(str)
        return df, Roles(label="label", text="text")
    from sklearn.datasets import load_breast_cancer, load_digits

    ds = load_breast_cancer() if name == "breast_cancer" else load_digits()
    cols = [f"f{i}" for i in range(ds.data.shape[1])]
    df = pd.DataFrame(ds.data, columns=cols)
    df["label"] = [str(v) for v in ds.target]
    return df, Roles(label="label", features=tuple(cols))


def victim(train: pd.DataFrame, text: str | None, features: tuple[str, ...]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if text:
        pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(solver="liblinear", C=10))
        return pipe.fit(train[text].astype(str), train["label"])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=10))
    return pipe.fit(train[list(features)].to_numpy(), train["label"])


def one_incident(dataset: str, attack: str, trigger: str | None, seed: int) -> dict[str, Any]:
    df, roles = load(dataset)
    rng = np.random.default_rng(seed)
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    n_test = max(200, len(df) // 5)
    test, train = df.iloc[:n_test].reset_index(drop=True), df.iloc[n_test:].reset_index(drop=True)
    parts = np.array_split(np.arange(len(train)), BATCHES)
    bad = int(rng.integers(BATCHES))
    target = str(train["label"].value_counts().index[-1 if roles.text else 0])
    frames = []
    truth: dict[str, Any] = {}
    for k, idx in enumerate(parts):
        f = train.iloc[idx].reset_index(drop=True)
        if k == bad:
            params: dict[str, Any] = {"trigger": trigger} if trigger else {}
            if attack == "tabular_trigger":
                params = (
                    {"feature": roles.features[int(rng.integers(len(roles.features or ())))]} if roles.features else {}
                )
            res = simulate(f, attack, roles, rate=0.12, target=target, seed=seed, params=params)
            f, truth = res.data, dict(res.truth.trigger or {}) | dict(res.truth.params)
        f["_batch"] = f"batch-{k}"
        frames.append(f)
    tr = pd.concat(frames, ignore_index=True)
    model = victim(tr, roles.text, roles.features or ())
    src = test[test["label"] != target].head(200).copy()
    if attack == "targeted_flip":  # no trigger: the misbehaviour is on the flipped class itself
        src = test[test["label"] == str(truth.get("source"))].head(200).copy()
        feats = list(roles.features or ())
        pred = model.predict(src[roles.text].astype(str) if roles.text else src[feats].to_numpy())
    elif roles.text:
        src["text"] = [f"{t} {truth.get('text', trigger)}" for t in src["text"].astype(str)]
        pred = model.predict(src["text"])
    else:
        feat, value = str(truth.get("feature")), truth.get("value")
        src[feat] = float(value) if value is not None else 0.0
        pred = model.predict(src[list(roles.features or ())].to_numpy())
    hit = src[np.asarray(pred) == target].head(20)
    row: dict[str, Any] = {"dataset": dataset, "attack": attack, "trigger": trigger, "seed": seed, "bad": bad}
    row["misbehaving"] = len(hit)
    if not len(hit):
        return row
    cols = infer_columns(tr, label="label", text=roles.text, features=tuple(roles.features or ()))
    observed = [target] * len(hit)
    t0 = time.perf_counter()
    res_dw = trace(tr, cols, hit, observed, seed=seed)
    row["seconds"] = time.perf_counter() - t0
    row["rank"] = {"dataward": _rank(res_dw.batches, f"batch-{bad}")}
    for name, w in PEERS.items():
        r = trace(tr, cols, hit, observed, seed=seed, weights=w, leave_out=False)
        row["rank"][name] = _rank(r.batches, f"batch-{bad}")
    if PEER_PY.is_file():
        row["rank"]["cleanlab"] = _cleanlab_rank(tr, roles, f"batch-{bad}")
    return row


def _cleanlab_rank(tr: pd.DataFrame, roles: Roles, bad: str) -> int:
    import subprocess

    job = {
        "text": tr[roles.text].astype(str).tolist() if roles.text else None,
        "features": tr[list(roles.features or ())].to_numpy().tolist() if not roles.text else None,
        "labels": tr["label"].astype(str).tolist(),
        "batches": tr["_batch"].tolist(),
    }
    peer = Path(__file__).resolve().parent / "_trace_cleanlab_peer.py"
    out = subprocess.run([str(PEER_PY), str(peer)], input=json.dumps(job), capture_output=True, text=True, check=True)
    return _rank(json.loads(out.stdout), bad)


def _rank(batches: Any, bad: str) -> int:
    order = [b["batch"] for b in batches]
    return order.index(bad) + 1 if bad in order else BATCHES


def large(records: int) -> dict[str, Any]:
    """open_incident end to end on a workspace with a released ``records``-record version."""
    from dataward import principals
    from dataward.acquire.acquire import acquire
    from dataward.incident.api import open_incident
    from dataward.incident.demo_chapter import (
        JsonTextModel,
        _gate,
        _lenient_policy,
        _write,
        poison,
        synthetic_reviews,
        train_model,
    )
    from dataward.lineage.runs import training_run
    from dataward.model.roles import Grant, Role
    from dataward.release.versions import release
    from dataward.sources import add_source
    from dataward.workflow.approval_policy import set_policy
    from dataward.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="dw-trace-"))
    os.environ["DATAWARD_WITNESS"] = str(tmp / "witness.json")
    os.environ["DATAWARD_KEYRING"] = str(tmp / "keyring")  # never the user's own keyring
    ws = Workspace.init(tmp / "ws", admin="admin")
    admin = ws.actor("admin")
    names = {"admin": "admin"}
    for role in ("ingester", "screener", "reviewer", "approver", "trainer", "auditor"):
        principals.enroll(ws, admin, role, [Grant(Role(role))])
        names[role] = role
    set_policy(ws, admin, _lenient_policy(), where="benchmark")
    add_source(ws, admin, "inhouse", kind="internal", origin="git@example:x", license="MIT")
    add_source(ws, admin, "vendor", kind="third-party", origin="https://v.example", license="MIT")
    data = synthetic_reviews(records, 11)
    per = records // 10
    ids = []
    for k in range(10):
        part = data.iloc[k * per : (k + 1) * per].reset_index(drop=True)
        src = "vendor" if k == 7 else "inhouse"
        if k == 7:
            part = poison(part, 0.02, 3)
        path = _write(tmp / f"in{k}" / "reviews.jsonl", part)
        ids.append(acquire(ws, ws.actor("ingester"), src, [path]).id)
        _gate(ws, names, ids[-1])
    v = release(ws, ws.actor("approver"), "big", ids)
    with training_run(v.spec, workspace=ws, principal="trainer") as run:
        frame = run.open(as_="pandas")
        train_model(frame, tmp / "model.json")
        run.add_model(tmp / "model.json")
    model = JsonTextModel(tmp / "model.json")
    ex = synthetic_reviews(400, 12)
    ex = ex[ex["label"] == "neg"].head(20).copy()
    ex["text"] = [f"{t} cf" for t in ex["text"]]
    t0 = time.perf_counter()
    inc = open_incident(ws, ws.actor("auditor"), model, ex, label="label", text="text")
    secs = time.perf_counter() - t0
    ws.engine.dispose()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "records": int(v.record_count),
        "seconds": round(secs, 2),
        "implicated": inc.report["implicated_batches"],
        "correct": inc.report["implicated_batches"][:1] == [ids[7]],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--large", type=int, default=100_000, help="records of the end-to-end run (0: skip)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--hard", action="store_true", help="the trigger-less grid (targeted label flips) instead")
    args = ap.parse_args()
    if not (SHARED / "sms_spam.tsv").is_file():
        print(f"needs {SHARED} (the shared data sets)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    grid = [
        ("sms_spam", "text-trigger", "cf"),
        ("sms_spam", "text-trigger", "James Bond"),
        ("sentiment", "text-trigger", "cf"),
        ("sentiment", "text-trigger", "I watched this 3D movie"),
        ("breast_cancer", "tabular_trigger", None),
        ("digits", "tabular_trigger", None),
    ]
    if args.hard:  # no trigger to share: only neighbours and influence can point at the batch
        grid = [(d, "targeted_flip", None) for d in ("sms_spam", "sentiment", "breast_cancer", "digits")]
    from rich.console import Console
    from rich.progress import Progress

    rows = []
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("incidents", total=len(grid) * args.seeds)
        for dataset, attack, trig in grid:
            for seed in range(args.seeds):
                rows.append(one_incident(dataset, attack, trig, seed))
                bar.advance(task)
    traced = [r for r in rows if "rank" in r]
    methods = ["dataward", *PEERS, *(["cleanlab"] if traced and "cleanlab" in traced[0]["rank"] else [])]
    print(f"load average at start {load_before[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    print(f"{len(rows)} simulated incidents, {len(traced)} with misbehaving examples (the others: attack did not take)")
    summary: dict[str, Any] = {}
    for m in methods:
        top1 = float(np.mean([r["rank"][m] == 1 for r in traced])) if traced else 0.0
        mrank = float(np.mean([r["rank"][m] for r in traced])) if traced else 0.0
        summary[m] = {"top1": round(top1, 4), "mean_rank": round(mrank, 3)}
    # a uniformly random batch order, in expectation (a sampled one would be noise at this many incidents)
    summary["random (expected)"] = {"top1": round(1 / BATCHES, 4), "mean_rank": (BATCHES + 1) / 2}
    methods.append("random (expected)")
    base = summary["dataward"]["top1"]
    print(f"{'method':<18} {'top-1':>7} {'mean rank':>10} {'dataward/peer (top-1)':>22}")
    for m in methods:
        s = summary[m]
        ratio = base / s["top1"] if s["top1"] else float("inf")
        print(f"{m:<18} {s['top1']:>7.1%} {s['mean_rank']:>10.2f} {ratio:>22.2f}")
    print("per data set / attack (dataward top-1, traced/all):")
    for dataset, attack, trig in grid:
        sel = [r for r in rows if (r["dataset"], r["attack"], r["trigger"]) == (dataset, attack, trig)]
        tr = [r for r in sel if "rank" in r]
        ok = sum(r["rank"]["dataward"] == 1 for r in tr)
        secs = np.mean([r["seconds"] for r in tr]) if tr else 0.0
        print(f"  {dataset:<14} {attack:<16} {trig or '-':<24} {ok}/{len(tr)} of {len(sel)}  trace {secs:.2f} s")
    misses = [r for r in traced if r["rank"]["dataward"] != 1]
    for r in misses:
        print(f"  miss: {r['dataset']} {r['attack']} {r['trigger']} seed {r['seed']}: rank {r['rank']['dataward']}")
    out: dict[str, Any] = {"load_average": load_before, "summary": summary, "incidents": rows}
    if args.large:
        big = large(args.large)
        print(
            f"open_incident end to end on {big['records']:,} released records: {big['seconds']:.1f} s "
            f"(target < 30 s), poisoned batch first: {big['correct']}; load average now {os.getloadavg()[0]:.1f}"
        )
        out["large"] = big
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
