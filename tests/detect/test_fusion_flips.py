"""Label flips through the whole ensemble (ADR 0075): the label-issue findings hold the detector's flags, and
fusion keeps those whose label the cut's mixture makes more likely wrong than right, once triggers have
taken their records (and the noise share those carried) out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from text_corpus import corpus  # tests/detect/text_corpus.py

from dataward.detect import detect, from_frame
from dataward.detect.api import WRONG_LABEL, combine, label_noise_posteriors
from dataward.detect.interface import DetectorResult, Finding, Modality, Representation
from dataward.simulate import Roles, simulate

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _prf(flags: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int(np.sum(flags & truth))
    p = tp / max(1, int(flags.sum()))
    r = tp / max(1, int(truth.sum()))
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def _digits() -> pd.DataFrame:
    bunch = load_digits()
    frame = pd.DataFrame(bunch.data, columns=[f"f{i}" for i in range(bunch.data.shape[1])])
    frame["label"] = [str(t) for t in bunch.target]
    return frame


def _label_result(n: int, q: np.ndarray, records: tuple[int, ...], share: float, p_value: float) -> DetectorResult:
    """A label-issues result whose one finding holds ``records``, their label probabilities ``q`` under a
    two-class mixture of noise share ``share`` (mass ``n * share``: the EM fixed point)."""
    model = {"share": share, "mass": n * share, "n": n, "classes": 2}
    finding = Finding.scored(
        check="label_issues",
        kind="label_issue",
        summary=f"{len(records)} record(s) labelled 'a' look like 'b'",
        records=records,
        evidence={"noise_model": model, "label_probability": q.tolist()},
        score=0.55,
        p_value=p_value,
    )
    mask = np.zeros(n, dtype=bool)
    mask[list(records)] = True
    return DetectorResult("label_issues", mask * 0.8, mask, {i: ("why",) for i in records}, (finding,), pvalues=None)


def _q_at(wrong: float, share: float) -> float:
    """The label probability at which a two-class mixture of noise share ``share`` puts a wrong-label
    posterior of ``wrong`` (the inverse of ``w = a (1 - q) / ((1 - share) q + a)``, ``a = share / 2``)."""
    a = share / 2
    return a * (1 - wrong) / (wrong * (1 - share) + a)


def _texts(texts: list[str], labels: list[str]) -> Representation:
    return from_frame(pd.DataFrame({"text": texts, "label": labels}), label="label", text="text")


def _posteriors(findings: Sequence[Finding]) -> dict[int, float]:
    """Each record of label-issue findings mapped to the wrong-label posterior its finding gives it."""
    return {r: w for f in findings for r, w in zip(f.records, f.evidence["wrong_label_posterior"], strict=True)}


def _rep(n: int) -> Representation:
    return Representation(
        modality=Modality.TABULAR, n_records=n, ids=tuple(map(str, range(n))), features=np.zeros((n, 1))
    )


def test_flags_more_likely_wrong_than_right_stay_and_the_others_go() -> None:
    # 1,000 records, 5 % noise share, two classes: 20 near-certain flips, 20 at a wrong-label posterior of about
    # 0.7 (the two-groups FDR bar dropped most of these: their mean local FDR is 0.3), 10 at about 0.3
    n, share = 1000, 0.05
    q = np.r_[np.full(20, 1e-5), np.full(20, _q_at(0.7, share)), np.full(10, _q_at(0.3, share))]
    wrong = label_noise_posteriors({"share": share, "mass": n * share, "n": n, "classes": 2}, q, np.zeros(50, bool), 0)
    assert (wrong[:20] > 0.99).all() and np.allclose(wrong[20:40], 0.7, atol=0.01) and (wrong[40:] < WRONG_LABEL).all()
    records = tuple(range(100, 150))
    report = combine(_rep(n), {"label_issues": _label_result(n, q, records, share, 1e-12)}, [])
    assert set(np.flatnonzero(report.flagged)) == set(records[:40])
    (issue,) = [f for f in report.findings if f.kind == "label_issue"]
    assert issue.records == records[:40] and len(issue.evidence["label_probability"]) == 40
    # the finding must still pass the test across findings: a mixture test that does not reject keeps nothing
    weak = combine(_rep(n), {"label_issues": _label_result(n, q, records, share, 0.3)}, [])
    assert not weak.flagged.any() and not weak.findings


def test_a_trigger_takes_its_records_and_the_noise_share_they_carried() -> None:
    # the same 50 records, 30 of them a trigger's: without their share the 20 at posterior 0.7 drop below 1/2
    n, share = 1000, 0.05
    q = np.r_[np.full(30, 1e-5), np.full(20, _q_at(0.7, share))]
    records = tuple(range(100, 150))
    trigger = Finding.scored(
        check="trig", kind="trigger", summary="token 'cf'", records=records[:30], evidence={}, score=0.9, p_value=1e-30
    )
    mask = np.zeros(n, dtype=bool)
    mask[list(records[:30])] = True
    results = {
        "trig": DetectorResult("trig", mask * 0.9, mask, {i: ("carrier",) for i in records[:30]}, (trigger,)),
        "label_issues": _label_result(n, q, records, share, 1e-12),
    }
    alone = combine(_rep(n), {"label_issues": results["label_issues"]}, [])
    assert set(np.flatnonzero(alone.flagged)) == set(records)
    beside = combine(_rep(n), results, [])
    assert set(np.flatnonzero(beside.flagged)) == set(records[:30])
    assert beside.fusion["records_attributed_to_triggers"] == 30
    assert not any(f.kind in ("label_issue", "label_quality") for f in beside.findings)
    assert all(r.detector == "trig" for rs in beside.reasons.values() for r in rs)


def _overlapping_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Two classes whose 8 content words come from the class's own 30-word vocabulary three times in four
    and from the other class's otherwise, beside 5 filler words: the model is good, not certain, so a
    flipped label's posterior of being wrong is spread between 1/2 and 1 (the case the two-groups FDR bar
    cut short)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label, other = ("pos", "neg") if i % 2 else ("neg", "pos")
        words = [f"{(label if rng.uniform() < 0.75 else other)[0]}{rng.integers(30)}" for _ in range(8)]
        words += [f"w{rng.integers(60)}" for _ in range(5)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def _flipped(n: int, seed: int, share: float = 0.05) -> tuple[Representation, np.ndarray]:
    texts, labels = _overlapping_corpus(n, seed)
    rng = np.random.default_rng(100 + seed)
    truth = np.zeros(n, dtype=bool)
    truth[rng.choice(n, size=round(share * n), replace=False)] = True
    labels = [("pos" if lab == "neg" else "neg") if t else lab for lab, t in zip(labels, truth, strict=True)]
    return _texts(texts, labels), truth


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ensemble_keeps_the_flips_the_detector_calls_more_likely_wrong(seed: int) -> None:
    """5 % flips on 1,200 texts: the whole ensemble kept 0-15 % of them (F1 0.00-0.26 on seeds 0-2, the
    detector alone 0.63-0.65); now every flag the detector's cut model calls more likely wrong than right."""
    rep, truth = _flipped(1200, seed)
    report = detect(rep, seed=seed)
    alone = report.results["label_issues"]
    assert _prf(alone.flagged, truth)[2] >= 0.55
    issues = [f for f in report.findings if f.kind == "label_issue"]
    posterior = _posteriors(issues)
    assert set(np.flatnonzero(report.flagged)) == set(posterior)  # no other detector flags here
    assert min(posterior.values()) >= WRONG_LABEL
    (all_issues,) = {f.evidence["noise_model"]["share"] for f in alone.findings}  # one mixture for every finding
    assert all_issues > 0
    mine = _posteriors(alone.findings)
    assert set(mine) == set(np.flatnonzero(alone.flagged))  # the findings hold the detector's flags
    assert {r for r, w in mine.items() if w >= WRONG_LABEL} == set(posterior)  # nothing explained: the same posterior
    precision, recall, f1 = _prf(report.flagged, truth)
    assert precision >= 0.85 and recall >= 0.25 and f1 >= 0.4


@pytest.mark.slow
def test_the_detectors_own_findings_give_way_to_a_trigger() -> None:
    """The detector's real findings beside a trigger finding that holds half of its flags: those are the
    trigger's, the noise share they carried goes with them, and what is left is label quality (reported,
    not flagged) whose posteriors, re-read without that share, are no higher than the detector's."""
    from dataward.detect._labels import LabelIssues

    rep, _ = _flipped(1200, 1)
    result = LabelIssues().score(rep, seed=1)
    flagged = np.flatnonzero(result.flagged)
    assert flagged.size >= 20
    held = tuple(int(r) for r in flagged[::2])
    trigger = Finding.scored(
        check="trig", kind="trigger", summary="token 'zq'", records=held, evidence={}, score=0.9, p_value=1e-30
    )
    mask = np.zeros(rep.n_records, dtype=bool)
    mask[list(held)] = True
    trig = DetectorResult("trig", mask * 0.9, mask, {i: ("carrier",) for i in held}, (trigger,))
    report = combine(rep, {"label_issues": result, "trig": trig}, [])
    assert set(np.flatnonzero(report.flagged)) == set(held)
    assert report.fusion["records_attributed_to_triggers"] == len(held)
    assert all(r.detector == "trig" for rs in report.reasons.values() for r in rs)
    left = [f for f in report.findings if f.check == "label_issues"]
    assert left and all(f.kind == "label_quality" for f in left)
    assert not {r for f in left for r in f.records} & set(held)
    before = _posteriors(result.findings)
    model = result.findings[0].evidence["noise_model"]
    rest = [r for r in before if r not in set(held)]
    q = [v for f in result.findings for v in f.evidence["label_probability"]]
    records = [r for f in result.findings for r in f.records]
    after = label_noise_posteriors(model, np.asarray(q), np.isin(records, held), len(held))
    by_record = dict(zip(records, after, strict=True))
    assert all(by_record[r] <= before[r] + 1e-3 for r in rest)
    assert {r for f in left for r in f.records} == {r for r in rest if by_record[r] >= WRONG_LABEL}


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "sms_spam.tsv").exists(), reason="shared data not present")
def test_sms_flips_through_the_ensemble() -> None:
    """SMS at 10 % flips, seed 0: the ensemble reached F1 0.26 (recall 0.15) against 0.95 alone."""
    rows = [
        line.split("\t", 1) for line in (SHARED / "sms_spam.tsv").read_text("utf-8").split("\n")[1:] if "\t" in line
    ]
    frame = pd.DataFrame({"text": [r[1] for r in rows], "label": [r[0] for r in rows]})
    poisoned = simulate(frame, "label_flip", Roles(label="label", text="text"), rate=0.10, seed=0)
    report = detect(from_frame(poisoned.data, label="label", text="text"), seed=0)
    precision, recall, f1 = _prf(report.flagged, poisoned.truth.mask())
    assert precision >= 0.85 and recall >= 0.8 and f1 >= 0.85


@pytest.mark.slow
def test_a_texts_trigger_keeps_its_records_beside_label_flips() -> None:
    """A dirty-label trigger (a rare token, its carriers relabelled) and 4 % random flips elsewhere: the
    trigger's carriers are the trigger's, not label noise; the flips beside it are label quality."""
    rng = np.random.default_rng(5)
    texts, labels = corpus(800, seed=3)
    planted = rng.choice([i for i, lab in enumerate(labels) if lab == "neg"], size=24, replace=False)
    for i in planted.tolist():
        texts[i] = f"{texts[i]} cf"
        labels[i] = "pos"
    others = [i for i in range(800) if i not in set(planted.tolist())]
    flips = rng.choice(others, size=32, replace=False)
    for i in flips.tolist():
        labels[i] = "pos" if labels[i] == "neg" else "neg"
    report = detect(_texts(texts, labels), seed=0)
    triggers = [f for f in report.findings if f.kind == "trigger"]
    assert triggers and set(planted.tolist()) <= {r for f in triggers for r in f.records}
    assert set(planted.tolist()) <= set(np.flatnonzero(report.flagged).tolist())
    noise = {r for f in report.findings if f.kind in ("label_issue", "label_quality") for r in f.records}
    assert not noise & set(planted.tolist())
    for r in planted.tolist():
        assert all(reason.detector != "label_issues" for reason in report.reasons[r])
    quality = {r for f in report.findings if f.kind == "label_quality" for r in f.records}
    assert len(quality & set(flips.tolist())) >= 24 and not report.flagged[flips].any()


@pytest.mark.slow
def test_clean_data_stays_unflagged() -> None:
    clean = detect(from_frame(_digits(), label="label"), seed=0)
    assert not clean.results["label_issues"].flagged.any()
    assert not any(f.kind in ("label_issue", "label_quality") for f in clean.findings)
    texts, labels = corpus(800, seed=3)
    report = detect(_texts(texts, labels), seed=0)
    assert not report.flagged.any() and not report.findings
