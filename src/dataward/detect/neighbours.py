"""Neighbourhood label consistency (deep-kNN style) and class-conditional outliers.

``knn_consistency``: in the dense representation (user embeddings/activations when given), a record whose
k nearest neighbours carry other labels sits inside another class: the signature of clean-label poisons
(records of one class nudged toward another without relabelling) and of flipped labels. Score: the
distance-weighted share of neighbours with another label. It flags only when asked (``flag=True``, then
when at least ``min_share`` of the neighbours agree on one other label): by default it ranks, and its
votes already feed ``label_issues``; flagging on it alone added false alarms on clean data (1-2 per
dataset on sklearn digits/wine/breast_cancer) and no recall.

``class_outliers``: a record far from its own class (feature manipulation). Within each class, the mean
distance to its k nearest same-class records (among a seeded sample of 2,000 when the class, or the rest of
the data, has more than ``reference`` = 8,000 records) is compared with the class's own distribution on a log scale
(median and MAD); robust z >= ``z`` (5) flags. The reason says whether the record sits closer to another
class.

Both are **rank-only by default** (docs/adr/0021-calibrated-alarms.md): without a clean reference there is
no null for "how far from its class is too far" (real classes are heavy-tailed: clean digits put 19
records beyond z = 6), so they report conformal p-values, each record's in-class rank
``(1 + #{z_j >= z_i}) / (1 + n_c)``, which fusion reads, and flag only when asked (``flag=True``). Above
``max_records`` records (20,000) they step aside and say so in ``skipped``: at 100k texts they cost most
of the run and flagged nothing (ask with ``--param class_outliers.max_records=...``).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from dataward.core.evidence import conformal_pvalues
from dataward.detect._features import dense_view, knn_search, neighbours, reference_sample
from dataward.detect._findings import label_issue_findings
from dataward.detect.interface import Detector, DetectorResult, Finding, FloatArray, IntArray, Modality, Representation
from dataward.detect.registry import register

_LABELLED = frozenset({Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING})
#: above this many records the rank-only neighbourhood detectors step aside (they cost most of a 100k run)
MAX_RECORDS = 20_000


def in_class_pvalues(stat: FloatArray, y: IntArray) -> FloatArray:
    """Conformal p-values of a statistic (large = suspicious) against the other records of the same class."""
    out = np.ones(stat.shape[0])
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out[idx] = conformal_pvalues(stat[idx], stat[idx])
    return out


def _stepped_aside(name: str, n: int, limit: int) -> DetectorResult:
    return DetectorResult(
        detector=name,
        scores=np.zeros(n),
        flagged=np.zeros(n, dtype=bool),
        reasons={},
        skipped=f"{n} records > max_records={limit}: a rank-only detector that does not pay for itself at this "
        f"size (set --param {name}.max_records=N to run it)",
    )


@register
class KnnConsistency(Detector):
    name: ClassVar[str] = "knn_consistency"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED

    def __init__(
        self, k: int = 10, min_share: float = 0.95, flag: bool = False, max_records: int = MAX_RECORDS
    ) -> None:
        self.max_records = int(max_records)
        self.k = int(k)
        self.min_share = float(min_share)
        self.flag = bool(flag)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        assert rep.labels is not None
        y = rep.labels
        n = rep.n_records
        if n > self.max_records:
            return _stepped_aside(self.name, n, self.max_records)
        k_classes = len(rep.label_names)
        dist, idx = neighbours(rep, self.k, seed)
        scale = np.median(dist[:, -1]) + 1e-12
        weight = np.exp(-dist / scale)
        votes = np.zeros((n, k_classes))
        rows = np.repeat(np.arange(n), idx.shape[1])
        np.add.at(votes, (rows, y[idx].ravel()), weight.ravel())
        share = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)
        own = share[np.arange(n), y]
        other = share.copy()
        other[np.arange(n), y] = -1.0
        alt = other.argmax(axis=1)
        alt_share = other[np.arange(n), alt]
        flagged = (alt_share >= self.min_share) & self.flag
        scores = np.where(flagged, 0.5 + 0.5 * (1.0 - own), 0.49 * (1.0 - own))
        names = rep.label_names
        reasons = {
            int(i): (
                f"labelled {names[y[i]]!r} but {alt_share[i]:.0%} of its {idx.shape[1]} nearest "
                f"neighbours are {names[alt[i]]!r}",
            )
            for i in np.flatnonzero(flagged)
        }
        findings = label_issue_findings(
            self.name,
            flagged,
            y,
            alt,
            names,
            summary="{n} record(s) labelled {given!r} sit among {other!r} records",
            other_key="neighbours",
            score=0.55,
        )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={"k": idx.shape[1], "min_share": self.min_share, "flag": self.flag, "null": "conformal, in class"},
            seconds=time.perf_counter() - t0,
            pvalues=in_class_pvalues(1.0 - own, y),
        )


@register
class ClassOutliers(Detector):
    name: ClassVar[str] = "class_outliers"
    modalities: ClassVar[frozenset[Modality]] = _LABELLED

    def __init__(
        self,
        k: int = 5,
        z: float = 6.0,
        min_class: int = 10,
        reference: int = 8000,
        flag: bool = False,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.flag = bool(flag)
        self.max_records = int(max_records)
        self.reference = int(reference)
        self.k = int(k)
        self.z = float(z)
        self.min_class = int(min_class)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        assert rep.labels is not None
        y = rep.labels
        n = rep.n_records
        if n > self.max_records:
            return _stepped_aside(self.name, n, self.max_records)
        x = dense_view(rep, seed)
        own_d = np.full(n, np.nan)
        other_d = np.full(n, np.inf)
        zs = np.zeros(n)
        for c in range(len(rep.label_names)):
            idx = np.flatnonzero(y == c)
            if idx.size < self.min_class:
                continue
            kk = min(self.k, idx.size - 1)
            ref = idx[reference_sample(idx.size, seed, size=2000, exact_max=self.reference)]
            d, _ = knn_search(x[idx], x[ref], kk, query_ids=idx, ref_ids=ref)
            own_d[idx] = d.mean(axis=1)
            rest = np.flatnonzero(y != c)
            if rest.size:
                ref_o = rest[reference_sample(rest.size, seed, size=2000, exact_max=self.reference)]
                od, _ = knn_search(x[idx], x[ref_o], min(kk, ref_o.size))
                other_d[idx] = od.mean(axis=1)
            logd = np.log(own_d[idx] + 1e-9)
            med = np.median(logd)
            mad = 1.4826 * np.median(np.abs(logd - med))
            # floor: on evenly spread data the MAD is ~0 and any record at an edge would look extreme; a
            # record must sit at least e^(6 x 0.1) = 1.8x farther than usual from its class to be flagged
            mad = max(mad, 0.1)
            zs[idx] = (logd - med) / mad
        flagged = (zs >= self.z) & self.flag
        scores = np.where(
            flagged, 0.5 + 0.5 * np.minimum(1.0, (zs - self.z) / self.z), 0.49 * np.clip(zs, 0, None) / self.z
        )
        names = rep.label_names
        reasons: dict[int, tuple[str, ...]] = {}
        for i in np.flatnonzero(flagged):
            closer = other_d[i] < own_d[i]
            reasons[int(i)] = (
                f"far from its class {names[y[i]]!r} (robust z {zs[i]:.1f})"
                + (", closer to another class" if closer else ""),
            )
        findings: list[Finding] = []
        recs = tuple(int(i) for i in np.flatnonzero(flagged))
        if recs:
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="outlier",
                    summary=f"{len(recs)} record(s) lie far from the rest of their class (feature manipulation?)",
                    records=recs,
                    evidence={
                        "z_threshold": self.z,
                        "closer_to_other_class": int(np.sum(other_d[list(recs)] < own_d[list(recs)])),
                    },
                    score=0.5,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(np.nan_to_num(scores), 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={"k": self.k, "z": self.z, "flag": self.flag, "null": "conformal, in class"},
            seconds=time.perf_counter() - t0,
            pvalues=in_class_pvalues(zs, y),
        )
