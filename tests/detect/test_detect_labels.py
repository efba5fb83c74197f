"""Label-issue detector and label-flip attacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_wine

from dataward.detect import detect, from_arrays
from dataward.detect._labels import LabelIssues
from dataward.detect.interface import Modality
from dataward.simulate import Roles, SimulationError, simulate
from dataward.simulate.bench import score_flags


def _wine_frame() -> pd.DataFrame:
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].map({0: "a", 1: "b", 2: "c"})
    return frame


def test_random_flip_attack_records_truth_and_leaves_input_alone() -> None:
    frame = _wine_frame()
    before = frame.copy()
    result = simulate(frame, "label_flip", Roles(label="label"), rate=0.1, seed=3)
    pd.testing.assert_frame_equal(frame, before)
    changed = list(result.truth.changed)
    assert len(changed) == round(0.1 * len(frame))
    assert all(result.data["label"].iloc[i] != frame["label"].iloc[i] for i in changed)
    untouched = np.setdiff1d(np.arange(len(frame)), changed)
    assert (result.data["label"].iloc[untouched] == frame["label"].iloc[untouched]).all()
    assert result.truth.how[changed[0]].startswith("label ")


def test_targeted_flip_moves_source_class_to_target() -> None:
    frame = _wine_frame()
    result = simulate(
        frame, "targeted_flip", Roles(label="label"), rate=0.05, target="c", seed=1, params={"source": "a"}
    )
    changed = list(result.truth.changed)
    assert (frame["label"].iloc[changed] == "a").all()
    assert (result.data["label"].iloc[changed] == "c").all()
    assert result.truth.target == "c"
    with pytest.raises(SimulationError):
        simulate(frame, "targeted_flip", Roles(label="label"), rate=0.05, target="zzz")


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.05, 0.10])
def test_label_issues_find_random_flips_on_digits(rate: float) -> None:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(11)
    idx = rng.choice(len(y), round(rate * len(y)), replace=False)
    noisy = y.copy()
    noisy[idx] = (noisy[idx] + rng.integers(1, 10, idx.size)) % 10
    truth = np.zeros(len(y), dtype=bool)
    truth[idx] = True
    rep = from_arrays(x / 16.0, noisy, modality=Modality.IMAGE)
    result = LabelIssues().score(rep, seed=0)
    score = score_flags("labels", result.flagged, result.scores, truth, 0.0)
    assert score.f1 >= 0.92, score
    assert score.auroc is not None and score.auroc > 0.99
    # flagged records sit at or above 0.5, the others below
    assert result.scores[result.flagged].min() >= 0.5 > result.scores[~result.flagged].max()
    some = int(np.flatnonzero(result.flagged & truth)[0])
    assert "labelled" in result.reasons[some][0]
    assert result.findings and result.findings[0].kind == "label_issue"


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_label_issues_quiet_on_clean_wine_and_deterministic() -> None:
    frame = _wine_frame()
    first = detect(frame, label="label", seed=5, detectors=["label_issues"])
    second = detect(frame, label="label", seed=5, detectors=["label_issues"])
    assert first.n_flagged <= 0.01 * len(frame) + 1
    np.testing.assert_array_equal(first.scores, second.scores)


def _calibrated_labels(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, the natural probabilities they stand for, and labels drawn from those probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(q, axis=1)).sum(axis=1).astype(np.int64)
    return logits, q, y


@pytest.mark.parametrize("k", [2, 3, 10])
def test_natural_label_pvalues_are_valid_and_uniform_under_the_null(k: int) -> None:
    from scipy import stats

    from dataward.detect._labels import natural_label_pvalues

    _, q, y = _calibrated_labels(20_000, k, seed=k)
    p = natural_label_pvalues(q, y)
    for t in (0.001, 0.01, 0.05, 0.2, 0.5):
        assert np.mean(p <= t) <= t + 3 * np.sqrt(t / len(p)) + 1e-4
    # randomising the atom at the observed label makes them exactly uniform: the deterministic p-values
    # are that uniform variable rounded up, so the check covers how far from uniform they are, too
    rng = np.random.default_rng(0)
    rows = np.arange(len(y))
    randomised = p - rng.uniform(size=len(y)) * q[rows, y]
    assert stats.kstest(randomised, "uniform").pvalue > 1e-3
    assert np.all(randomised <= p)


def test_label_noise_mixture_finds_the_noise_share_and_no_noise_in_natural_labels() -> None:
    from dataward.detect._labels import fit_label_noise

    logits, _, y = _calibrated_labels(4000, 4, seed=1)
    # labels drawn from the model itself: natural ambiguity only, nothing to find
    _, clean = fit_label_noise(logits, y)
    assert clean.p_value > 1e-3 and clean.share < 0.02 and not (clean.responsibility > 0.5).any()
    # a tenth of the labels replaced at random: the share is recovered, the flips have high posteriors
    rng = np.random.default_rng(2)
    flip = rng.uniform(size=len(y)) < 0.1
    noisy = np.where(flip, (y + rng.integers(1, 4, len(y))) % 4, y)
    _, fit = fit_label_noise(logits, noisy)
    assert fit.p_value < 1e-10 and 0.08 < fit.share < 0.2
    flagged = fit.responsibility > 0.5
    assert flagged[flip].mean() > 0.5 and (~flip[flagged]).mean() < 0.2


def test_label_noise_left_after_a_trigger_explains_most_of_it() -> None:
    from dataward.detect.api import label_noise_posteriors as wrong_after

    # 1,000 records, noise share 3 %: 25 flagged with tiny label probabilities, all but 5 explained
    q = np.full(25, 1e-4)
    model = {"share": 0.03, "mass": 26.0, "n": 1000, "classes": 2}
    assert (wrong_after(model, q, np.zeros(25, dtype=bool), 0) > 0.99).all()
    wrong = wrong_after(model, q, np.arange(25) < 20, 20)
    assert not wrong[:20].any() and (wrong[20:] > 0.9).all()  # 5 records of 1e-4 still beat a 0.5 % share
    # with label probabilities of 1 %, the share left (about 0.5 %) no longer calls them wrong
    q = np.r_[np.full(20, 1e-4), np.full(5, 0.01)]
    assert (wrong_after(model, q, np.arange(25) < 20, 20) < 0.5).all()
    assert not wrong_after({**model, "share": 0.0}, q, np.zeros(25, dtype=bool), 0).any()
    # nothing explained: the posterior is the detector's own (wrong_label_posterior under the same mixture)
    from dataward.detect._labels import NoiseFit, wrong_label_posterior

    model = {"share": 0.02, "mass": 20.0, "n": 1000, "classes": 2}
    q = np.r_[np.full(10, 1e-5), np.full(10, 0.0065), np.full(10, 0.5)]
    fit = NoiseFit(1.0, 0.02, 1e-9, np.zeros(30))
    mine = wrong_label_posterior(np.c_[q, 1.0 - q], fit, np.zeros(30, dtype=np.int64))
    # mass n * share: the share is the EM fixed point, so nothing explained leaves it where the detector put it
    assert np.allclose(wrong_after(model, q, np.zeros(30, dtype=bool), 0), mine, atol=1e-6)
    assert (mine[:10] > 0.99).all() and (mine[10:20] > 0.5).all() and (mine[20:] < 0.05).all()


def _blobs(n_per: int, k: int, seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes in 2-D around the corners of a polygon: a known, partly overlapping truth."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(k) / k
    centres = 3.0 * np.c_[np.cos(angles), np.sin(angles)]
    y = np.repeat(np.arange(k), n_per)
    return centres[y] + rng.normal(scale=spread, size=(y.size, 2)), y


def _true_proba(x: np.ndarray, k: int, spread: float = 1.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    centres = 3.0 * np.c_[np.cos(angles), np.sin(angles)]
    logits = -((x[:, None, :] - centres[None]) ** 2).sum(axis=2) / (2 * spread**2)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_confident_joint_counts_one_noisy_class_pair() -> None:
    from dataward.detect._labels import confident_joint, prune_by_noise_rate

    x, y = _blobs(400, 3, seed=4)
    proba = _true_proba(x, 3)
    rng = np.random.default_rng(5)
    # asymmetric noise: 15 % of class 0 relabelled as 1, nothing else touched
    flip = (y == 0) & (rng.uniform(size=y.size) < 0.15)
    noisy = np.where(flip, 1, y)
    joint = confident_joint(proba, noisy, 3)
    # calibrated: each row sums to the records given that label
    np.testing.assert_allclose(joint.sum(axis=1), np.bincount(noisy, minlength=3))
    # the noisy pair (given 1, truly 0) carries the count; the opposite direction only the natural overlap
    assert abs(joint[1, 0] - flip.sum()) <= 0.35 * flip.sum()
    assert joint[0, 1] < 0.5 * joint[1, 0] and joint[2, 0] < 0.5 * joint[1, 0]
    flagged = prune_by_noise_rate(proba, noisy, joint)
    assert (noisy[flagged] == 1).mean() > 0.8  # flags come from the noisy class
    precision = (flagged & flip).sum() / max(1, flagged.sum())
    recall = (flagged & flip).sum() / flip.sum()
    assert precision > 0.8 and recall > 0.75, (precision, recall)
    # the model's own argmax never contradicts a flag
    assert not (flagged & (proba.argmax(axis=1) == noisy)).any()


def test_confident_joint_rule_on_clean_labels_flags_only_natural_overlap() -> None:
    from dataward.detect._labels import confident_joint, prune_by_noise_rate

    x, y = _blobs(300, 4, seed=6)
    proba = _true_proba(x, 4)
    flagged = prune_by_noise_rate(proba, y, confident_joint(proba, y, 4))
    # true labels: whatever is flagged sits on the wrong side of a boundary (a Bayes error the rule cannot
    # tell from a flip); the mixture test upstream is what keeps clean data quiet
    assert (proba[flagged, :].max(axis=1) > proba[flagged, y[flagged]]).all()
    assert flagged.mean() <= (proba.argmax(axis=1) != y).mean() + 1e-9


@pytest.mark.slow
def test_flag_rules_mixture_by_default_union_on_request() -> None:
    """The default rule flags the mixture's expected-F1 cut; the opt-in union adds the confident joint's flags
    (same fit), and an unknown rule is refused with a one-line error."""
    from dataward.detect.interface import DetectionError

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(5)
    idx = rng.choice(len(y), 90, replace=False)
    noisy = y.copy()
    noisy[idx] = (noisy[idx] + rng.integers(1, 10, idx.size)) % 10
    rep = from_arrays(x / 16.0, noisy, modality=Modality.IMAGE)
    default = LabelIssues()
    mixture = default.score(rep, seed=0)
    union = LabelIssues(flag_rule="mixture+confident-joint").score(rep, seed=0)
    assert default.last_confident_joint is not None
    assert np.array_equal(union.flagged, mixture.flagged | default.last_confident_joint)
    assert mixture.flagged.sum() > 0 and union.flagged.sum() >= mixture.flagged.sum()
    with pytest.raises(DetectionError, match="unknown flag_rule"):
        LabelIssues(flag_rule="union")


def test_expected_f1_cut_maximises_the_plug_in_expected_f1() -> None:
    from dataward.detect._labels import expected_f1_cut

    rng = np.random.default_rng(3)
    posterior = np.concatenate([rng.uniform(0.6, 1.0, 20), rng.uniform(0.0, 0.3, 200)])
    flagged = expected_f1_cut(posterior)
    order = np.argsort(-posterior)

    def expected_f1(m: int) -> float:
        return float(2.0 * posterior[order[:m]].sum() / (m + posterior.sum()))

    m = int(flagged.sum())
    assert flagged[order[:m]].all()  # the most probable first
    assert all(expected_f1(m) >= expected_f1(j) - 1e-12 for j in range(1, posterior.size + 1))
    assert 20 <= m < 60  # the near-certain ones, and not the long tail of doubtful ones
    assert not expected_f1_cut(np.zeros(50)).any()


def test_wrong_label_posterior_leaves_out_noisy_draws_that_hit_the_truth() -> None:
    from dataward.detect._labels import NoiseFit, wrong_label_posterior

    q = np.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])
    y = np.array([1, 0, 0])
    noise = NoiseFit(1.0, 0.2, 0.0, np.zeros(3))
    w = wrong_label_posterior(q, noise, y)
    # labelled 1 with q_1 = 0.1: noise 0.1 * 0.9 against natural 0.8 * 0.1 + 0.1
    assert w[0] == pytest.approx(0.1 * 0.9 / (0.8 * 0.1 + 0.1))
    assert w[1] == pytest.approx(0.1 * 0.5 / (0.8 * 0.5 + 0.1))
    assert w[2] == 0.0  # the label is surely the true class: never wrong


def test_class_bias_taken_only_when_the_labels_ask_for_it() -> None:
    from dataward.detect._labels import fit_class_bias, fit_label_noise

    rng = np.random.default_rng(4)
    n = 6000
    truth = (rng.uniform(size=n) < 0.15).astype(np.int64)  # 15 % minority
    score = np.where(truth == 1, 1.0, -1.0) * 4.0 + rng.normal(scale=2.0, size=n)
    # the true log-odds of the minority: the score's likelihood ratio plus the prior's
    logits = np.column_stack([np.zeros(n), 2.0 * score + np.log(0.15 / 0.85)])
    flip = rng.uniform(size=n) < 0.1
    y = np.where(flip, 1 - truth, truth)
    # a model fitted to the flipped labels leans towards the minority everywhere (its intercept follows the
    # given shares): the biases are asked for and recover the flips better than the temperature alone
    leaning = logits + np.array([0.0, 1.5])
    natural, noise = fit_label_noise(leaning, y)
    biased = fit_class_bias(leaning, y, noise, 0.01)
    assert biased is not None
    q_b, noise_b = biased
    assert noise_b.p_value == noise.p_value and noise_b.share > 0
    from sklearn.metrics import roc_auc_score

    rows = np.arange(n)
    assert roc_auc_score(flip, -q_b[rows, y]) >= roc_auc_score(flip, -natural[rows, y]) - 1e-9
    # the same labels on logits without the lean: no bias is asked for
    natural, noise = fit_label_noise(logits, y)
    assert fit_class_bias(logits, y, noise, 0.01) is None
    # no noise, nothing to refit
    assert fit_class_bias(logits, truth, fit_label_noise(logits, truth)[1], 0.01) is None


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_noise_test_takes_the_model_view_when_the_knn_floor_hides_the_flips() -> None:
    """On 150 iris records with 8 flips, the product with the k-NN vote did not reject (p 0.026) while the
    logistic view alone does: the first-pass test over both (Bonferroni) flags them; clean iris stays quiet."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    frame["label"] = frame["label"].astype(str)
    poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.05, seed=0)
    truth = poisoned.truth.mask()
    from dataward.detect import from_frame

    result = LabelIssues().score(from_frame(poisoned.data, label="label"), seed=0)
    assert result.params["noise_p_value"] <= 0.01
    from sklearn.metrics import f1_score

    assert f1_score(truth, result.flagged) >= 0.75
    clean = LabelIssues().score(from_frame(frame, label="label"), seed=0)
    assert not clean.flagged.any() and clean.params["noise_p_value"] > 0.05


def test_small_dense_views_join_only_small_dense_tables_with_enough_records_per_class() -> None:
    from scipy import sparse

    from dataward.detect._labels import SMALL_CLASS_MIN, SMALL_MAX, small_dense_views

    rng = np.random.default_rng(0)
    x = rng.normal(size=(SMALL_MAX, 4))
    y = np.arange(SMALL_MAX) % 3
    assert small_dense_views(x, y, 3) == ("svm", "lda")
    # one record too many, text n-grams (sparse), a class below the minimum, one class: the views alone
    assert small_dense_views(rng.normal(size=(SMALL_MAX + 1, 4)), np.arange(SMALL_MAX + 1) % 3, 3) == ()
    assert small_dense_views(sparse.csr_matrix(x), y, 3) == ()
    few = y.copy()
    few[np.flatnonzero(few == 2)[SMALL_CLASS_MIN - 1 :]] = 0
    assert np.bincount(few)[2] == SMALL_CLASS_MIN - 1
    assert small_dense_views(x, few, 3) == ()
    assert small_dense_views(x, np.zeros(SMALL_MAX, dtype=int), 1) == ()


def test_small_dense_views_in_the_detector_on_wine_not_on_digits_or_text() -> None:
    from dataward.detect import from_frame

    wine = LabelIssues().score(from_frame(_wine_frame(), label="label"), seed=0)
    assert {"svm(rbf)", "lda(shrinkage)", "knn"} <= set(wine.params["model"].split("+"))
    off = LabelIssues(small_views=False).score(from_frame(_wine_frame(), label="label"), seed=0)
    assert {"svm(rbf)", "lda(shrinkage)"}.isdisjoint(off.params["model"].split("+"))
    texts = [f"good film number {i}" if i % 2 else f"bad film number {i}" for i in range(60)]
    frame = pd.DataFrame({"text": texts, "label": ["pos" if i % 2 else "neg" for i in range(60)]})
    text = LabelIssues().score(from_frame(frame, label="label", text="text"), seed=0)
    assert "svm" not in text.params["model"] and "lda" not in text.params["model"]


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_small_dense_views_find_more_flips_on_wine_than_the_views_alone() -> None:
    """Seeded 5 % flips on wine (9 of 178 labels), seeds 0-2: with the SVM and LDA views and confident
    learning in the cut, F1 1.0 / 0.94 / 1.0 against 0.95 / 0.88 / 0.95 with the logistic model and the k-NN
    vote alone (docs/adr/0074)."""
    from sklearn.metrics import f1_score

    from dataward.detect import from_frame

    frame = _wine_frame()
    new, old = [], []
    for seed in range(3):
        poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.05, seed=seed)
        truth = poisoned.truth.mask()
        rep = from_frame(poisoned.data, label="label")
        new.append(f1_score(truth, LabelIssues().score(rep, seed=seed).flagged))
        old.append(f1_score(truth, LabelIssues(small_views=False).score(rep, seed=seed).flagged))
    assert all(a >= b for a, b in zip(new, old, strict=True)), (new, old)
    assert np.mean(new) >= np.mean(old) + 0.03, (new, old)
    assert min(new) >= 0.9, new


def test_small_dense_views_keep_the_gate_quiet_on_natural_ambiguity() -> None:
    """Labels drawn from a smooth 3-class model (ambiguity, no flips): the gate does not reject, though the
    mixture's test on the SVM view alone does (its one-vs-rest Platt probabilities are too sharp for the
    mixture): the SVM joins the gate's product, not the one-view tests (docs/adr/0074); the flags' product
    leaves it out here, as it explains the labels worse than the views without it (docs/adr/0082)."""
    from dataward.detect._labels import _oof_proba, fit_label_noise

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 8))
    z = x @ (rng.normal(size=(8, 3)) * 1.5)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((400, 1))).argmax(axis=1)
    rep = from_arrays(x, y, modality=Modality.TABULAR)
    svm = _oof_proba(rep.features, y, 3, np.ones(400, dtype=bool), 5, 2, 1.0, kind="svm")
    assert fit_label_noise(np.log(np.clip(svm, 1e-12, 1.0)), y)[1].p_value <= 0.01
    result = LabelIssues().score(rep, seed=2)
    assert "svm(rbf)" not in result.params["model"] and result.params["dropped_views"] == "svm(rbf)"
    assert result.params["noise_p_value"] > 0.01
    assert not result.flagged.any()


@pytest.mark.parametrize("kind", ["svm", "lda"])
def test_small_dense_views_survive_a_class_left_with_one_training_record(kind: str) -> None:
    """The second pass leaves the first pass's count out of training; a class can be left with one record
    in a training fold, which the SVM's inner Platt split cannot take (the fold falls back to the logistic
    model)."""
    import warnings

    from dataward.detect._labels import _oof_proba

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100, dtype=int), np.ones(100, dtype=int), np.full(10, 2)]
    x = rng.normal(size=(210, 4)) + y[:, None]
    keep = np.ones(210, dtype=bool)
    keep[200:209] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = _oof_proba(x, y, 3, keep, 5, 0, 1.0, kind=kind)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
    # the well-represented classes are still told apart out of fold
    assert (p[:200].argmax(axis=1) == y[:200]).mean() > 0.6


def test_confident_learning_joins_only_where_its_count_agrees_with_the_mixture() -> None:
    from dataward.detect._labels import counts_agree

    joint = np.array([[90.0, 6.0], [4.0, 100.0]])  # 10 records counted as wrong labels
    assert counts_agree(joint, 10.0, 0.01)
    assert counts_agree(joint, 4.0, 0.01)  # (10 - 4) / sqrt(14) = 1.6 < 2.33
    assert not counts_agree(joint, 1.0, 0.01)  # (10 - 1) / sqrt(11) = 2.7
    # overlapping classes: confident learning counts natural ambiguity (50) far above the mixture's count (16)
    assert not counts_agree(np.array([[150.0, 30.0], [20.0, 200.0]]), 16.0, 0.01)


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_small_dense_views_are_for_tables_not_images() -> None:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(y), 300, replace=False)
    image = LabelIssues().score(from_arrays(x[rows] / 16.0, y[rows], modality=Modality.IMAGE), seed=0)
    assert "svm(rbf)" not in image.params["model"]
    table = LabelIssues().score(from_arrays(x[rows], y[rows], modality=Modality.TABULAR), seed=0)
    assert "svm(rbf)" in table.params["model"]


def test_fitting_views_drops_a_view_that_explains_the_labels_worse() -> None:
    """Labels drawn from a logistic model: a second view close to it stays, one that is confidently wrong on
    a third of the records leaves the product (docs/adr/0082), in either order."""
    from dataward.detect._labels import fitting_views

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    q1 = 1.0 / (1.0 + np.exp(-3.0 * x))
    y = (rng.random(n) < q1).astype(int)
    q = np.c_[1.0 - q1, q1]
    close = np.clip(q + rng.normal(scale=0.03, size=(n, 1)) * [1.0, -1.0], 0.01, 0.99)
    wrong = q.copy()
    wrong[x > 0.5] = wrong[x > 0.5][:, ::-1]
    assert fitting_views([q], [close, wrong], y, 2.0) == [True, False]
    assert fitting_views([q], [wrong, close], y, 2.0) == [False, True]
    assert fitting_views([q], [close], y, 2.0) == [True]


def test_small_table_flags_are_the_cut_and_confident_learning_on_the_shared_probabilities() -> None:
    """Breast cancer, 10 % seeded flips (57 of 569), seed 1: the flags are exactly the expected-F1 cut under the
    model the cut read joined with confident learning on the probabilities the detector exports (what the
    benchmark feeds cleanlab), so the two can differ only by the cut's records beyond confident learning's;
    here those are few (docs/adr/0092: over seeds 0-29 the cut added 47 records to confident learning's, 20
    of them flips), and the class-bias test asks for biases (imbalanced classes, 357 / 212)."""
    from sklearn.datasets import load_breast_cancer

    from dataward.detect import from_frame
    from dataward.detect._labels import confident_joint, expected_f1_cut, prune_by_noise_rate, wrong_label_posterior

    data = load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=[f"f{i}" for i in range(data.data.shape[1])])
    frame["label"] = [str(data.target_names[t]) for t in data.target]
    poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.10, seed=1)
    truth = poisoned.truth.mask()
    rep = from_frame(poisoned.data, label="label")
    detector = LabelIssues()
    result = detector.score(rep, seed=1)
    assert rep.labels is not None and detector.last_cut_model is not None
    assert detector.last_probabilities is not None and detector.last_noise is not None
    y, probs = rep.labels, detector.last_probabilities
    cut = expected_f1_cut(wrong_label_posterior(*detector.last_cut_model, y))
    learning = prune_by_noise_rate(probs, y, confident_joint(probs, y, 2))
    np.testing.assert_array_equal(result.flagged, cut | learning)
    assert detector.last_cut_model[1] is not detector.last_noise  # the class-biased refit
    extra = result.flagged & ~learning
    assert 0 < extra.sum() <= 0.05 * result.flagged.sum()
    from sklearn.metrics import f1_score

    assert f1_score(truth, result.flagged) >= 0.85


@pytest.mark.slow  # over half a CPU-second (docs/adr/0046): left to make test
def test_two_class_gate_reads_the_non_linear_views_on_two_moons() -> None:
    """Two moons with four noise columns and 5 % flips (25 records): every product the gate tested held a
    linear view, which misfits the curved boundary, and none rejected (p 0.049 after Bonferroni), so nothing
    was flagged; the SVM and k-NN product rejects (docs/adr/0097). The unflipped table stays quiet, and with
    three classes the gate keeps its two products (the SVM's one-vs-rest Platt probabilities are not a
    likelihood fit)."""
    from sklearn.datasets import make_moons
    from sklearn.metrics import f1_score

    from dataward.detect import from_frame
    from dataward.detect._labels import gate_products

    x, y = make_moons(500, noise=0.2, random_state=4)
    x = np.hstack([x, np.random.default_rng(4).normal(size=(500, 4))])
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["label"] = [f"c{t}" for t in y]
    poisoned = simulate(frame, "label_flip", Roles(label="label"), rate=0.05, seed=4)
    result = LabelIssues().score(from_frame(poisoned.data, label="label"), seed=4)
    assert result.params["noise_p_value"] <= 0.01
    assert f1_score(poisoned.truth.mask(), result.flagged) >= 0.4
    clean = LabelIssues().score(from_frame(frame, label="label"), seed=4)
    assert not clean.flagged.any() and clean.params["noise_p_value"] > 0.05

    p = np.full((10, 2), 0.5)
    assert len(gate_products([p, p], {"svm": p, "lda": p}, p, 2)) == 2
    assert len(gate_products([p, p], {"svm": p, "lda": p}, p, 3)) == 1
    assert len(gate_products([p], {"svm": p}, None, 2)) == 1
