"""Shortcut mining for tabular data: feature values (and conjunctions of them) rare overall yet tied to one label.

Each column is discretised: categorical columns by value (the 31 most frequent; the rest share a code);
numeric columns by 16 quantile bins, except that an exact value repeated at least ``min_support`` times in
an otherwise continuous column gets its own code (a planted trigger value usually is one exact value).
Tokens whose carriers are >= 80 % one label (binomial screen at 5 %, uncorrected) come from
:func:`enriched_tokens`; tokens of one label whose carriers overlap (Jaccard >= 0.5) merge into a
conjunction; the carriers of a conjunction match all of its tokens. A conjunction is a trigger when, with
its columns removed, at least half of its carriers labelled with its label look like other classes
(:func:`masked_disagreement`), and the joint evidence (purity tail x disagreement tail against the natural
disagreement rate, :func:`trigger_p`) survives Bonferroni correction over all tokens at ``alpha`` (1 %).
Testing both together finds a trigger that points at a majority class (purity alone is weak there).
The masked tail is also taken against label noise, and the larger p-value is used (both nulls must fall,
ADR 0081): random flips land where their source class lives, so a value shared by records of class ``s``
collects the flips from ``s``, whose content reads as ``s``; under that null each carrier reading as ``s``
carries the label with the share it has among records outside reading as ``s`` (the helper of
:mod:`dataward.detect._interactions`). That tail stands alone: under noise, purity counts the same flips.
Both tests also read the records nearest the candidate's values in its own columns (rank distance; three
per carrier, 30-300 records, ADR 0086): the purity tail is taken against the larger of the label's prior and
its share among them, and the natural disagreement against the larger of the class's rate and that of the
label's records among them (at least 5). A value of a column that separates two classes selects records at
their boundary, whose other columns are ambiguous too (iris: petal width 1.8, where petal length follows
it); a planted value carries the label far more often than the values around it.
The finding names the columns and values.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from dataward.detect._interactions import _noise_tail
from dataward.detect._shortcuts import (
    _MAX_REFS,
    ShortcutMiner,
    _masked_majority,
    _sample,
    base_disagreement,
    enriched_tokens,
    masked_disagreement,
    trigger_p,
)
from dataward.detect.interface import DetectorResult, Finding, IntArray, Modality, Representation
from dataward.detect.registry import register

_BINS = 16
_LEVELS = 32
# the records nearest a candidate's values that measure its local nulls: three per carrier, 30-300 of them;
# the label's own among them measure the natural disagreement when there are at least _LOCAL_LABEL_MIN of them
_LOCAL_MIN = 30
_LOCAL_MAX = 300
_LOCAL_LABEL_MIN = 5


def _discretise(values: Sequence[Any], min_support: int) -> tuple[IntArray, dict[int, str]]:
    """Codes in [0, 32) for one column, and a description of each code."""
    series = pd.Series(list(values))
    numeric = pd.to_numeric(series, errors="coerce")
    n = len(series)
    codes = np.zeros(n, dtype=np.int64)
    names: dict[int, str] = {}
    if numeric.notna().mean() >= 0.95:
        vals = numeric.to_numpy(dtype=np.float64)
        finite = np.isfinite(vals)
        distinct = np.unique(vals[finite])
        if distinct.size <= _LEVELS - 1:
            for j, v in enumerate(distinct):
                codes[vals == v] = j
                names[j] = f"= {v:g}"
            codes[~finite] = _LEVELS - 1
            names[_LEVELS - 1] = "missing"
            return codes, names
        edges = np.unique(np.quantile(vals[finite], np.linspace(0, 1, _BINS + 1)[1:-1]))
        codes[finite] = np.searchsorted(edges, vals[finite], side="right")
        lo = np.concatenate([[-np.inf], edges])
        hi = np.concatenate([edges, [np.inf]])
        for j in range(edges.size + 1):
            names[j] = f"in [{lo[j]:g}, {hi[j]:g})"
        counts = Counter(vals[finite].tolist())
        repeated = [v for v, c in counts.most_common(_LEVELS - _BINS - 1) if c >= min_support]
        if distinct.size > 0.5 * finite.sum() or distinct.size > 64:
            for j, v in enumerate(repeated):
                code = _BINS + j
                codes[vals == v] = code
                names[code] = f"= {v:g}"
        codes[~finite] = _LEVELS - 1
        names[_LEVELS - 1] = "missing"
        return codes, names
    strs = ["<missing>" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in series]
    top = [v for v, _ in Counter(strs).most_common(_LEVELS - 1)]
    index = {v: j for j, v in enumerate(top)}
    for i, v in enumerate(strs):
        codes[i] = index.get(v, _LEVELS - 1)
    names = {j: f"= {v!r}" for v, j in index.items()}
    names[_LEVELS - 1] = "= <rare value>"
    return codes, names


def _trend_share(
    offsets: np.ndarray[Any, Any], near: IntArray, carriers: IntArray, is_label: np.ndarray[Any, Any]
) -> float:
    """The label's share the neighbours' trend predicts at the carriers' values: a logistic fit of "has the
    label" on the neighbours' rank offsets (one per column), averaged over the carriers' offsets, or the
    share of the neighbours on one side of them (below or above, per column, at least ``_LOCAL_MIN // 2``),
    whichever is larger. A share that climbs through the carriers' values (a class boundary) predicts what
    the values on its pure side carry without a trigger; flat neighbours predict their own share. 0 when
    the offsets are not finite (the pooled share is then the null)."""
    x, target = offsets[near], is_label[near]
    at = offsets[carriers]
    if not (np.isfinite(x).all() and np.isfinite(at).all()):
        return 0.0
    # each side of the carriers' values alone, per column: a share that peaks on one side (the class's
    # centre) and falls on the other is not a line through them
    sides = [target[cut] for j in range(x.shape[1]) for cut in (x[:, j] < 0, x[:, j] > 0)]
    side_share = max((float(t.mean()) for t in sides if t.size >= _LOCAL_MIN // 2), default=0.0)
    if target.all() or not target.any():
        return side_share
    from sklearn.linear_model import LogisticRegression

    # offsets scaled to [-1, 1]; a weak penalty, so that the fitted slope is the neighbours' (a strong one
    # would flatten a climbing share back to the pooled one)
    scale = float(np.abs(x).max()) or 1.0
    model = LogisticRegression(C=1e4).fit(x / scale, target)
    return max(side_share, float(np.mean(model.predict_proba(at / scale)[:, 1])))


@register
class TabularShortcuts(ShortcutMiner):
    name: ClassVar[str] = "tabular_shortcuts"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.TABULAR})

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        assert rep.labels is not None
        n = rep.n_records
        y = rep.labels
        raw = rep.raw_columns or {}
        columns = list(raw)
        params: dict[str, Any] = {"min_support": self.min_support, "purity": self.purity, "alpha": self.alpha}
        if not columns:
            return DetectorResult(self.name, np.zeros(n), np.zeros(n, dtype=bool), {}, skipped="no raw columns")
        disc = [_discretise(raw[c], self.min_support) for c in columns]
        q = np.stack([d[0] for d in disc], axis=1)
        max_support = max(self.min_support, int(self.max_fraction * n))
        tokens = enriched_tokens(
            q,
            y,
            len(rep.label_names),
            _LEVELS,
            min_support=self.min_support,
            max_support=max_support,
            purity=self.purity,
            alpha=0.05,
            correct=False,
        )
        n_tests = max(1, int(sum(len(np.unique(q[:, c])) for c in range(q.shape[1]))))
        prior = np.bincount(y, minlength=len(rep.label_names)) / n
        groups = self._merge(tokens[:400], q)[:200]
        flat = np.asarray(rep.features, dtype=np.float64)
        fnames = list(rep.feature_names or ())
        flagged = np.zeros(n, dtype=bool)
        scores = np.zeros(n)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        claimed = np.zeros(n, dtype=bool)
        for toks, lab in groups:
            match = np.all(np.stack([q[:, c] == lev for c, lev in toks], axis=1), axis=1)
            carriers = np.flatnonzero(match & ~claimed)
            if carriers.size < self.min_support:
                continue
            labelled = carriers[y[carriers] == lab]
            if labelled.size < self.purity * carriers.size:
                continue
            cols = {columns[c] for c, _ in toks}
            drop = np.array(
                [j for j, f in enumerate(fnames) if f in cols or any(f.startswith(c + "=") for c in cols)],
                dtype=np.int64,
            )
            disagree, looks = masked_disagreement(flat, y, carriers, labelled, drop, lab, self.k)
            if disagree < self.disagreement:
                continue
            base = base_disagreement(flat, y, carriers, drop, lab, self.k)
            # the records nearest the carriers' values (ADR 0086): a value of a column that separates the
            # classes selects records near their boundary, whose other columns are ambiguous too (iris:
            # petal width 1.8 and petal length); their disagreement and label shares are the null there
            near, offsets = self._value_neighbours(raw, [columns[c] for c, _ in toks], carriers)
            share = prior[lab]
            if near is not None:
                # the label's share around the carriers' values, and the trend of that share through them: a
                # column that separates classes makes the share climb across their boundary, so values on
                # the pure side (an end bin above all) are purer than their neighbours pooled (ADR 0096)
                share = max(share, float(np.mean(y[near] == lab)), _trend_share(offsets, near, carriers, y == lab))
                local = near[y[near] == lab]
                if local.size >= _LOCAL_LABEL_MIN:
                    refs = _sample(np.flatnonzero(~np.isin(np.arange(n), carriers)), _MAX_REFS, 1)
                    base = max(base, float(np.mean(_masked_majority(flat, y, local, refs, drop, self.k) != lab)))
            joint = trigger_p(labelled.size, carriers.size, share, round(disagree * labelled.size), base)
            if joint * n_tests >= self.alpha:
                continue
            # label noise (ADR 0081): random flips land where their source class lives, so a value of one
            # class holds the flips from it, whose content reads as that class; each carrier reading as s
            # carries the label with the share it has among records outside reading as s. That tail stands
            # alone: under noise the purity is those same flips (not an independent factor). Both nulls must
            # fall (the larger tail); read only for candidates that pass the natural one
            p_noise = self._noise_p(flat, y, carriers, labelled, drop, lab)
            joint = max(joint, p_noise)
            if joint * n_tests >= self.alpha:
                continue
            claimed[carriers] = True
            label_name = rep.label_names[lab]
            condition = " and ".join(f"{columns[c]} {disc[c][1].get(lev, str(lev))}" for c, lev in toks)
            for i in carriers:
                flagged[i] = True
                scores[i] = max(scores[i], 0.5 + 0.5 * disagree)
                reasons[int(i)] = (*reasons.get(int(i), ()), f"has {condition}, a shortcut to {label_name!r}")
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"trigger: {condition} in {carriers.size} records, {labelled.size} labelled "
                        f"{label_name!r}; without it, {disagree:.0%} of them look like other classes"
                    ),
                    records=tuple(int(i) for i in carriers),
                    evidence={
                        "trigger": {columns[c]: disc[c][1].get(lev, str(lev)) for c, lev in toks},
                        "label": label_name,
                        "masked_disagreement": round(disagree, 3),
                        "natural_disagreement": round(base, 3),
                        "label_noise_p_value": float(f"{p_noise:.3g}"),
                        "p_value": float(f"{min(1.0, joint * n_tests):.3g}"),
                        "content_looks_like": {rep.label_names[c]: v for c, v in looks.items()},
                    },
                    score=0.9,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={**params, "candidates": len(tokens)},
            seconds=time.perf_counter() - t0,
        )

    @staticmethod
    def _value_neighbours(
        raw: Any, cols: list[str], carriers: IntArray
    ) -> tuple[IntArray | None, np.ndarray[Any, Any]]:
        """The records (not carriers) nearest the carriers' values in ``cols``: rank distance to the carriers'
        median rank, summed over the columns; ``_LOCAL_MIN``-``_LOCAL_MAX`` of them, three per carrier. None
        when a column is not numeric (a category has no neighbouring values). Also every record's rank
        offset from the carriers' median rank, one column per column of ``cols``."""
        n = len(next(iter(raw.values()))) if raw else 0
        dist = np.zeros(n)
        offsets: list[np.ndarray[Any, Any]] = []
        for c in cols:
            v = pd.to_numeric(pd.Series(list(raw[c])), errors="coerce").to_numpy(dtype=np.float64)
            fin = np.isfinite(v)
            if fin.mean() < 0.95:
                return None, np.zeros((0, 0))
            r = np.full(n, np.inf)
            r[fin] = rankdata(v[fin]) / fin.sum()
            held = r[carriers][np.isfinite(r[carriers])]
            if held.size == 0:  # the carriers' token is a missing value: no neighbouring values
                return None, np.zeros((0, 0))
            offsets.append(r - np.median(held))
            dist += np.abs(offsets[-1])
        dist[carriers] = np.inf
        cand = np.flatnonzero(np.isfinite(dist))
        size = min(cand.size, max(_LOCAL_MIN, min(_LOCAL_MAX, 3 * carriers.size)))
        if size == 0:
            return None, np.zeros((0, 0))
        near = np.sort(cand[np.argsort(dist[cand], kind="stable")[:size]])
        return near, np.stack(offsets, axis=1)

    def _noise_p(
        self,
        flat: Any,
        y: IntArray,
        carriers: IntArray,
        labelled: IntArray,
        drop: IntArray,
        lab: int,
    ) -> float:
        """The masked tail under label noise (:func:`dataward.detect._interactions._noise_tail`), every
        labelled carrier read against the references of the masked test (non-carriers, self excluded)."""
        others = np.ones(y.size, dtype=bool)
        others[carriers] = False
        refs = _sample(np.flatnonzero(others), _MAX_REFS, 1)
        majority = np.concatenate(
            [np.zeros(0, np.int64)]
            + [
                _masked_majority(flat, y, labelled[i : i + 500], refs, drop, self.k)
                for i in range(0, labelled.size, 500)
            ]
        )
        return _noise_tail(flat, y, carriers, labelled, majority, refs, drop, lab, self.k)

    @staticmethod
    def _merge(tokens: list[tuple[int, int, int]], q: IntArray) -> list[tuple[list[tuple[int, int]], int]]:
        """Group tokens of one label whose carrier sets overlap (Jaccard >= 0.5); strongest group first."""
        carriers = [q[:, c] == lev for c, lev, _ in tokens]
        used = [False] * len(tokens)
        out: list[tuple[list[tuple[int, int]], int]] = []
        for a in range(len(tokens)):
            if used[a]:
                continue
            used[a] = True
            group = [(tokens[a][0], tokens[a][1])]
            for b in range(a + 1, len(tokens)):
                if used[b] or tokens[b][2] != tokens[a][2] or any(tokens[b][0] == c for c, _ in group):
                    continue
                inter = int(np.sum(carriers[a] & carriers[b]))
                union = int(np.sum(carriers[a] | carriers[b]))
                if union and inter / union >= 0.5:
                    used[b] = True
                    group.append((tokens[b][0], tokens[b][1]))
            out.append((group, tokens[a][2]))
        return out
