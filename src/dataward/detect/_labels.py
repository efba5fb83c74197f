"""Label issues (label flipping): out-of-fold probabilities and a label-noise mixture that separates flips
from natural ambiguity.

Written in-house (no cleanlab: it is AGPL). For each record we estimate p(class | record) with a model that
never saw the record (stratified k-fold):

1. out-of-fold predicted probabilities of multinomial logistic regressions; on text, over word 1-2-gram
   TF-IDF, character 2-5-gram TF-IDF (``char_wb``: misspellings, "txt"-speak and inflections share
   features) and, with two classes, binary word features scaled by their naive Bayes log-count ratio
   estimated in the training fold (Wang and Manning, 2012); up to ``char_max`` records, above that word
   n-grams and SGD alone; on dense modalities (tabular, images, embeddings) with a k-NN vote beside them,
   and on small dense tables (at most 1,000 records, every class at least 10) an RBF SVM with Platt
   probabilities and shrinkage LDA as well (docs/adr/0074), each kept in the flags' product only while it
   does not make the product explain the given labels worse (:func:`fitting_views`, docs/adr/0082);
2. the views are combined in log space (a product of experts, so one confident view is not averaged away).

A second pass re-fits with the first pass's flags left out of training (label noise in the training folds
otherwise drags the model towards the flipped labels).

**The mixture** (:func:`fit_label_noise`). The given labels are modelled as ``(1 - eps) q(x) + eps / K``:
``q = softmax(logits / T)`` is natural ambiguity (a record between two classes may carry either label),
``eps`` the share of labels drawn at random (flips, careless annotation), both fitted by maximum likelihood.
A temperature alone would absorb the flips by softening every record; the uniform share cannot explain
ambiguity (it ignores ``x``), so the two are identified. ``eps = 0`` is tested by the likelihood ratio
(boundary null: half chi-square(1)) on the first pass, on the product and on each model view alone
(Bonferroni; the k-NN vote's floored probabilities can hide flips on small tables, docs/adr/0060; the small
tables' SVM and LDA join the product only, docs/adr/0074, and with two classes the SVM and k-NN product is
tested too, docs/adr/0097); with no significant noise at ``alpha`` = 0.01
nothing is flagged. The model must also beat the class priors out of
fold (likelihood-ratio G test), or its disagreements with the labels are no evidence.

**The flag rule** (docs/adr/0060), once the test rejects: by default (``flag_rule="mixture"``) the records
most probably wrongly labelled under the mixture, up to where the expected F1 peaks; the natural model takes
one bias per class when a likelihood-ratio test asks for it (random flips move imbalanced class shares
towards uniform), and then confident learning's flags on the calibrated probabilities join the cut (the
wrong labels are not one uniform share), as they do on small dense tables where confident learning's count
agrees with the mixture's (docs/adr/0074). Confident
learning (Northcutt, Jiang and Chuang, 2021, implemented here from the paper): per-class thresholds, the
calibrated confident joint's count for each (given, true) class pair, pruned by largest margin within the
given class. With ``flag_rule="mixture+confident-joint"``
(docs/adr/0048) the cut's union with confident learning on the natural model ``q``, always. The mixture's
count ``n eps (K - 1) / K`` (highest posterior of the noise component first) is what the second pass
leaves out of training; the findings hold the final flags.

**p-values.** ``pvalues`` are the natural null's: ``P(q_Y <= q_y)`` for ``Y ~ q``, valid (uniform up to the
atom at the observed label) when ``q`` is calibrated; the tests check that on labels drawn from ``q``.
Findings carry the mixture's test as their p-value and, in ``evidence``, the model the cut read
(``last_cut_model``: with class biases where their test asked for them, else the natural one) as
``noise_model``, each record's ``label_probability`` under it and its ``wrong_label_posterior``: fusion
(:mod:`dataward.detect.api`) keeps a flagged record where that model still makes its label more likely
wrong than right once the records a trigger explains, and the noise share they carried, are taken out
(:func:`dataward.detect.api.label_noise_posteriors`, docs/adr/0075). Severity is medium:
label noise is real and worth fixing, but on its own it is not an attack
(:func:`dataward.core.evidence.severity_of_evidence`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from dataward.core.evidence import score_of_severity
from dataward.detect._features import model_features, neighbours
from dataward.detect._findings import label_issue_findings
from dataward.detect.interface import (
    DetectionError,
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
#: level of the one test per data set for label noise beyond natural ambiguity (the miners' family-wise level)
ALPHA = 0.01
#: dense tables up to this many records, every class with at least SMALL_CLASS_MIN, take two more model views
#: (an RBF SVM and shrinkage LDA, docs/adr/0074): cheap there, and the logistic model and the k-NN vote alone
#: half believe many flips
SMALL_MAX = 1_000
SMALL_CLASS_MIN = 10
#: the flag rules (ADR 0048): the mixture's count alone (default), or its union with confident learning's
#: per-class-pair count, which gains on imbalanced classes and loses precision on balanced ones
FLAG_RULES = ("mixture", "mixture+confident-joint")


def _oof_proba(
    x: Any,
    y: IntArray,
    k: int,
    keep: np.ndarray[Any, Any],
    folds: int,
    seed: int,
    c: float,
    nb: bool = False,
    kind: str = "logreg",
) -> FloatArray:
    """Out-of-fold class probabilities of a logistic regression on ``x``; with ``nb`` (two classes, sparse
    counts), on binary features scaled by their naive Bayes log-count ratio, estimated in the training fold
    (Wang and Manning, 2012: the strongest linear model on short sentiment texts). ``kind="svm"`` is an RBF
    support vector machine with Platt-scaled probabilities (fitted by its own inner cross-validation on the
    training fold), ``kind="lda"`` linear discriminant analysis with Ledoit-Wolf shrinkage of the covariance
    (the small dense tables' extra views, :func:`small_dense_views`)."""
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
            model = _small_model(kind, y[train], seed) if kind != "logreg" else LogisticRegression(C=c, max_iter=300)
        fit_x, test_x = x[train], x[test]
        if nb:
            fit_x, test_x = _nb_scaled(x, y, train, test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if kind == "lda":  # a class left with one training record: its covariance share is the shrunk one
                warnings.simplefilter("ignore", UserWarning)
            model.fit(fit_x, y[train])
        p = model.predict_proba(test_x)
        proba[np.ix_(test, model.classes_)] = p
        missing = np.setdiff1d(np.arange(k), model.classes_)
        if missing.size:
            proba[np.ix_(test, missing)] = 0.0
    return proba


def _small_model(kind: str, y: IntArray, seed: int) -> Any:
    """The extra model of a small dense table: RBF SVM (Platt probabilities) or shrinkage LDA."""
    if kind == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import SVC

        # Platt scaling of the SVM's decision values, fitted on inner folds of the training fold (one SVM refit
        # on all of it: ``ensemble=False``, what ``SVC(probability=True)`` did before scikit-learn 1.9)
        counts = np.bincount(y)
        smallest = int(counts[counts > 0].min())
        if smallest < 2:  # a class with one training record cannot be split for the Platt fit: logistic instead
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(max_iter=300)
        inner = StratifiedKFold(n_splits=min(5, smallest), shuffle=True, random_state=seed)
        return CalibratedClassifierCV(SVC(kernel="rbf"), method="sigmoid", cv=inner, ensemble=False)
    if kind == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    raise ValueError(f"unknown model kind {kind!r}")


def small_dense_views(x: Any, y: IntArray, k: int) -> tuple[str, ...]:
    """The extra model views of a small dense table (docs/adr/0074): an RBF SVM and shrinkage LDA when the
    features are dense (not text n-grams), there are at most :data:`SMALL_MAX` records and every one of the
    ``k`` classes has at least :data:`SMALL_CLASS_MIN` (the SVM's inner Platt fit and LDA's class means need
    a few records per class in every training fold); none otherwise.

    On a few hundred records the logistic model and the k-NN vote each half believe many flips (a flip near
    the class boundary, or inside a sparse neighbourhood); a kernel model and a generative one err on
    different records, and their fits cost well under a second there.
    """
    if sparse.issparse(x) or y.shape[0] > SMALL_MAX:
        return ()
    counts = np.bincount(y, minlength=k)
    if k < 2 or int(counts.min()) < SMALL_CLASS_MIN:
        return ()
    return ("svm", "lda")


def _nb_scaled(x: Any, y: IntArray, train: IntArray, test: IntArray) -> tuple[Any, Any]:
    """Binary presence features of the two folds, each column scaled by log(P(w | 1) / P(w | 0)) with add-one
    smoothing, counted on the training rows only (the test rows' labels never enter their features)."""
    present = sparse.csr_matrix(x, copy=True)
    present.data[:] = 1.0
    part = present[train]
    ones = np.asarray(part[y[train] == 1].sum(axis=0)).ravel() + 1.0
    zeros = np.asarray(part[y[train] == 0].sum(axis=0)).ravel() + 1.0
    ratio = sparse.diags(np.log(ones / ones.sum()) - np.log(zeros / zeros.sum()))
    return part @ ratio, present[test] @ ratio


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


@dataclass(frozen=True, eq=False)
class NoiseFit:
    """A label-noise mixture fitted to out-of-fold model scores (:func:`fit_label_noise`)."""

    temperature: float
    #: share ``eps`` of labels drawn uniformly at random instead of from the natural model
    share: float
    #: likelihood-ratio test of ``eps = 0`` (no label noise beyond natural ambiguity)
    p_value: float
    #: per record, the posterior probability that its label came from the noise component
    responsibility: FloatArray


def fit_label_noise(logits: FloatArray, y: IntArray) -> tuple[FloatArray, NoiseFit]:
    """Separate natural ambiguity from label noise; returns the natural model ``q`` and the fit.

    The given labels are modelled as ``P(label = c | x) = (1 - eps) q_c + eps / K`` with
    ``q = softmax(logits / T)``, fitted by maximum likelihood. One temperature alone cannot tell the two
    apart: fitted to labels with 5 % random flips it softens every record until flips look like ordinary
    doubt. The uniform share ``eps`` takes the flips (their labels do not follow the model's uncertainty), so
    ``q`` keeps the sharpness the clean records support. ``eps = 0`` is tested by the likelihood ratio, whose
    null distribution on the boundary of the parameter space is the 50:50 mixture of 0 and chi-square(1)
    (Self and Liang, 1987).
    """
    from scipy.optimize import minimize, minimize_scalar
    from scipy.stats import chi2

    n, k = logits.shape
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)

    def clean(t: float) -> FloatArray:
        e = np.exp(z / t)
        out: FloatArray = e / e.sum(axis=1, keepdims=True)
        return out

    def loss(log_t: float, eps: float) -> float:
        q = clean(float(np.exp(log_t)))
        return float(-np.sum(np.log(np.clip((1.0 - eps) * q[rows, y] + eps / k, 1e-300, 1.0))))

    bounds = (np.log(0.02), np.log(20.0))
    null = minimize_scalar(lambda lt: loss(lt, 0.0), bounds=bounds, method="bounded")
    best: Any = None
    for start in ((float(null.x), 0.01), (float(null.x) - 0.5, 0.05), (float(null.x) - 1.0, 0.15)):
        fit = minimize(
            lambda th: loss(float(th[0]), float(th[1])), np.array(start), method="L-BFGS-B", bounds=[bounds, (0.0, 0.5)]
        )
        if best is None or fit.fun < best.fun:
            best = fit
    if best.fun >= null.fun:  # no better than no noise at all
        t_hat, eps_hat, stat = float(np.exp(null.x)), 0.0, 0.0
    else:
        t_hat, eps_hat, stat = float(np.exp(best.x[0])), float(best.x[1]), 2.0 * float(null.fun - best.fun)
    q = clean(t_hat)
    p_value = float(0.5 * chi2.sf(stat, 1)) if stat > 0 else 1.0
    noise = eps_hat / k
    responsibility = noise / ((1.0 - eps_hat) * q[rows, y] + noise) if eps_hat > 0 else np.zeros(n)
    return q, NoiseFit(t_hat, eps_hat, p_value, responsibility)


def wrong_label_posterior(q: FloatArray, noise: NoiseFit, y: IntArray) -> FloatArray:
    """Per record, the mixture's posterior probability that its given label is wrong: drawn by the noise
    component (``eps / K``) and not the record's true class (``1 - q_y``), over ``(1 - eps) q_y + eps / K``.
    A label the natural model could have drawn (ambiguity) is not wrong, nor a noisy draw that hit the truth."""
    k = q.shape[1]
    qy = q[np.arange(y.shape[0]), y]
    noisy = noise.share / k
    out: FloatArray = noisy * (1.0 - qy) / np.maximum((1.0 - noise.share) * qy + noisy, 1e-300)
    return out


def expected_f1_cut(posterior: FloatArray) -> np.ndarray[Any, Any]:
    """The flags that maximise the expected F1 given each record's posterior of a wrong label: the ``m``
    most probable, ``m`` maximising ``2 sum_top_m w / (m + sum_all w)`` (the plug-in expected F1: expected
    true positives over the mean of the flag count and the expected number of wrong labels). It flags
    further down the ranking than the expected count when the top records are near-certain and stops
    earlier when the posteriors are spread (a weak model), and flags nothing without noise."""
    flagged = np.zeros(posterior.shape[0], dtype=bool)
    total = float(posterior.sum())
    if total <= 0.0:
        return flagged
    order = np.argsort(-posterior, kind="stable")
    gain = 2.0 * np.cumsum(posterior[order]) / (np.arange(1, order.size + 1) + total)
    flagged[order[: int(np.argmax(gain)) + 1]] = True
    return flagged


def fit_class_bias(
    logits: FloatArray, y: IntArray, noise: NoiseFit, alpha: float
) -> tuple[FloatArray, NoiseFit] | None:
    """The mixture refitted with one bias per class in the natural model, ``q = softmax(logits / T + b)``,
    when the given labels ask for it: the likelihood ratio against ``b = 0`` (chi-square, ``K - 1`` degrees
    of freedom) at level ``alpha``; ``None`` otherwise.

    Random flips move the given class shares towards uniform (5 % flips of a 13 % class give it about
    17 %), and a model fitted to the given labels puts its intercepts at the given shares, so on imbalanced
    classes the product of experts leans towards the minority class everywhere, which one temperature
    cannot undo. The biases let the natural model take the true shares back. The test of ``eps = 0`` is not
    redone here: ``noise.p_value`` is carried over.
    """
    from scipy.optimize import minimize
    from scipy.stats import chi2

    n, k = logits.shape
    if noise.share <= 0.0 or k < 2:
        return None
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)

    def natural(th: FloatArray) -> FloatArray:
        a = z / np.exp(th[0]) + np.concatenate(([0.0], th[2:]))
        a -= a.max(axis=1, keepdims=True)
        e = np.exp(a)
        out: FloatArray = e / e.sum(axis=1, keepdims=True)
        return out

    def loss(th: FloatArray) -> float:
        q = natural(th)
        return float(-np.sum(np.log(np.clip((1.0 - th[1]) * q[rows, y] + th[1] / k, 1e-300, 1.0))))

    start = np.concatenate(([np.log(noise.temperature), noise.share], np.zeros(k - 1)))
    bounds = [(np.log(0.02), np.log(20.0)), (0.0, 0.5)] + [(-10.0, 10.0)] * (k - 1)
    fit = minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    stat = 2.0 * (loss(start) - float(fit.fun))
    if stat <= 0.0 or float(chi2.sf(stat, k - 1)) > alpha:
        return None
    q = natural(fit.x)
    eps = float(fit.x[1])
    noisy = eps / k
    responsibility = noisy / ((1.0 - eps) * q[rows, y] + noisy) if eps > 0 else np.zeros(n)
    return q, NoiseFit(float(np.exp(fit.x[0])), eps, noise.p_value, responsibility)


def natural_label_pvalues(q: FloatArray, y: IntArray) -> FloatArray:
    """Per-record p-values of the given labels under "the label is drawn from ``q``" (natural ambiguity):
    ``P(q_Y <= q_y) = sum_c q_c [q_c <= q_y]`` for ``Y ~ q``, valid (uniform or conservative) for a
    calibrated ``q``."""
    rows = np.arange(y.shape[0])
    qy = q[rows, y]
    p: FloatArray = np.where(q <= qy[:, None] * (1.0 + 1e-9), q, 0.0).sum(axis=1)
    return np.clip(p, 0.0, 1.0)


def confident_joint(proba: FloatArray, y: IntArray, k: int) -> FloatArray:
    """Calibrated confident joint ``C[given, true]`` of confident learning (Northcutt, Jiang and Chuang, 2021).

    Each class ``j`` has its threshold ``t_j``, the mean probability of ``j`` over the records labelled
    ``j`` (a per-class threshold, so a rare or hard class is not held to a common bar). A record counts
    towards ``C[y, j]`` for the class ``j`` of highest probability among those with ``p_j >= t_j``, and
    not at all when no class reaches its threshold. Each row is then rescaled to the number of records
    given that label (the calibration step), so ``C[i, j] / n`` estimates the joint distribution of given
    and true labels and ``C[i, j]`` (``i != j``) how many records labelled ``i`` truly belong to ``j``:
    one count per class pair, so asymmetric noise (one pair of classes confused) is not spread over all.
    """
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sums = np.zeros(k)
    np.add.at(sums, y, proba[np.arange(y.shape[0]), y])
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1.0), np.inf)
    above = proba >= thresholds[None, :] * (1.0 - 1e-12)
    star = np.where(above, proba, -1.0).argmax(axis=1)
    counted = above.any(axis=1)
    joint = np.zeros((k, k))
    np.add.at(joint, (y[counted], star[counted]), 1.0)
    rows = joint.sum(axis=1)
    out: FloatArray = joint * np.where(rows > 0, counts / np.maximum(rows, 1.0), 0.0)[:, None]
    return out


def prune_by_noise_rate(proba: FloatArray, y: IntArray, joint: FloatArray) -> np.ndarray[Any, Any]:
    """Confident learning's "prune by noise rate": for each pair (given ``i``, true ``j != i``), flag the
    ``round(joint[i, j])`` records labelled ``i`` with the largest margin ``p_j - p_i``; a record the model
    itself assigns to its given label (``argmax p = y``) is never flagged."""
    k = joint.shape[0]
    flagged = np.zeros(y.shape[0], dtype=bool)
    for i in range(k):
        members = np.flatnonzero(y == i)
        for j in range(k):
            m = round(float(joint[i, j]))
            if j == i or m <= 0 or members.size == 0:
                continue
            margin = proba[members, j] - proba[members, i]
            flagged[members[np.argsort(-margin, kind="stable")[:m]]] = True
    flagged &= proba.argmax(axis=1) != y
    return flagged


def counts_agree(joint: FloatArray, mixture_count: float, alpha: float) -> bool:
    """Whether confident learning's count of wrong labels (the confident joint off its diagonal) is no larger
    than the mixture's ``n eps (K - 1) / K`` beyond sampling error: one-sided z test at ``alpha``, with the
    two counts' Poisson variances summed (docs/adr/0074).

    Where the classes overlap, confident learning counts natural ambiguity as wrong labels (a record past its
    class threshold for another class), which the mixture's uniform share does not take: on noisy 3-class
    blobs and two moons with 5 % flips it counted 41-66 against the mixture's 15-39, and about a fifth of its
    flags beyond the cut were flips. Where the two counts agree (breast cancer, wine, iris), its per-class
    ranking adds flips the cut stops short of.
    """
    from scipy.stats import norm

    found = float(joint.sum() - np.trace(joint))
    spread = np.sqrt(max(found + mixture_count, 1.0))
    return bool((found - mixture_count) / spread <= float(norm.isf(alpha)))


def _noise_test(product: NoiseFit, models: list[FloatArray], y: IntArray, experts: int) -> float:
    """The p-value of "no label noise beyond natural ambiguity": the mixture's test on the product of the
    ``experts`` and, when there are several, on each model view alone, Bonferroni-corrected over the tests.

    The k-NN vote's pseudo-counts floor its probabilities (a flipped record in a pure neighbourhood keeps
    about 1 % for its given label), and the product inherits that floor; on small tables (8 flips among 150
    records) it hides the flips from the test, while the logistic model alone, whose probabilities are not
    floored, sees them. The k-NN vote alone is not tested: its floored, discrete probabilities make the
    mixture's test anti-conservative on clean data. Each test is valid under the null, so the smallest
    p-value times the number of tests is.
    """
    if experts < 2:
        return product.p_value
    tests = [product.p_value] + [fit_label_noise(np.log(np.clip(m, 1e-12, 1.0)), y)[1].p_value for m in models]
    return float(min(1.0, min(tests) * len(tests)))


def gate_products(
    base: list[FloatArray], extra: dict[str, FloatArray], votes: FloatArray | None, k: int
) -> list[FloatArray]:
    """The products a small dense table's gate tests beside the product of every view (docs/adr/0074, 0097):
    the ``base`` views' (the logistic model and the k-NN vote), and with two classes the non-linear views'
    (the RBF SVM and the k-NN vote).

    Every other product holds a linear view; on a curved class boundary (two moons) it misfits, its fitted
    temperature softens every record and the flips pass as ambiguity. With two classes the SVM's Platt
    probabilities are one logistic fit of its decision value; with more they are one-vs-rest sigmoids
    renormalised, and that product rejected on 5 of 10 clean 600-digit tables (docs/adr/0097).
    """
    products = [_product(base)]
    if k == 2 and votes is not None and "svm" in extra:
        products.append(_product([extra["svm"], votes]))
    return products


def fitting_views(base: list[FloatArray], extra: list[FloatArray], y: IntArray, z: float) -> list[bool]:
    """Which of the ``extra`` views stay in the product of experts with the ``base`` views (docs/adr/0082).

    Backward elimination on the label-noise mixture's log-likelihood of the given labels (each product fitted
    by :func:`fit_label_noise`, temperature and share alike, so every candidate has the same two parameters):
    the view whose removal raises it most leaves while that rise, paired per record, is more than ``z``
    standard errors; a misspecified view (linear discriminants on two moons) makes the product explain the
    labels worse than the views without it."""
    n = y.shape[0]
    rows = np.arange(n)

    def loglik(chosen: list[int]) -> FloatArray:
        views = base + [extra[i] for i in chosen]
        logits = np.mean([np.log(np.clip(v, 1e-12, 1.0)) for v in views], axis=0)
        q, fit = fit_label_noise(logits, y)
        out: FloatArray = np.log((1.0 - fit.share) * q[rows, y] + fit.share / q.shape[1])
        return out

    chosen = list(range(len(extra)))
    current = loglik(chosen)
    while chosen:
        worst: tuple[float, int, FloatArray] | None = None
        for i in chosen:
            without = loglik([j for j in chosen if j != i])
            d = without - current
            se = float(d.std(ddof=1)) / np.sqrt(n)
            gain = float(d.mean()) / se if se > 0 else 0.0
            if gain > z and (worst is None or gain > worst[0]):
                worst = (gain, i, without)
        if worst is None:
            break
        chosen.remove(worst[1])
        current = worst[2]
    return [i in chosen for i in range(len(extra))]


def _product(probabilities: list[FloatArray]) -> FloatArray:
    """The normalised product of experts of ``probabilities`` (their mean in log space)."""
    logits = np.mean([np.log(np.clip(p, 1e-12, 1.0)) for p in probabilities], axis=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


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
        calibrate: bool = True,
        alpha: float = ALPHA,
        char_ngrams: bool = True,
        char_max: int = CHAR_MAX,
        knn: bool | None = None,
        flag_rule: str = "mixture",
        small_views: bool = True,
        view_gate: float | None = 2.0,
    ) -> None:
        if flag_rule not in FLAG_RULES:
            raise DetectionError(
                f"label_issues: unknown flag_rule {flag_rule!r}", advice=f"Use one of: {', '.join(FLAG_RULES)}."
            )
        self.flag_rule = flag_rule
        self.folds = int(folds)
        self.k = int(k)
        self.passes = max(1, int(passes))
        self.c = None if c is None else float(c)
        self.alpha = float(alpha)
        self.calibrate = bool(calibrate)
        self.char_ngrams = bool(char_ngrams)
        self.char_max = int(char_max)
        self.knn = knn
        #: the small dense tables' extra views and confident-learning flags (ADR 0074); off gives the views alone
        self.small_views = bool(small_views)
        #: on small dense tables, the z above which a view's removal must raise the mixture's likelihood of the
        #: given labels for it to leave the flags' product (ADR 0082); None keeps both views (ADR 0074)
        self.view_gate: float | None = None if view_gate is None else float(view_gate)
        #: the calibrated probabilities of the last :meth:`score` (n, k), for peers fed the same ones
        self.last_probabilities: FloatArray | None = None
        #: the label-noise mixture of the last :meth:`score`
        self.last_noise: NoiseFit | None = None
        #: the confident joint's flags of the last :meth:`score` (computed under either rule, for comparison)
        self.last_confident_joint: np.ndarray[Any, Any] | None = None
        #: the model the last :meth:`score`'s cut read, ``(q, noise fit)``: the class-biased refit where its test
        #: asked for one, else the natural model and mixture (``None`` when nothing was flagged); the findings'
        #: evidence and fusion read each record's wrong-label posterior under it
        self.last_cut_model: tuple[FloatArray, NoiseFit] | None = None

    def _flags(
        self,
        natural: FloatArray,
        noise: NoiseFit,
        y: IntArray,
        k: int,
        logits: FloatArray,
        calibrated: FloatArray,
        confident: bool = False,
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The flag rule, once the mixture test has rejected "no noise": ``(counted, flagged)``, where
        ``counted`` is the mixture's count ``n eps (K - 1) / K``, highest noise posterior first (left out of
        the next pass), and ``flagged`` the final set (ADR 0060; the findings hold it): under
        ``flag_rule="mixture"`` the most probable wrong labels up to the expected-F1 optimum
        (:func:`expected_f1_cut`), and when the class-bias test asks for biases (:func:`fit_class_bias`: the
        cut then reads the biased model) confident learning's flags on the calibrated probabilities beside
        them (and with ``confident``, on small dense tables, where confident learning's count agrees with the
        mixture's, :func:`counts_agree`, ADR 0074); else that set's union with confident learning on the
        natural model ``q``:

        - the mixture (labels drawn at random: the share leaks into every class, which is what the uniform
          component measures);
        - confident learning: the calibrated confident joint's count per (given, true) class pair, largest
          margin first within the given class (noise concentrated on some class pairs, and classes of
          different difficulty, which one global count and one global ranking treat alike).
        """
        n = y.shape[0]
        counted = np.zeros(n, dtype=bool)
        wrong = round(n * noise.share * (k - 1) / k)
        counted[np.argsort(-noise.responsibility, kind="stable")[:wrong]] = True
        # the cut reads the natural model with class biases where the labels ask for them (imbalanced classes);
        # there the wrong labels are not spread as one uniform share, and confident learning's per-class
        # thresholds on the calibrated probabilities add those of the classes that carry more of them
        biased = fit_class_bias(logits, y, noise, self.alpha)
        self.last_cut_model = biased or (natural, noise)
        flagged = expected_f1_cut(wrong_label_posterior(*self.last_cut_model, y))
        joint = confident_joint(calibrated, y, k)
        if biased is not None or (confident and counts_agree(joint, n * noise.share * (k - 1) / k, self.alpha)):
            flagged |= prune_by_noise_rate(calibrated, y, joint)
        self.last_confident_joint = prune_by_noise_rate(natural, y, confident_joint(natural, y, k))
        if self.flag_rule == "mixture":
            return counted, flagged
        return counted, flagged | self.last_confident_joint

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
        views: list[tuple[Any, bool]] = [(x, False)]
        if text and self.char_ngrams:
            chars = _char_features(rep, self.char_max)
            if chars is not None:
                views.append((chars, False))
        if text and k == 2 and n <= self.char_max:
            views.append((x, True))
        # TF-IDF logistic regression needs little regularisation (C=10, as in cleanlab's text examples);
        # dense standardised features keep C=1
        c = self.c if self.c is not None else (10.0 if text else 1.0)
        use_knn = self.knn if self.knn is not None else not text  # k-NN on SVD text is weaker than the model
        # small dense tables: an RBF SVM and shrinkage LDA join the views, confident learning the cut (ADR 0074)
        small = small_dense_views(x, y, k) if self.small_views and rep.modality is Modality.TABULAR else ()
        small_table = bool(small)
        dropped: tuple[str, ...] = ()
        idx = neighbours(rep, self.k, seed)[1] if use_knn else None
        keep = np.ones(n, dtype=bool)
        passes = self.passes if n <= 20_000 else 1
        counts = np.bincount(y, minlength=k)
        prior = np.maximum(counts / n, 1e-9)
        flagged = np.zeros(n, dtype=bool)
        counted = flagged
        calibrated = np.full((n, k), 1.0 / k)
        natural = calibrated
        noise = NoiseFit(1.0, 0.0, 1.0, np.zeros(n))
        informative = False
        gate = 1.0
        for step in range(passes):
            opinions = []
            raw = []
            for view, nb in views:
                # the naive Bayes scaling does the work of the penalty's scale: default C
                p_view = _oof_proba(view, y, k, keep, self.folds, seed, 1.0 if nb else c, nb=nb)
                raw.append(p_view)
                opinions.append(_temperature(p_view, y, keep) if self.calibrate else p_view)
            extra_raw, extra_cal = [], []
            for kind in small:
                p_view = _oof_proba(x, y, k, keep, self.folds, seed, c, kind=kind)
                extra_raw.append(p_view)
                extra_cal.append(_temperature(p_view, y, keep) if self.calibrate else p_view)
            votes = _knn_proba(idx, y, k, keep.astype(np.float64)) if idx is not None else None
            if small and step == 0:
                # the gate (docs/adr/0074): the mixture's test on the product with the SVM and LDA views and on
                # the product without them (the views of docs/adr/0060), Bonferroni; not the SVM alone, whose
                # one-vs-rest Platt probabilities made the mixture's test reject on 8 of 15 clean 3-class tables.
                # It reads every view, so choosing the views below does not touch its null (docs/adr/0082).
                # With two classes a third test reads the non-linear views' product (docs/adr/0097)
                base = raw + ([votes] if votes is not None else [])
                every = fit_label_noise(np.log(np.clip(_product(base + extra_raw), 1e-300, 1.0)), y)[1]
                alone = gate_products(base, dict(zip(small, extra_raw, strict=True)), votes, k)
                gate = _noise_test(every, alone, y, len(base) + len(small))
                if self.view_gate is not None:
                    # a view that makes the product explain the labels worse leaves it (docs/adr/0082)
                    fits = fitting_views(base, extra_raw, y, self.view_gate)
                    dropped = tuple(kind for kind, fit in zip(small, fits, strict=True) if not fit)
                    small = tuple(kind for kind, fit in zip(small, fits, strict=True) if fit)
                    extra_raw = [r for r, fit in zip(extra_raw, fits, strict=True) if fit]
                    extra_cal = [r for r, fit in zip(extra_cal, fits, strict=True) if fit]
            raw += extra_raw
            opinions += extra_cal
            if votes is not None:
                raw.append(votes)
                opinions.append(votes)
            calibrated = np.mean(opinions, axis=0)
            # the views agree in log space (a product of experts): one confident view is not averaged away
            logits = np.mean([np.log(np.clip(o, 1e-12, 1.0)) for o in raw], axis=0)
            natural, noise = fit_label_noise(logits, y)
            if step == 0 and not small_table:
                gate = _noise_test(noise, raw[: len(views)], y, len(raw))
            # the test is the first pass's: the later passes train on folds chosen by looking at the labels, so
            # their likelihood ratio is no longer calibrated; they refine the estimate, not the decision
            noise = replace(noise, p_value=gate)
            # out of fold the model must beat the class priors, or its disagreements with the labels are noise,
            # not evidence (uninformative features, e.g. one categorical column)
            informative = _informative(calibrated[keep], y[keep], prior)
            flagged = counted = np.zeros(n, dtype=bool)
            self.last_confident_joint = np.zeros(n, dtype=bool)
            self.last_cut_model = None
            if gate <= self.alpha and informative and noise.share > 0:
                counted, flagged = self._flags(natural, noise, y, k, logits, calibrated, confident=small_table)
            # the next pass leaves the mixture's count out of training (ADR 0043); the confident joint's extra
            # flags only add to the final set (ADR 0048: re-fitting without them was no better)
            keep = ~counted
        self.last_probabilities = calibrated
        self.last_noise = noise
        pvalues = natural_label_pvalues(natural, y)
        other = natural.copy()
        other[rows, y] = -1.0
        alt = other.argmax(axis=1)
        # flagged records at or above 0.5 (ordered by the posterior that their label is noise), the others below
        # (ordered by doubt in the label)
        scores = np.where(flagged, 0.5 + 0.5 * noise.responsibility, 0.499 * (1.0 - calibrated[rows, y]))
        names = rep.label_names
        reasons: dict[int, tuple[str, ...]] = {}
        for i in np.flatnonzero(flagged):
            reasons[int(i)] = (
                f"labelled {names[y[i]]!r} but looks like {names[alt[i]]!r} (p={natural[i, alt[i]]:.2f} vs "
                f"{natural[i, y[i]]:.2g} for the given label; posterior {noise.responsibility[i]:.2f} of noise)",
            )
        # the findings hold the final flags, with the model the cut read: fusion re-reads each record's
        # wrong-label posterior under it once triggers have explained their records (docs/adr/0075)
        cut_q, cut_noise = self.last_cut_model or (natural, noise)
        cut_qy = cut_q[rows, y]
        wrong = wrong_label_posterior(cut_q, cut_noise, y)
        model = {
            "share": round(cut_noise.share, 6),
            "mass": float(cut_noise.responsibility.sum()),
            "n": n,
            "classes": k,
            "temperature": round(cut_noise.temperature, 4),
            "class_biases": self.last_cut_model is not None and self.last_cut_model[1] is not noise,
        }
        findings = [
            replace(
                f,
                evidence={
                    **f.evidence,
                    "noise_model": model,
                    "label_probability": [float(f"{cut_qy[r]:.4g}") for r in f.records],
                    "wrong_label_posterior": [round(float(wrong[r]), 4) for r in f.records],
                    "p_value": noise.p_value,
                },
                p_value=noise.p_value,
            )
            for f in label_issue_findings(
                self.name,
                flagged,
                y,
                alt,
                names,
                summary="{n} record(s) labelled {given!r} look like {other!r}",
                other_key="likely",
                score=score_of_severity("medium"),
                extra={"rule": f"label-noise mixture test, then flags by {self.flag_rule}"},
            )
        ]
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
                "c": c,
                "alpha": self.alpha,
                "model": "+".join(
                    [
                        "logreg(nb word)" if nb else "logreg(char tf-idf)" if v is not x else "logreg(word tf-idf)"
                        for v, nb in views
                    ]
                    + [{"svm": "svm(rbf)", "lda": "lda(shrinkage)"}[m] for m in small]
                    + (["knn"] if use_knn else [])
                ),
                # small dense tables' views the gate read but the flags' product left out (docs/adr/0082)
                "dropped_views": "+".join({"svm": "svm(rbf)", "lda": "lda(shrinkage)"}[m] for m in dropped),
                "rule": f"label-noise mixture test, then flags by {self.flag_rule}",
                "noise_share": round(noise.share, 6),
                "noise_p_value": noise.p_value,
                "informative": informative,
            },
            seconds=time.perf_counter() - t0,
            pvalues=pvalues,
        )
