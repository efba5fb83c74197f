"""Detection benchmark: dataward's detectors against simulated attacks, side by side with named peers.

Run in the benchmark venv (peers are not runtime dependencies)::

    make bench-env
    .venv-bench-detection/bin/python benchmarks/detection.py            # full: 3 seeds, every data set
    .venv-bench-detection/bin/python benchmarks/detection.py --quick    # 1 seed, fewer sets, a few minutes

Data: scikit-learn's digits (images) and breast_cancer (tabular); the real text sets in ../shared/data (SMS
spam; the three "sentiment labelled sentences" files joined); instruction records built from both
(prompt = an instruction + the text, response = the label with a short templated explanation).

Attacks come from dataward's simulator; the ground truth is what it changed. Peers in the same run:

- cleanlab 2.9 ``find_label_issues`` fed the same out-of-fold probabilities as dataward's label detector
  ("cleanlab-oof"), and ``CleanLearning.find_label_issues`` with its own defaults ("cleanlab-default");
- ART 1.20 ``SpectralSignatureDefense`` and ``ActivationDefence`` over a small torch MLP trained on the
  poisoned data (activations of its last hidden layer, as in both papers); ``expected_pp_poison`` is
  given the true poisoning rate (an oracle advantage for that peer).

Precision is undefined for a run that flags nothing (a calibrated detector may honestly find nothing in
two planted records): such runs are left out of the mean precision, counted in the table ("k/N runs
flagged nothing"), and still count as misses in recall and F1.

Peers need class labels, so they do not apply to instruction records. Output: a Markdown table on stdout
and JSON in benchmarks/out/detection.json. A separate speed/memory check runs ``dataward detect`` (the
CLI, every applicable detector) on 100k text records in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# one BLAS/OpenMP thread: on a loaded 2-core machine, multi-threaded BLAS and torch spin-wait for ages
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dataward.detect import detect  # noqa: E402
from dataward.simulate import Roles, attack_names, simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
OUT = ROOT / "benchmarks" / "out" / "detection.json"

warnings.filterwarnings("ignore")


# ------------------------------------------------------------------------------------------- data sets


@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame
    roles: Roles
    modality: str
    kwargs: dict[str, Any]  # for dataward.detect(...)
    x: np.ndarray[Any, Any] | None = None  # dense features for peers (None: build from the frame)
    labels: str | None = None


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = [np.asarray(img * 255.0 / 16.0, dtype=np.uint8) for img in d.images]
    frame = pd.DataFrame({"image": images, "label": [str(v) for v in d.target]})
    return Dataset("digits", frame, Roles(label="label", image="image"), "image", {"image": "image", "label": "label"})


def _digits16() -> Dataset:
    """A second image set: the digits upscaled to 16x16 (bilinear), so a patch is a smaller share of the
    image and the pixel grid differs from the one the patch search was written on."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    images = [np.asarray(np.clip(zoom(img * 255.0 / 16.0, 2, order=1), 0, 255), dtype=np.uint8) for img in d.images]
    frame = pd.DataFrame({"image": images, "label": [str(v) for v in d.target]})
    return Dataset(
        "digits-16", frame, Roles(label="label", image="image"), "image", {"image": "image", "label": "label"}
    )


def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    frame = d.frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].map({0: "malignant", 1: "benign"})
    cols = [c for c in frame.columns if c != "label"]
    return Dataset(
        "breast_cancer",
        frame,
        Roles(label="label", features=tuple(cols)),
        "tabular",
        {"label": "label", "features": cols},
    )


def _table(name: str) -> Dataset:
    """wine (sklearn) or digits-table (the 8x8 digits as 64 integer columns): more tabular sets."""
    from sklearn import datasets

    if name == "digits-table":
        d = datasets.load_digits()
        frame = pd.DataFrame(d.data, columns=[f"px{i}" for i in range(64)])
        frame["label"] = [str(v) for v in d.target]
    else:
        frame = datasets.load_wine(as_frame=True).frame.rename(columns={"target": "label"})
        frame["label"] = frame["label"].astype(str)
    cols = [c for c in frame.columns if c != "label"]
    return Dataset(
        name, frame, Roles(label="label", features=tuple(cols)), "tabular", {"label": "label", "features": cols}
    )


def read_sms() -> pd.DataFrame:
    rows = []
    for line in (DATA / "sms_spam.tsv").read_text(encoding="utf-8").split("\n")[1:]:
        if line.strip():
            label, text = line.split("\t", 1)
            rows.append((text, label))
    return pd.DataFrame(rows, columns=["text", "label"])


def read_sentiment() -> pd.DataFrame:
    rows = []
    for name in ("amazon_cells", "imdb", "yelp"):
        for line in (DATA / "sentiment" / f"{name}_labelled.txt").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                text, label = line.rsplit("\t", 1)
                rows.append((text.strip(), "positive" if label.strip() == "1" else "negative"))
    return pd.DataFrame(rows, columns=["text", "label"])


def _text(name: str, frame: pd.DataFrame) -> Dataset:
    return Dataset(name, frame, Roles(label="label", text="text"), "text", {"label": "label", "text": "text"})


_EXPLAIN = {
    "positive": ["The writer sounds pleased.", "The tone is favourable.", "It praises the subject."],
    "negative": ["The writer sounds unhappy.", "The tone is critical.", "It complains about the subject."],
    "spam": ["It looks like unsolicited advertising.", "It pushes an offer or a prize."],
    "ham": ["It reads like a personal message.", "It is ordinary conversation."],
}
_ASK = {
    "sentiment": ["Classify the sentiment: {}", "What is the sentiment of this review? {}", "Positive or negative? {}"],
    "sms": ["Is this SMS spam or ham? {}", "Classify the message: {}"],
}


def instructions(name: str, frame: pd.DataFrame, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    asks = _ASK[name]
    prompts = [asks[int(rng.integers(len(asks)))].format(t) for t in frame["text"]]
    responses = [f"{lab}. {_EXPLAIN[lab][int(rng.integers(len(_EXPLAIN[lab])))]}" for lab in frame["label"]]
    out = pd.DataFrame({"prompt": prompts, "response": responses})
    return Dataset(
        f"{name}-instruct",
        out,
        Roles(prompt="prompt", response="response"),
        "instruction",
        {"prompt": "prompt", "response": "response"},
    )


# ----------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    dataset: str
    attack: str  # "clean" for unmodified data
    rate: float = 0.0
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trigger_attack: bool = False

    @property
    def label(self) -> str:
        if self.attack == "clean":
            return "clean"
        trigger = self.params.get("trigger")
        shown = f" '{trigger}'" if trigger else ""
        return f"{self.attack}{shown} {100 * self.rate:g}%"  # 0.3 %, not "0%"


def cases(quick: bool) -> list[Case]:
    out: list[Case] = []
    tabular_like = ["digits", "breast_cancer"] if not quick else ["digits"]
    texts = ["sms", "sentiment"]
    if not quick:
        out.append(Case("digits-16", "clean"))
    for ds in [*tabular_like, *texts]:
        out.append(Case(ds, "clean"))
        for rate in (0.05, 0.10) if not quick else (0.05,):
            out.append(Case(ds, "label-flip", rate))
    for rate in (0.03, 0.01):
        out.append(Case("digits", "badnets", rate, target="0", trigger_attack=True))
    for ds, target in (("sms", "ham"), ("sentiment", "positive")):
        out.append(Case(ds, "text-trigger", 0.01, target=target, params={"trigger": "cf"}, trigger_attack=True))
    out.append(Case("digits", "clean-label", 0.05, target="0"))
    if not quick:
        out.append(Case("breast_cancer", "clean-label", 0.05, target="benign"))
        out.append(
            Case(
                "sentiment",
                "text-trigger",
                0.01,
                target="positive",
                params={"trigger": "I watched this 3D movie"},
                trigger_attack=True,
            )
        )
    # the attack classes of issue 15, each at 0.3 %, 1 % and 3 % on at least three real data sets
    rates = (0.003, 0.01, 0.03) if not quick else (0.01,)
    for rate in rates:
        for ds, target in (("sms", "ham"), ("sentiment", "positive"), ("sms", "spam")):
            for n_words in (2, 3):
                out.append(
                    Case(
                        ds, "text-combo-trigger", rate, target=target, params={"n_words": n_words}, trigger_attack=True
                    )
                )
        for ds in ("breast_cancer", "wine", "digits-table"):
            out.append(Case(ds, "tabular_combo_trigger", rate, trigger_attack=True))
            out.append(Case(ds, "single_feature", rate, trigger_attack=True))
            out.append(Case(ds, "clean-label", rate))
        out.append(
            Case(
                "digits",
                "badnets",
                rate,
                target="0",
                params={"location": "random", "size": 3, "value": "checker"},
                trigger_attack=True,
            )
        )
        out.append(Case("digits", "blended", rate, target="0", params={"alpha": 0.2}, trigger_attack=True))
        out.append(Case("digits", "clean-label", rate, target="0"))
        # the second image set: another pattern (random values), size, target and blend strength
        out.append(
            Case(
                "digits-16",
                "badnets",
                rate,
                target="7",
                params={"location": "random", "size": 3, "value": "random"},
                trigger_attack=True,
            )
        )
        out.append(Case("digits-16", "blended", rate, target="3", params={"alpha": 0.15}, trigger_attack=True))
    for ds in ("sentiment-instruct", "sms-instruct") if not quick else ("sentiment-instruct",):
        out.append(Case(ds, "clean"))
        out.append(Case(ds, "instruction-backdoor", 0.01, trigger_attack=True))
    return out


ATTACK_ALIASES = {
    "label-flip": ("label-flip", "label_flip", "flip"),
    "badnets": ("badnets", "badnets-patch", "patch"),
    "clean-label": ("clean-label", "clean_label", "feature-collision"),
}


def resolve_attack(name: str) -> str | None:
    known = set(attack_names())
    for cand in ATTACK_ALIASES.get(name, (name,)):
        if cand in known:
            return cand
    return None


# --------------------------------------------------------------------------------------------- metrics


@dataclass
class Outcome:
    method: str
    precision: float
    recall: float
    f1: float
    auroc: float | None
    flagged_fraction: float
    seconds: float
    trigger_named: bool | None = None
    note: str = ""


def outcome(method: str, flagged: Any, scores: Any, truth: Any, seconds: float, **kw: Any) -> Outcome:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    flagged = np.asarray(flagged, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if not truth.any():  # clean data: only the flagged fraction (false alarms) means something
        precision = recall = f1 = float("nan")
        area = None
    else:
        p, r, f, _ = precision_recall_fscore_support(truth, flagged, average="binary", zero_division=0.0)
        # a run that flags nothing has no precision (0/0): counting it as 0 would punish a calibrated
        # detector for staying quiet on a handful of planted records; the miss stays in recall and F1, and
        # the table says how many runs flagged nothing
        precision = float(p) if flagged.any() else float("nan")
        recall, f1 = float(r), float(f)
        area = float(roc_auc_score(truth, np.asarray(scores, float))) if not truth.all() else None
    return Outcome(method, precision, recall, f1, area, float(flagged.mean()), seconds, **kw)


def run_knn_baseline(x: Any, y: Any, truth: Any, k: int = 10) -> Outcome:
    """The simple baseline: flag a record when most of its k nearest neighbours carry another label."""
    from sklearn.neighbors import NearestNeighbors

    t0 = time.perf_counter()
    idx = NearestNeighbors(n_neighbors=min(k + 1, len(x))).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    disagree = (y[idx] != y[:, None]).mean(axis=1)
    return outcome("knn-disagreement", disagree > 0.5, disagree, truth, time.perf_counter() - t0)


def trigger_named(report: Any, truth_trigger: Any, truth_mask: np.ndarray[Any, Any]) -> bool:
    """The top finding is a trigger finding naming the injected trigger (text) or covering the poison."""
    if not report.findings:
        return False
    top = report.findings[0]
    words = (truth_trigger or {}).get("words")
    if isinstance(words, list):  # a combination trigger: every word named, in any order
        named_words = {str(w).lower() for f in report.findings[:3] for w in f.evidence.get("trigger_tokens", [])}
        return all(str(w).lower() in named_words for w in words)
    features = (truth_trigger or {}).get("features") or (
        [truth_trigger["feature"]] if (truth_trigger or {}).get("kind") == "single_feature" else None
    )
    if isinstance(features, list):  # tabular: the finding names the planted feature(s)
        named = [f for f in report.findings[:3] if all(c in str(f.evidence) for c in features)]
        return bool(named)
    trig = (truth_trigger or {}).get("text")
    if isinstance(trig, str):  # a text or instruction trigger: the top finding quotes it
        if top.kind != "trigger":
            return False
        named = str(top.evidence.get("trigger", "")).lower()
        want = " ".join(trig.lower().split())
        return want in named or (named in want and len(named) >= 2)
    if top.kind not in ("trigger", "patch", "backdoor"):
        return False
    recs = np.asarray(top.records, dtype=np.int64)
    return bool(len(recs)) and float(truth_mask[recs].mean()) >= 0.5


# ----------------------------------------------------------------------------------------------- peers


def peer_features(ds: Dataset, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    if ds.modality == "image":
        return np.stack([np.asarray(im, dtype=np.float64).ravel() / 255.0 for im in frame["image"]])
    if ds.modality == "tabular":
        from sklearn.preprocessing import StandardScaler

        cols = list(ds.roles.features or ())
        return StandardScaler().fit_transform(frame[cols].to_numpy(dtype=np.float64))
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), max_features=1500, sublinear_tf=True, min_df=2)
    return np.asarray(vec.fit_transform(frame["text"].astype(str)).todense())


def oof_probabilities(ds: Dataset, frame: pd.DataFrame, names: list[str], seed: int) -> tuple[Any, str]:
    """The first-pass class probabilities of dataward's label detector (out-of-fold logistic regression
    averaged with k-NN votes), rebuilt from its helpers, in the column order of ``names``."""
    from dataward.detect._features import model_features, neighbours
    from dataward.detect._labels import _knn_proba, _oof_proba
    from dataward.detect.representation import from_frame

    rep = from_frame(frame, **ds.kwargs)
    assert rep.labels is not None
    k = len(rep.label_names)
    n = rep.n_records
    _, idx = neighbours(rep, 10, seed)
    keep = np.ones(n, dtype=bool)
    proba = 0.5 * (
        _oof_proba(model_features(rep), rep.labels, k, keep, 5, seed, 1.0)
        + _knn_proba(idx, rep.labels, k, keep.astype(float))
    )
    order = [list(map(str, rep.label_names)).index(name) for name in names]
    return proba[:, order], "dataward label_issues first pass"


def run_cleanlab(x: Any, y: Any, probs: Any, truth: Any, seed: int) -> list[Outcome]:
    try:
        from cleanlab.classification import CleanLearning
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError as exc:
        print(f"cleanlab peers skipped: {exc}", file=sys.stderr)
        return []
    from sklearn.linear_model import LogisticRegression

    out = []
    t0 = time.perf_counter()
    issues = find_label_issues(labels=y, pred_probs=probs, n_jobs=1)
    quality = get_label_quality_scores(y, probs)
    out.append(outcome("cleanlab-oof", issues, 1.0 - quality, truth, time.perf_counter() - t0))
    t0 = time.perf_counter()
    cl = CleanLearning(clf=LogisticRegression(max_iter=300), seed=seed, find_label_issues_kwargs={"n_jobs": 1})
    frame = cl.find_label_issues(x, y)
    out.append(
        outcome(
            "cleanlab-default",
            frame["is_label_issue"].to_numpy(),
            1.0 - frame["label_quality"].to_numpy(),
            truth,
            time.perf_counter() - t0,
        )
    )
    return out


def _mlp(x: Any, y: Any, n_classes: int, seed: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # ART reads the *last registered* module as the layer to inspect: register the head first so
            # that the defences see the last hidden layer's activations (as in both papers)
            self.head = torch.nn.Linear(64, n_classes)
            self.body = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU())

        def forward(self, inp: Any) -> Any:
            return self.head(self.body(inp))

    model = Net()
    clf = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        input_shape=(x.shape[1],),
        nb_classes=n_classes,
    )
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    # a plain torch loop: ART's own fit() is ~100x slower on this machine for the same steps
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.asarray(y, dtype=np.int64))
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(20):
        for batch in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            loss_fn(model(xt[batch]), yt[batch]).backward()
            opt.step()
    model.eval()
    return clf, onehot


def run_art(x: Any, y: Any, truth: Any, rate: float, seed: int) -> list[Outcome]:
    try:
        import torch
        from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    except ImportError as exc:
        print(f"ART peers skipped: {exc}", file=sys.stderr)
        return []
    torch.set_num_threads(1)
    n_classes = int(y.max()) + 1
    out = []
    t0 = time.perf_counter()
    clf, onehot = _mlp(x, y, n_classes, seed)
    train_s = time.perf_counter() - t0
    xf = x.astype(np.float32)
    t0 = time.perf_counter()
    spectral = SpectralSignatureDefense(clf, xf, onehot, expected_pp_poison=max(rate, 0.01), batch_size=256)
    _, is_clean = spectral.detect_poison()
    acts = clf.get_activations(xf, layer=len(clf.layer_names) - 1, batch_size=256).reshape(len(xf), -1)
    scores = np.zeros(len(xf))
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if len(idx) > 1:
            scores[idx] = SpectralSignatureDefense.spectral_signature_scores(acts[idx]).ravel()
    out.append(outcome("art-spectral", np.asarray(is_clean) == 0, scores, truth, train_s + time.perf_counter() - t0))
    t0 = time.perf_counter()
    activation = ActivationDefence(clf, xf, onehot)
    _, is_clean = activation.detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA", cluster_analysis="smaller")
    flags = np.asarray(is_clean) == 0
    out.append(outcome("art-activation", flags, flags.astype(float), truth, train_s + time.perf_counter() - t0))
    return out


# ------------------------------------------------------------------------------------------------ runs


def run_case(ds: Dataset, case: Case, seed: int, peers: bool) -> list[Outcome]:
    if case.attack == "clean":
        frame, truth_mask, truth_trigger = ds.frame, np.zeros(len(ds.frame), dtype=bool), None
    else:
        attack = resolve_attack(case.attack)
        if attack is None:
            return [
                Outcome(
                    "dataward",
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    None,
                    float("nan"),
                    0.0,
                    note=f"attack {case.attack!r} not in the simulator",
                )
            ]
        poisoned = simulate(
            ds.frame, attack, ds.roles, rate=case.rate, target=case.target, seed=seed, params=case.params or None
        )
        frame, truth_mask, truth_trigger = poisoned.data, poisoned.truth.mask(), poisoned.truth.trigger
    t0 = time.perf_counter()
    report = detect(frame, seed=seed, **ds.kwargs)
    seconds = time.perf_counter() - t0
    named = trigger_named(report, truth_trigger, truth_mask) if case.trigger_attack else None
    top = report.findings[0].summary[:100] if report.findings else ""
    out = [outcome("dataward", report.flagged, report.scores, truth_mask, seconds, trigger_named=named, note=top)]
    for name, result in report.results.items():  # each detector alone, for the record
        if result.skipped is None:
            out.append(outcome(f"dataward/{name}", result.flagged, result.scores, truth_mask, result.seconds))
    if peers and ds.modality != "instruction":
        label_col = ds.roles.label or "label"
        names = sorted({str(v) for v in frame[label_col]})
        y = np.asarray([names.index(str(v)) for v in frame[label_col]], dtype=np.int64)
        x = peer_features(ds, frame)
        out.append(run_knn_baseline(x, y, truth_mask))
        probs, _ = oof_probabilities(ds, frame, names, seed)
        out += run_cleanlab(x, y, probs, truth_mask, seed)
        out += run_art(x, y, truth_mask, case.rate, seed)
    return out


def _mean(values: list[float]) -> float | None:
    ok = [v for v in values if not np.isnan(v)]
    return float(np.mean(ok)) if ok else None


def mean_outcomes(runs: list[list[Outcome]]) -> list[dict[str, Any]]:
    by: dict[str, list[Outcome]] = {}
    for run in runs:
        for o in run:
            by.setdefault(o.method, []).append(o)
    rows = []
    for method, items in by.items():
        aurocs = [o.auroc for o in items if o.auroc is not None]
        named = [o.trigger_named for o in items if o.trigger_named is not None]
        rows.append(
            {
                "method": method,
                "precision": _mean([o.precision for o in items]),
                "runs_unflagged": sum(1 for o in items if o.flagged_fraction == 0.0),
                "recall": _mean([o.recall for o in items]),
                "f1": _mean([o.f1 for o in items]),
                "auroc": float(np.mean(aurocs)) if aurocs else None,
                "flagged_fraction": float(np.mean([o.flagged_fraction for o in items])),
                "seconds": float(np.mean([o.seconds for o in items])),
                "trigger_named": (sum(named) / len(named)) if named else None,
                "runs": len(items),
                "note": items[0].note,
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------- speed

_SPEED_CHILD = r"""
import json, resource, subprocess, sys, time
path, exe = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
cmd = [exe, "detect", path, "--label", "label", "--text", "text", "--json-out", path + ".json", "--quiet"]
proc = subprocess.run(cmd, capture_output=True, text=True)
seconds = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_CHILDREN)
rss = use.ru_maxrss * 1024
print(json.dumps({"rc": proc.returncode, "seconds": seconds, "cpu_seconds": use.ru_utime + use.ru_stime,
                  "peak_rss_bytes": rss, "stderr": proc.stderr[-500:]}))
"""


def speed_check(n: int, seed: int = 0, single_thread: bool = False) -> dict[str, Any]:
    """``dataward detect`` (CLI, all text detectors) on ``n`` records resampled from SMS with light noise."""
    sms = read_sms()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sms), n)
    texts = []
    for i in pick.tolist():
        words = sms["text"].iloc[i].split(" ")
        if len(words) > 3 and rng.random() < 0.5:
            del words[int(rng.integers(len(words)))]
        if rng.random() < 0.3:
            j = int(rng.integers(len(words)))
            words[j] = words[j].upper()
        if rng.random() < 0.2:
            words.append(str(int(rng.integers(1000))))
        texts.append(" ".join(words))
    frame = pd.DataFrame({"text": texts, "label": sms["label"].to_numpy()[pick]})
    poisoned = simulate(frame, "text-trigger", Roles(label="label", text="text"), rate=0.01, target="ham", seed=seed)
    exe = str(Path(sys.executable).with_name("dataward"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sms100k.jsonl"
        poisoned.data.to_json(path, orient="records", lines=True, force_ascii=False)
        env = dict(os.environ)
        if not single_thread:  # the user's default: let BLAS/OpenMP pick their thread counts
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env.pop(var, None)
        child = subprocess.run(
            [sys.executable, "-c", _SPEED_CHILD, str(path), exe], capture_output=True, text=True, env=env
        )
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        report_path = Path(str(path) + ".json")
        if result["rc"] == 0 and report_path.exists():
            report = json.loads(report_path.read_text(encoding="utf-8"))
            flagged = {r["index"] for r in report["records"] if r["flagged"]}
            truth = set(poisoned.truth.changed)
            result["recall"] = len(flagged & truth) / len(truth)
            result["precision"] = len(flagged & truth) / max(1, len(flagged))
            top = report["findings"][0] if report["findings"] else {}
            result["top_finding"] = top.get("summary", "")
            want = str((poisoned.truth.trigger or {}).get("text", "")).lower()
            quoted = str((top.get("evidence") or {}).get("trigger", "")).lower()
            result["trigger_named"] = bool(want) and top.get("kind") == "trigger" and want in quoted
            result["detector_seconds"] = {d["name"]: d["seconds"] for d in report["detectors"]}
    result["n_records"] = n
    result["single_thread"] = single_thread
    return result


# ------------------------------------------------------------------------------------------------ main


def fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, fewer data sets (a few minutes)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per case (default 3; 1 with --quick)")
    ap.add_argument("--no-peers", action="store_true", help="dataward only")
    ap.add_argument("--no-speed", action="store_true", help="skip the 100k-record speed check")
    ap.add_argument("--speed-records", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", default=None, help="comma-separated data sets to run (default: all)")
    ap.add_argument("--attacks", default=None, help="comma-separated attacks to run (default: all)")
    ap.add_argument("--rates", default=None, help="comma-separated poison rates to run, e.g. 0.01,0.003 (default: all)")
    ap.add_argument(
        "--report", type=Path, nargs="+", default=None, help="print the table of saved JSON runs (merged) and exit"
    )
    args = ap.parse_args(argv)
    if args.report:
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.report]
        merged = {**parts[0], "results": [r for p in parts for r in p["results"]]}
        merged["speed"] = next((p["speed"] for p in parts if p.get("speed")), None)
        print(markdown(merged))
        return 0
    n_seeds = args.seeds or (1 if args.quick else 3)
    seeds = [101 + 17 * i for i in range(n_seeds)]
    if not (DATA / "sms_spam.tsv").exists():
        print(f"needs the shared data sets in {DATA}", file=sys.stderr)
        return 2
    sms, sentiment = read_sms(), read_sentiment()
    makers: dict[str, Callable[[], Dataset]] = {
        "digits": _digits,
        "digits-16": _digits16,
        "breast_cancer": _breast_cancer,
        "wine": lambda: _table("wine"),
        "digits-table": lambda: _table("digits-table"),
        "sms": lambda: _text("sms", sms),
        "sentiment": lambda: _text("sentiment", sentiment),
        "sentiment-instruct": lambda: instructions("sentiment", sentiment),
        "sms-instruct": lambda: instructions("sms", sms),
    }
    datasets: dict[str, Dataset] = {}
    results: list[dict[str, Any]] = []
    from rich.console import Console
    from rich.progress import Progress

    todo = cases(args.quick)
    if args.only:
        todo = [c for c in todo if c.dataset in set(args.only.split(","))]
    if args.attacks:
        todo = [c for c in todo if c.attack in set(args.attacks.split(","))]
    if args.rates:
        todo = [c for c in todo if any(abs(c.rate - float(r)) < 1e-9 for r in args.rates.split(","))]
    # the issue's targets first (1 % and 3 %, then 0.3 %), so that a run cut short has measured those
    todo.sort(key=lambda c: 0 if c.rate in (0.01, 0.03) else 1 if c.rate == 0.003 else 2)
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("benchmark", total=len(todo) * n_seeds)
        for case in todo:
            ds = datasets.setdefault(case.dataset, makers[case.dataset]())
            runs = []
            for seed in seeds:
                bar.update(task, description=f"{case.dataset} {case.label} seed {seed}")
                t0 = time.perf_counter()
                runs.append(run_case(ds, case, seed, peers=not args.no_peers))
                bar.advance(task)
                bar.console.log(f"{case.dataset} {case.label} seed {seed}: {time.perf_counter() - t0:.1f} s")
            results.append(
                {"dataset": case.dataset, "attack": case.label, "n_records": len(ds.frame), "rows": mean_outcomes(runs)}
            )
            _write(args.out, _payload(seeds, args.quick, results, None, done=False))  # partial results survive a stop
    speed = None if args.no_speed else speed_check(args.speed_records)
    payload = _payload(seeds, args.quick, results, speed, done=True)
    _write(args.out, payload)
    print(markdown(payload))
    print(f"\nJSON: {args.out}")
    return 0


def _payload(
    seeds: list[int], quick: bool, results: list[dict[str, Any]], speed: dict[str, Any] | None, *, done: bool
) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seeds": seeds,
        "quick": quick,
        "complete": done,
        "results": results,
        "speed": speed,
    }


def _write(out: Path, payload: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"Seeds: {payload['seeds']}; {payload['date']}; {payload['machine']}",
        "",
        "| data set | attack | method | precision | recall | F1 | AUROC | flagged | time (s) | trigger named top |"
        " F1 ratio (dataward / peer) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in payload["results"]:
        rows = res["rows"]
        ours = next((r for r in rows if r["method"] == "dataward"), None)
        for r in rows:
            ratio = ""
            peer = not r["method"].startswith("dataward")
            if ours is not None and peer and r["f1"] and ours["f1"] is not None and res["attack"] != "clean":
                ratio = f"{ours['f1'] / r['f1']:.2f}x"
            elif ours is not None and peer and res["attack"] != "clean":
                ratio = "peer F1 = 0"
            named = r["trigger_named"]
            precision = fmt(r["precision"])
            if r.get("runs_unflagged") and res["attack"] != "clean":  # precision is the mean over the others
                precision += f" ({r['runs_unflagged']}/{r['runs']} runs flagged nothing)"
            lines.append(
                f"| {res['dataset']} | {res['attack']} | {r['method']} | {precision} | {fmt(r['recall'])} | "
                f"{fmt(r['f1'])} | {fmt(r['auroc'])} | {fmt(r['flagged_fraction'], pct=True)} | {r['seconds']:.2f} | "
                f"{'n/a' if named is None else f'{named:.0%}'} | {ratio} |"
            )
    sp = payload.get("speed")
    if sp:
        lines += [
            "",
            f"Speed: `dataward detect` on {sp['n_records']:,} text records: {sp['seconds']:.1f} s, peak RSS "
            f"{sp['peak_rss_bytes'] / 2**30:.2f} GiB (exit {sp['rc']}); trigger recall {fmt(sp.get('recall'))}, "
            f"precision {fmt(sp.get('precision'))}, named top: {sp.get('trigger_named')}",
            "Per detector (s): " + ", ".join(f"{k} {v:.1f}" for k, v in sp.get("detector_seconds", {}).items()),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
