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
    """How one detector (or the ensemble) did against the ground truth."""
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
        """The JSON form, floats rounded to 4 places."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def auroc(scores: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> float | None:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``); ``None`` if one class is absent."""
    truth = np.asarray(truth, dtype=bool)
    if truth.all() or not truth.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, np.asarray(scores, dtype=np.float64)))


def score_flags(
    name: str, flagged: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], truth: np.ndarray[Any, Any], seconds: float
) -> Score:
    """Precision, recall and F1 (scikit-learn's ``precision_recall_fscore_support``), AUROC and FPR of one run.

    With nothing to find and nothing flagged, precision, recall and F1 are 1; with nothing flagged but
    something to find, precision is 0; with nothing to find, recall is 1.
    """
    from sklearn.metrics import precision_recall_fscore_support

    flagged = np.asarray(flagged, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    fn = int(np.sum(~flagged & truth))
    fp = int(np.sum(flagged & ~truth))
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth.astype(np.int8),
        flagged.astype(np.int8),
        average="binary",
        pos_label=1,
        zero_division=1.0 if fn == 0 else 0.0,
    )
    neg = int((~truth).sum())
    return Score(
        name=name,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
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
