"""Score detectors against a simulator's ground truth: precision, recall, F1, AUROC, false-positive rate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dataward.detect.api import DetectionReport
from dataward.detect.interface import DetectionError
from dataward.simulate.interface import GroundTruth


@dataclass(frozen=True)
class Score:
    name: str
    precision: float
    recall: float
    f1: float
    auroc: float | None
    fpr: float
    n_flagged: int
    n_poisoned: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def auroc(scores: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tie correction); ``None`` if one class is absent."""
    pos = int(truth.sum())
    neg = int(truth.size - pos)
    if pos == 0 or neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def score_flags(
    name: str, flagged: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], truth: np.ndarray[Any, Any], seconds: float
) -> Score:
    tp = int(np.sum(flagged & truth))
    fp = int(np.sum(flagged & ~truth))
    fn = int(np.sum(~flagged & truth))
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    neg = int((~truth).sum())
    return Score(
        name=name,
        precision=precision,
        recall=recall,
        f1=f1,
        auroc=auroc(scores, truth),
        fpr=fp / neg if neg else 0.0,
        n_flagged=int(flagged.sum()),
        n_poisoned=int(truth.sum()),
        seconds=seconds,
    )


def bench_report(report: DetectionReport, truth: GroundTruth) -> list[Score]:
    """Scores of the ensemble and of every detector that ran, against ``truth``."""
    if truth.n_records != report.n_records:
        raise DetectionError(
            f"the ground truth covers {truth.n_records} records but the data has {report.n_records}",
            advice="Benchmark the data file that `dataward simulate` wrote next to this truth.json.",
        )
    mask = truth.mask()
    out = [score_flags("ensemble", report.flagged, report.scores, mask, report.seconds)]
    results: Mapping[str, Any] = report.results
    for name, result in results.items():
        if result.skipped is not None:
            continue
        out.append(score_flags(name, np.asarray(result.flagged), np.asarray(result.scores), mask, result.seconds))
    return out
