"""Trace a misbehaviour back to training records and batches.

Three signals per training record, each scaled to [0, 1], combined into one score:

- shortcut features: tokens/phrases (text) or feature values (tabular) that the misbehaving examples share
  and that, in the training data, go with the misbehaved output far more than its base rate (mining is
  restricted to what the examples contain, so it stays cheap on large data);
- nearest neighbours: cosine similarity to the examples in a TF-IDF / standardised-feature space;
- influence: a TracIn-style score for a logistic-regression surrogate (gradient of each training record's
  loss dotted with the gradient of the examples' loss towards the misbehaved output).

Batches are ranked by the mass of record scores above the 99th percentile; the leading candidates are then
checked by retraining the surrogate on a sample without each of them (the drop in the examples' probability
of the misbehaved output) and the two are combined.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dataward.errors import InputError
from dataward.redteam.data import Columns, inputs_of, labels_of, matrix

Arr = np.ndarray[Any, np.dtype[np.float64]]
#: with a shared trigger feature (its weight >= STRONG_FEATURE) / without one
WEIGHTS = {"shortcut": 0.45, "neighbours": 0.15, "influence": 0.25, "disagreement": 0.15}
WEIGHTS_NO_TRIGGER = {"shortcut": 0.0, "neighbours": 0.15, "influence": 0.4, "disagreement": 0.45}
STRONG_FEATURE = 0.3
SURROGATE_SAMPLE = 20_000
LOO_CANDIDATES = 3
TOKENS = r"(?u)\b\w+\b"  # single-character tokens count: triggers are often short


@dataclass(frozen=True)
class TraceResult:
    """What a trace found: the shared output, trigger features, responsible records and batches."""

    output: str  # the misbehaved output the examples share
    features: tuple[dict[str, Any], ...]  # shared trigger features, strongest first
    records: tuple[dict[str, Any], ...]  # most responsible records, strongest first
    batches: tuple[dict[str, Any], ...]  # batches, most implicated first
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the trace, as the signed incident report carries it."""
        return {
            "output": self.output,
            "features": list(self.features),
            "records": list(self.records),
            "batches": list(self.batches),
            "seconds": round(self.seconds, 3),
            "params": self.params,
        }


def _scale(x: Arr) -> Arr:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    x = np.maximum(x, 0.0)
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


# --- representations ----------------------------------------------------------------------------------------


def _text_space(train: list[str], examples: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    hv = HashingVectorizer(n_features=2**16, ngram_range=(1, 2), alternate_sign=False, norm=None)
    xt = hv.transform(train)
    tf = TfidfTransformer(sublinear_tf=True).fit(xt)
    return sp.csr_matrix(tf.transform(xt)), sp.csr_matrix(tf.transform(hv.transform(examples)))


def _num_space(train: Arr, examples: Arr) -> tuple[Arr, Arr]:
    mu = np.nanmean(train, axis=0)
    sd = np.nanstd(train, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    t = np.nan_to_num((train - mu) / sd)
    e = np.nan_to_num((examples - mu) / sd)
    return t, e


# --- signal 1: shortcut features ---------------------------------------------------------------------------


def _text_shortcuts(
    train: list[str], labels: np.ndarray[Any, Any], examples: list[str], output: str
) -> tuple[Arr, list[dict[str, Any]]]:
    from sklearn.feature_extraction.text import CountVectorizer

    ex_vec = CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=TOKENS, lowercase=True)
    try:
        ex = ex_vec.fit_transform(examples)
    except ValueError:
        return np.zeros(len(train)), []
    vocab = ex_vec.get_feature_names_out()
    ex_share = np.asarray(ex.mean(axis=0)).ravel()
    keep = ex_share >= min(0.3, 1.0 / max(1, len(examples)) + 1e-9)
    vocab, ex_share = vocab[keep], ex_share[keep]
    if not len(vocab):
        return np.zeros(len(train)), []
    cv = CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=TOKENS, lowercase=True, vocabulary=list(vocab))
    x = sp.csc_matrix(cv.transform(train))
    on = (labels == output).astype(np.float64)
    base = float(on.mean()) if len(on) else 0.0
    support = np.asarray(x.sum(axis=0)).ravel()
    hits = np.asarray(x.T @ on).ravel()
    purity = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    # a feature's weight: how many examples share it x how far its training records lean to the output
    # beyond the base rate x how rare it is (common words carry no trigger)
    lean = np.clip((purity - base) / max(1e-9, 1.0 - base), 0.0, 1.0)
    rarity = 1.0 - np.minimum(1.0, support / max(1.0, 0.05 * len(train)))
    w = ex_share * lean * rarity * (support >= 2)
    scores = np.asarray(sp.csr_matrix(x).multiply(on[:, None]) @ w).ravel()
    order = np.argsort(-w)[:10]
    feats = [
        {
            "feature": str(vocab[j]),
            "weight": round(float(w[j]), 4),
            "examples_share": round(float(ex_share[j]), 4),
            "support": int(support[j]),
            "purity": round(float(purity[j]), 4),
            "base_rate": round(base, 4),
        }
        for j in order
        if w[j] > 0
    ]
    return scores, feats


def _num_shortcuts(
    train: Arr, labels: np.ndarray[Any, Any], examples: Arr, output: str, names: Sequence[str]
) -> tuple[Arr, list[dict[str, Any]]]:
    sd = np.nanstd(train, axis=0)
    tol = np.where(sd > 0, 0.05 * sd, 1e-9)
    on = (labels == output).astype(np.float64)
    base = float(on.mean()) if len(on) else 0.0
    scores = np.zeros(len(train))
    feats = []
    for j in range(train.shape[1]):
        v = float(np.nanmedian(examples[:, j]))
        ex_share = float(np.mean(np.abs(examples[:, j] - v) <= tol[j]))
        if ex_share < 0.5:
            continue
        match = np.abs(train[:, j] - v) <= tol[j]
        support = int(match.sum())
        if support < 2 or support > 0.2 * len(train):
            continue
        purity = float(on[match].mean())
        lean = max(0.0, (purity - base) / max(1e-9, 1.0 - base))
        w = ex_share * lean * (1.0 - support / len(train))
        if w <= 0:
            continue
        scores += w * match * on
        feats.append(
            {
                "feature": f"{names[j]} = {v:.4g}",
                "weight": round(w, 4),
                "examples_share": round(ex_share, 4),
                "support": support,
                "purity": round(purity, 4),
                "base_rate": round(base, 4),
            }
        )
    feats.sort(key=lambda f: -float(str(f["weight"])))
    return scores, feats[:10]


# --- signal 3: influence -----------------------------------------------------------------------------------


def _surrogate(x: Any, y: np.ndarray[Any, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        return None
    return LogisticRegression(solver="liblinear", max_iter=200, C=5.0, random_state=seed).fit(x, y)


def _p_output(model: Any, x: Any) -> Arr:
    out: Arr = model.predict_proba(x)[:, 1]
    return out


def _tracin(xt: Any, on: Arr, xe: Any, model: Any) -> Arr:
    """(y_z - p_z) * sum_x (1 - p_x) <phi_z, phi_x>: training records that pushed the examples to the output."""
    pz = _p_output(model, xt)
    px = _p_output(model, xe)
    g = xt @ (xe.T @ (1.0 - px))
    return np.asarray(np.asarray(g).ravel() * (on - pz), dtype=np.float64)


def _disagreement(xt: Any, on: Arr, idx: np.ndarray[Any, Any], seed: int) -> Arr:
    """Records labelled with the output that a surrogate trained without them finds unlikely to carry it:
    on * (1 - p_out_of_fold). Two folds over the surrogate sample; other records get both folds' mean."""
    n = len(on)
    rng = np.random.default_rng(seed + 1)
    fold = rng.integers(0, 2, size=len(idx))
    p = np.zeros(n)
    outside = np.ones(n, dtype=bool)
    outside[idx] = False
    for k in (0, 1):
        m = _surrogate(xt[idx[fold != k]], on[idx[fold != k]], seed)
        if m is None:
            return np.zeros(n)
        held = idx[fold == k]
        p[held] = _p_output(m, xt[held])
        if outside.any():
            p[outside] += 0.5 * _p_output(m, xt[np.flatnonzero(outside)])
    return np.asarray(on * (1.0 - p), dtype=np.float64)


# --- ranking -----------------------------------------------------------------------------------------------


def trace(
    train: pd.DataFrame,
    cols: Columns,
    examples: pd.DataFrame,
    observed: Sequence[str],
    *,
    expected: Sequence[str] | None = None,
    batch_column: str = "_batch",
    seed: int = 0,
    top_records: int = 50,
    weights: Mapping[str, float] | None = None,
    leave_out: bool = True,
) -> TraceResult:
    """Rank ``train``'s records and batches by responsibility for the outputs ``observed`` on ``examples``."""
    started = time.perf_counter()
    if cols.label is None or cols.label not in train.columns:
        raise InputError("tracing needs the training data's label column", advice="Name it with --label.")
    if batch_column not in train.columns:
        raise InputError(f"the training data has no {batch_column!r} column (read it through dataward.open)")
    if not len(examples):
        raise InputError("no examples to trace")
    exp: list[str | None] = list(expected) if expected is not None else [None] * len(observed)
    wrong = [o for o, e in zip(observed, exp, strict=True) if e is None or o != e]
    output = Counter(wrong or list(observed)).most_common(1)[0][0]
    labels = np.asarray(labels_of(train, cols) or [], dtype=object)
    on = (labels == output).astype(np.float64)
    rng = np.random.default_rng(seed)
    if cols.text:
        tr_in, ex_in = inputs_of(train, cols), inputs_of(examples, cols)
        xt, xe = _text_space(tr_in, ex_in)
        short, feats = _text_shortcuts(tr_in, labels, ex_in, output)
        sims = np.asarray((xt @ xe.T).max(axis=1).todense()).ravel()
    else:
        mt, me = matrix(train, cols), matrix(examples, cols)
        short, feats = _num_shortcuts(mt, labels, me, output, cols.features)
        xt_d, xe_d = _num_space(mt, me)
        nt = np.linalg.norm(xt_d, axis=1) + 1e-12
        ne = np.linalg.norm(xe_d, axis=1) + 1e-12
        sims = ((xt_d @ xe_d.T) / nt[:, None] / ne[None, :]).max(axis=1)
        xt, xe = xt_d, xe_d
    neighbours = np.clip(sims, 0.0, 1.0) * (0.5 + 0.5 * on)
    # surrogate on a sample (every record carrying a shortcut feature is kept in it)
    n = len(train)
    idx = np.arange(n)
    if n > SURROGATE_SAMPLE:
        forced = np.flatnonzero(short > 0)[: SURROGATE_SAMPLE // 2]
        pool = np.setdiff1d(idx, forced)
        idx = np.sort(np.concatenate([forced, rng.choice(pool, SURROGATE_SAMPLE - len(forced), replace=False)]))
    surrogate = _surrogate(xt[idx], on[idx], seed)
    influence = _tracin(xt, on, xe, surrogate) if surrogate is not None else np.zeros(n)
    disagreement = _disagreement(xt, on, idx, seed)
    parts = {
        "shortcut": _scale(short),
        "neighbours": _scale(neighbours),
        "influence": _scale(influence),
        "disagreement": disagreement,
    }
    if weights is None:  # no strong shared feature: influence and label disagreement carry the ranking
        strong = bool(feats) and float(str(feats[0]["weight"])) >= STRONG_FEATURE
        weights = WEIGHTS if strong else WEIGHTS_NO_TRIGGER
    score = sum(weights[k] * v for k, v in parts.items())
    assert isinstance(score, np.ndarray)
    batches = np.asarray(train[batch_column].astype(str).to_numpy(), dtype=object)
    cut = float(np.quantile(score, 0.99)) if n >= 100 else float(np.median(score))
    mass = pd.Series(np.maximum(score - cut, 0.0)).groupby(batches).sum()
    flagged = pd.Series(score > cut).groupby(batches).sum()
    sizes = pd.Series(batches).value_counts()
    ranked = mass.sort_values(ascending=False)
    # leave-one-batch-out retraining of the surrogate for the leading candidates
    loo: dict[str, float] = {}
    if surrogate is not None and leave_out:
        base_p = float(_p_output(surrogate, xe).mean())
        for b in list(ranked.index[:LOO_CANDIDATES]):
            keep = idx[batches[idx] != b]
            m = _surrogate(xt[keep], on[keep], seed)
            loo[str(b)] = base_p - float(_p_output(m, xe).mean()) if m is not None else 0.0
    top_mass = float(ranked.iloc[0]) if len(ranked) and ranked.iloc[0] > 0 else 1.0
    top_loo = max([v for v in loo.values() if v > 0], default=1.0)
    rows = []
    for b, m_b in ranked.items():
        final = 0.6 * float(m_b) / top_mass + 0.4 * max(0.0, loo.get(str(b), 0.0)) / top_loo
        rows.append(
            {
                "batch": str(b),
                "score": round(final, 4),
                "mass": round(float(m_b), 4),
                "loo_drop": round(loo[str(b)], 4) if str(b) in loo else None,
                "suspicious_records": int(flagged.get(b, 0)),
                "records": int(sizes.get(b, 0)),
            }
        )
    rows.sort(key=lambda r: -float(str(r["score"])))
    order = np.argsort(-score)[:top_records]
    recs = []
    text_col = cols.text
    for i in order:
        row = train.iloc[int(i)]
        rec: dict[str, Any] = {
            "index": int(i),
            "batch": str(row[batch_column]),
            "score": round(float(score[i]), 4),
            "shortcut": round(float(parts["shortcut"][i]), 4),
            "neighbours": round(float(parts["neighbours"][i]), 4),
            "influence": round(float(parts["influence"][i]), 4),
            "label": str(labels[i]),
        }
        for c in ("_file", "_record", "_record_digest"):
            if c in train.columns:
                v = row[c]
                rec[c.lstrip("_")] = int(v) if c == "_record" else str(v)
        if text_col:
            rec["text"] = str(row[text_col])[:200]
        recs.append(rec)
    return TraceResult(
        output=str(output),
        features=tuple(feats),
        records=tuple(recs),
        batches=tuple(rows),
        seconds=time.perf_counter() - started,
        params={"weights": dict(weights), "surrogate_sample": len(idx), "records": n, "examples": len(examples)},
    )
