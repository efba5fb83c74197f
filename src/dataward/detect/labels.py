"""Label issues (label flipping): calibrated out-of-fold probabilities and a confident-joint flag rule.

Written in-house (no cleanlab: it is AGPL). For each record we estimate p(class | record) with a model that
never saw the record (stratified k-fold):

1. out-of-fold predicted probabilities of a multinomial logistic regression; on text, over word 1-2-gram
   TF-IDF plus character 2-5-gram TF-IDF (``char_wb``: misspellings, "txt"-speak and inflections share
   features; up to ``char_max`` records, above that word n-grams and SGD alone);
2. temperature scaling of those probabilities on the given labels (one scalar; label noise is a minority,
   so the given labels are a fair calibration target), so that ``p_y``, the probability of the given label,
   is calibrated;
3. on dense modalities (tabular, images, embeddings) averaged with a k-NN vote in the dense view.

A second pass re-fits with the first pass's suspects left out of training (label noise in the training
folds otherwise drags the model towards the flipped labels).

**Flag rule (confident learning, Northcutt et al. 2021).** Per-class thresholds ``t_j`` are the mean
probability of class ``j`` over the records labelled ``j`` (its mean self-confidence). A record labelled
``y`` is counted in the off-diagonal cell ``(y, j)`` of the confident joint when ``p_j >= t_j`` for some
``j != y`` (the most likely such ``j``). The count of each off-diagonal cell, calibrated so that the joint's
row sums match the class counts, estimates how many records of ``y`` really belong to ``j``; that many
records of ``y`` with the largest margin ``p_j - p_y`` are flagged (pruning by noise rate). Probabilities are
class-balanced (divided by the class prior and renormalised) for the rule when every class has at least 10
records: otherwise the majority class "explains" the minority's records in imbalanced data (SMS, 13 % spam).

**p-values.** ``pvalues`` are ``min(1, K p_y)`` with ``p_y`` the calibrated probability of the given label
and K the number of classes: for a calibrated model ``P(label = c | p_c) = p_c``, so
``P(p_label <= t) = sum_c E[p_c; p_c <= t] <= K t``: a valid (conservative) p-value whatever the noise.
They rank and feed the fused p-value, but they cannot gate the flags: temperature-scaled probabilities of
real models rarely fall below 1e-3, so Benjamini-Hochberg over them keeps almost nothing (measured: SMS at
5 % flips, 0 of 282 flags at q = 0.05). The confident joint is this detector's calibration instead (it
estimates how many labels are wrong from the probabilities themselves), so its findings carry no
p-value and fusion treats them as rule-based. Severity is medium: label noise is real and worth fixing,
but on its own it is not an attack (:func:`dataward.core.evidence.severity_of_evidence` caps it there).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from dataward.core.evidence import score_of_severity
from dataward.detect._features import model_features, neighbours
from dataward.detect._findings import label_issue_findings
from dataward.detect.interface import (
    Detector,
    DetectorResult,
    FloatArray,
    IntArray,
    Modality,
    Representation,
)
from dataward.detect.registry import register

#: above this many records the character n-grams cost more than they add (100k SMS: minutes)
CHAR_MAX = 20_000
#: share of out-of-fold errors among unflagged records above which the data are called ambiguous ...
AMBIGUOUS_ERROR = 0.05
#: ... and a label issue needs the other class as confident as this quantile of that class's own records
AMBIGUOUS_QUANTILE = 0.85


def _oof_proba(x: Any, y: IntArray, k: int, keep: np.ndarray[Any, Any], folds: int, seed: int, c: float) -> FloatArray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    n = y.shape[0]
    proba = np.full((n, k), 1.0 / k)
    counts = np.bincount(y, minlength=k)
    smallest = int(counts[counts > 0].min())
    splitter: Any
    if smallest >= 2:
        splitter = StratifiedKFold(n_splits=int(min(folds, smallest)), shuffle=True, random_state=seed)
    else:  # a class with one record cannot be stratified; its record is scored by a model that never saw it
        splitter = KFold(n_splits=int(max(2, min(folds, n))), shuffle=True, random_state=seed)
    big = sparse.issparse(x) and n > 20_000
    for train, test in splitter.split(np.zeros(n), y):
        train = train[keep[train]]
        classes = np.unique(y[train])
        if classes.size < 2:
            continue
        if big:
            from sklearn.linear_model import SGDClassifier

            model: Any = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=15, tol=None, random_state=seed)
        else:
            model = LogisticRegression(C=c, max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train], y[train])
        p = model.predict_proba(x[test])
        proba[np.ix_(test, model.classes_)] = p
        missing = np.setdiff1d(np.arange(k), model.classes_)
        if missing.size:
            proba[np.ix_(test, missing)] = 0.0
    return proba


def _temperature(proba: FloatArray, y: IntArray, keep: np.ndarray[Any, Any]) -> FloatArray:
    """Temperature-scale out-of-fold probabilities so they are calibrated on the given labels.

    One scalar T (p ** (1/T), renormalised) minimising the log loss of the kept records' labels: regularised
    models on sparse text give soft probabilities (T < 1 sharpens them), while dense models are already
    near T = 1. Label noise is a minority, so the given labels are a fair calibration target.
    """
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(proba, 1e-12, 1.0))
    rows = np.flatnonzero(keep)
    if rows.size < 10:
        return proba

    def scaled(t: float, lp: FloatArray) -> FloatArray:
        z = lp / t
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: FloatArray = e / e.sum(axis=1, keepdims=True)
        return out

    def loss(log_t: float) -> float:
        p = scaled(float(np.exp(log_t)), logp[rows])
        return float(-np.mean(np.log(np.clip(p[np.arange(rows.size), y[rows]], 1e-12, 1.0))))

    best = minimize_scalar(loss, bounds=(np.log(0.05), np.log(5.0)), method="bounded")
    return scaled(float(np.exp(best.x)), logp)


def _knn_proba(idx: IntArray, y: IntArray, k: int, weight: FloatArray) -> FloatArray:
    n = y.shape[0]
    votes = np.full((n, k), 0.1)
    rows = np.repeat(np.arange(n), idx.shape[1])
    np.add.at(votes, (rows, y[idx].ravel()), weight[idx].ravel())
    out: FloatArray = votes / votes.sum(axis=1, keepdims=True)
    return out


def _informative(proba: FloatArray, y: IntArray, prior: FloatArray) -> bool:
    """Whether out-of-fold probabilities beat the class priors: likelihood-ratio G = 2 sum log(p_y / prior_y)
    above the chi-square 0.999 quantile with K - 1 degrees of freedom."""
    from scipy.stats import chi2

    rows = np.arange(y.shape[0])
    gain = 2.0 * float(np.sum(np.log(np.clip(proba[rows, y], 1e-12, 1.0)) - np.log(prior[y])))
    return gain > float(chi2.ppf(0.999, max(1, prior.shape[0] - 1)))


def _char_features(rep: Representation, char_max: int) -> Any:
    """Character 2-5-gram TF-IDF of the texts (a second view beside the word n-grams), up to ``char_max``."""
    if rep.texts is None or rep.n_records > char_max:
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=2 if rep.n_records >= 50 else 1,
        max_features=100_000,
        sublinear_tf=True,
        dtype=np.float64,
    )
    try:
        return sparse.csr_matrix(vec.fit_transform(rep.texts))
    except ValueError:  # nothing but whitespace
        return None


def confident_joint_flags(proba: FloatArray, y: IntArray, k: int) -> tuple[np.ndarray[Any, Any], IntArray]:
    """Confident-learning label issues: (flag mask, most likely other class) from probabilities ``proba``.

    Per-class thresholds are the classes' mean self-confidence; the confident joint counts records labelled
    ``y`` whose probability of some other class reaches that class's threshold; each off-diagonal cell,
    calibrated to the class counts, says how many records of ``y`` to flag (largest margin first).
    """
    n = y.shape[0]
    rows = np.arange(n)
    thresholds = np.array([proba[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(k)])
    above = proba >= thresholds[None, :] - 1e-12
    masked = np.where(above, proba, -1.0)
    best = masked.argmax(axis=1)
    counted = above.any(axis=1)
    alt = proba.copy()
    alt[rows, y] = -1.0
    other = alt.argmax(axis=1)
    joint = np.zeros((k, k))
    np.add.at(joint, (y[counted], best[counted]), 1.0)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sums = joint.sum(axis=1)
    scale = np.divide(counts, sums, out=np.zeros(k), where=sums > 0)
    joint *= scale[:, None]  # calibrate: each row sums to the class count
    flagged = np.zeros(n, dtype=bool)
    for j in range(k):
        for i in range(k):
            if i == j:
                continue
            want = round(joint[j, i])
            if want <= 0:
                continue
            cand = np.flatnonzero((y == j) & (other == i))
            if cand.size == 0:
                continue
            margin = proba[cand, i] - proba[cand, j]
            cand = cand[margin > 0]  # never flag a record whose given label is still the most likely
            order = cand[np.argsort(-(proba[cand, i] - proba[cand, j]), kind="stable")]
            flagged[order[:want]] = True
    return flagged, other.astype(np.int64)


@register
class LabelIssues(Detector):
    name: ClassVar[str] = "label_issues"
    modalities: ClassVar[frozenset[Modality]] = frozenset(
        {Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING}
    )

    def __init__(
        self,
        folds: int = 5,
        k: int = 10,
        passes: int = 2,
        c: float | None = None,
        balanced: bool = True,
        calibrate: bool = True,
        margin: float | None = 0.6,
        char_ngrams: bool = True,
        char_max: int = CHAR_MAX,
        knn: bool | None = None,
    ) -> None:
        self.folds = int(folds)
        self.k = int(k)
        self.passes = max(1, int(passes))
        self.c = None if c is None else float(c)
        self.balanced = bool(balanced)
        self.margin = None if margin is None else float(margin)
        self.calibrate = bool(calibrate)
        self.char_ngrams = bool(char_ngrams)
        self.char_max = int(char_max)
        self.knn = knn
        #: the calibrated probabilities of the last :meth:`score` (n, k), for peers fed the same ones
        self.last_probabilities: FloatArray | None = None

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._score(rep, seed)

    def _score(self, rep: Representation, seed: int) -> DetectorResult:
        t0 = time.perf_counter()
        assert rep.labels is not None
        y = rep.labels
        n = rep.n_records
        k = len(rep.label_names)
        rows = np.arange(n)
        x = model_features(rep)
        text = sparse.issparse(x) and rep.embeddings is None
        views = [x]
        if text and self.char_ngrams:
            chars = _char_features(rep, self.char_max)
            if chars is not None:
                views.append(chars)
        # TF-IDF logistic regression needs little regularisation (C=10, as in cleanlab's text examples);
        # dense standardised features keep C=1
        c = self.c if self.c is not None else (10.0 if text else 1.0)
        use_knn = self.knn if self.knn is not None else not text  # k-NN on SVD text is weaker than the model
        idx = neighbours(rep, self.k, seed)[1] if use_knn else None
        keep = np.ones(n, dtype=bool)
        passes = self.passes if n <= 20_000 else 1
        counts = np.bincount(y, minlength=k)
        prior = np.maximum(counts / n, 1e-9)
        # dividing by the prior of a class with a handful of records would make it "explain" everything
        balanced = self.balanced and int(counts.min()) >= 10
        flagged = np.zeros(n, dtype=bool)
        alt = np.zeros(n, dtype=np.int64)
        proba = np.full((n, k), 1.0 / k)
        calibrated = proba
        consensus = np.ones(n, dtype=bool)
        ambiguous = False
        for _ in range(passes):
            opinions = []
            for view in views:
                p_view = _oof_proba(view, y, k, keep, self.folds, seed, c)
                if self.calibrate:
                    p_view = _temperature(p_view, y, keep)
                opinions.append(p_view)
            if idx is not None:
                opinions.append(_knn_proba(idx, y, k, keep.astype(np.float64)))
            calibrated = np.mean(opinions, axis=0)
            # consensus filter (Brodley and Friedl, 1999): with two views, a record is a label issue only
            # when both disagree with its label; ambiguous records (sentiment) split the views, flips of
            # clear records do not
            consensus = np.all([o.argmax(axis=1) != y for o in opinions], axis=0) if len(opinions) > 1 else consensus
            proba = calibrated
            flagged, alt = confident_joint_flags(proba, y, k)
            if self.margin is not None:
                # a second, stricter rule on class-balanced probabilities recovers flips the confident joint
                # under-counts (its off-diagonal counts are estimates): another class clearly more likely than
                # the given one (margin < -0.6) and reaching half that class's mean self-confidence
                bal = proba / prior[None, :] if balanced else proba
                bal = bal / bal.sum(axis=1, keepdims=True)
                other = bal.copy()
                other[rows, y] = -1.0
                b_alt = other.argmax(axis=1)
                b_margin = bal[rows, y] - bal[rows, b_alt]
                t = np.array([bal[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(k)])
                strict = (b_margin < -self.margin) & (bal[rows, b_alt] >= 0.5 * t[b_alt])
                alt = np.where(flagged, alt, b_alt)
                flagged = flagged | strict
            flagged &= consensus
            unflagged_error = (
                float(np.mean(calibrated[~flagged].argmax(axis=1) != y[~flagged])) if (~flagged).any() else 0.0
            )
            ambiguous = unflagged_error > AMBIGUOUS_ERROR
            if ambiguous:
                # the model errs on many records it does not call label issues (ambiguous data: sentiment
                # 7 %, SMS/digits/breast cancer < 2 %): disagreement alone is then no evidence, so the other
                # class must be predicted at least as confidently as 85 % of its own records
                conf = calibrated[rows, alt]
                bar = np.array([np.quantile(calibrated[y == j, j], AMBIGUOUS_QUANTILE) if np.any(y == j) else 1.0
                                for j in range(k)])  # fmt: skip
                flagged &= conf >= bar[alt]
            if not _informative(calibrated[keep], y[keep], prior):
                # out of fold the model does no better than the class priors: its disagreements with the
                # labels are noise, not evidence (uninformative features, e.g. one categorical column)
                flagged = np.zeros(n, dtype=bool)
            keep = ~flagged
        self.last_probabilities = calibrated
        pvalues = np.clip(k * calibrated[rows, y], 0.0, 1.0)
        margin = proba[rows, y] - proba[rows, alt]
        # flagged records at or above 0.5 (ordered by margin), the others below (ordered by doubt in the label)
        scores = np.where(flagged, 0.5 + 0.25 * (1.0 - margin), 0.499 * (1.0 - calibrated[rows, y]))
        names = rep.label_names
        reasons: dict[int, tuple[str, ...]] = {}
        for i in np.flatnonzero(flagged):
            reasons[int(i)] = (
                f"labelled {names[y[i]]!r} but looks like {names[alt[i]]!r} "
                f"(p={proba[i, alt[i]]:.2f} vs {proba[i, y[i]]:.2f} for the given label)",
            )
        findings = label_issue_findings(
            self.name,
            flagged,
            y,
            alt,
            names,
            summary="{n} record(s) labelled {given!r} look like {other!r}",
            other_key="likely",
            score=score_of_severity("medium"),
            extra={"rule": "confident joint"},
        )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={
                "folds": self.folds,
                "k": self.k,
                "passes": passes,
                "balanced": balanced,
                "c": c,
                "model": "+".join(
                    (["logreg(word tf-idf)", "logreg(char tf-idf)"][: len(views)] if text else ["logreg"])
                    + (["knn"] if use_knn else [])
                ),
                "rule": "confident joint, prune by noise rate, consensus of views",
                "ambiguous": ambiguous,
            },
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )
