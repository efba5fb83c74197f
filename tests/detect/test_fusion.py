"""Calibrated evidence and fusion: BH against a reference implementation, valid nulls, FDR over findings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from dataward.core.evidence import (
    benjamini_hochberg,
    bh_adjusted,
    conformal_pvalues,
    empirical_null_pvalues,
    severity_of_evidence,
)
from dataward.detect.api import combine
from dataward.detect.interface import DetectorResult, Finding, Modality, Representation


@pytest.mark.parametrize("seed", range(20))
def test_benjamini_hochberg_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=int(rng.integers(0, 30)))])
    rng.shuffle(p)
    adjusted = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose(bh_adjusted(p), adjusted, rtol=1e-12)
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), adjusted <= 0.05)


def test_nulls_are_valid_on_null_data() -> None:
    # under each null's assumption the p-values are super-uniform, P(p <= t) <= t: exchangeable scores for
    # the conformal one, a logit-normal bulk for the empirical null
    rng = np.random.default_rng(0)
    ref, test = rng.normal(size=5000), rng.normal(size=5000)
    for p in (conformal_pvalues(test, ref), empirical_null_pvalues(special.expit(test))):
        for t in (0.01, 0.05, 0.2):
            assert np.mean(p <= t) <= t * 1.25 + 0.003
    assert not benjamini_hochberg(conformal_pvalues(test, ref)).any()


def test_severity_follows_evidence_and_effect_size() -> None:
    assert severity_of_evidence(0.5) == "info"
    assert severity_of_evidence(0.01) == "low"
    assert severity_of_evidence(1e-4, 0.5) == "medium"
    assert severity_of_evidence(1e-10, 0.0001) == "medium"  # strong but tiny: not high
    assert severity_of_evidence(1e-10, 0.01) == "high"
    assert severity_of_evidence(1e-20, 0.02) == "critical"
    assert severity_of_evidence(1e-20, 0.02, cap="medium") == "medium"
    assert severity_of_evidence(None) == "low"


def _rep(n: int) -> Representation:
    return Representation(
        modality=Modality.TABULAR, n_records=n, ids=tuple(map(str, range(n))), features=np.zeros((n, 1))
    )


def _result(
    name: str, n: int, flagged: list[int], findings: tuple[Finding, ...], p: np.ndarray | None = None
) -> DetectorResult:
    mask = np.zeros(n, dtype=bool)
    mask[flagged] = True
    return DetectorResult(name, mask * 0.8, mask, {i: ("why",) for i in flagged}, findings, pvalues=p)


def test_fusion_drops_findings_the_fdr_rejects_and_attributes_trigger_records() -> None:
    n = 100
    trigger = Finding.scored(
        check="trig", kind="trigger", summary="token 'cf'", records=(1, 2, 3), evidence={}, score=0.8, p_value=1e-12
    )
    weak = Finding.scored(
        check="weak", kind="outlier", summary="a few odd ones", records=(50, 51), evidence={}, score=0.5, p_value=0.4
    )
    labels = Finding.scored(
        check="label_issues",
        kind="label_issue",
        summary="4 record(s) labelled 'a' look like 'b'",
        records=(2, 3, 70, 71),
        evidence={},
        score=0.55,
    )
    results = {
        "trig": _result("trig", n, [1, 2, 3], (trigger,)),
        "weak": _result("weak", n, [50, 51], (weak,)),
        "label_issues": _result("label_issues", n, [2, 3, 70, 71], (labels,)),
    }
    report = combine(_rep(n), results, [])
    # weak finding rejected by BH; 70 and 71 are label quality beside the trigger, reported, not flagged
    assert set(np.flatnonzero(report.flagged)) == {1, 2, 3}
    by_detector = {f.check: f for f in report.findings}
    assert "weak" not in by_detector
    assert by_detector["label_issues"].records == (70, 71)  # 2 and 3 are the trigger's
    assert by_detector["label_issues"].kind == "label_quality"
    assert "2 record(s)" in by_detector["label_issues"].summary
    assert all(r.detector != "label_issues" for r in report.reasons[2])
    assert report.fusion["records_attributed_to_triggers"] == 2 and report.fusion["records_dropped_by_fdr"] == 2
    assert report.fusion["records_label_quality"] == 2
    assert report.pvalues is not None and report.pvalues.shape == (n,)


def _finding(
    check: str,
    kind: str,
    summary: str,
    records: tuple[int, ...],
    evidence: dict[str, object],
    score: float,
    p_value: float | None = None,
) -> Finding:
    return Finding.scored(
        check=check, kind=kind, summary=summary, records=records, evidence=evidence, score=score, p_value=p_value
    )


def test_flags_of_a_detector_with_record_pvalues_must_be_discoveries() -> None:
    n = 200
    p = np.ones(n)
    p[[10, 11]] = [1e-9, 0.2]  # one record far beyond the bar, one ordinary
    issue = _finding("labels", "label_issue", "2 record(s) labelled 'a' look like 'b'", (10, 11), {}, 0.55)
    report = combine(_rep(n), {"labels": _result("labels", n, [10, 11], (issue,), p)}, [])
    assert set(np.flatnonzero(report.flagged)) == {10}
    assert [f.records for f in report.findings] == [(10,)]
    assert report.fusion["uncalibrated"] == [] and report.fusion["records_dropped_by_fdr"] == 1


def test_label_noise_a_trigger_explains_is_not_flagged_again() -> None:
    # 20 records a trigger explains carried the noise share; the 3 others are ordinary ambiguous records
    n = 1000
    trig_records = tuple(range(20))
    trigger = _finding("trig", "trigger", "token 'cf'", trig_records, {}, 0.9, p_value=1e-30)
    recs = (*trig_records, 500, 501, 502)
    evidence = {
        "noise_model": {"share": 0.045, "mass": 23.5, "n": n, "classes": 2},
        "label_probability": [1e-5] * 20 + [0.01] * 3,
    }
    issue = _finding("labels", "label_issue", "23 record(s) labelled 'a' look like 'b'", recs, evidence, 0.55, 1e-12)
    results = {
        "trig": _result("trig", n, list(trig_records), (trigger,)),
        "labels": _result("labels", n, list(recs), (issue,), np.ones(n)),
    }
    report = combine(_rep(n), results, [])
    assert set(np.flatnonzero(report.flagged)) == set(trig_records)
    assert all(f.check == "trig" for f in report.findings)
    # without the trigger the same label finding stands (its records that pass the FDR bar)
    alone = set(np.flatnonzero(combine(_rep(n), {"labels": results["labels"]}, []).flagged))
    assert set(trig_records) < alone <= set(recs)


def test_a_weaker_trigger_that_borrows_a_stronger_ones_records_is_subsumed() -> None:
    n = 2000
    combo = tuple(range(50))  # the planted combination: 50 carriers
    one_word = (*range(45), *range(1000, 1030))  # one of its words: 45 of them plus 30 natural carriers
    other = tuple(range(1500, 1510))  # an unrelated trigger of the same label: shares nothing
    label = {"label": "ham"}
    findings = {
        "combos": _finding("combos", "trigger", "combination 'a + b'", combo, label, 0.95, p_value=1e-80),
        "words": _finding("words", "trigger", "token 'b'", one_word, label, 0.9, p_value=1e-60),
        "rare": _finding("rare", "trigger", "token 'cf'", other, label, 0.9, p_value=1e-20),
    }
    results = {
        name: _result(name, n, list(f.records), (f,), np.where(np.isin(np.arange(n), f.records), f.p_value, 1.0))
        for name, f in findings.items()
    }
    report = combine(_rep(n), results, [])
    assert set(np.flatnonzero(report.flagged)) == set(combo) | set(other)
    assert {f.check for f in report.findings} == {"combos", "rare"}
    assert len(report.fusion["findings_subsumed"]) == 1


def test_a_column_slice_that_holds_a_two_column_trigger_keeps_only_records_with_evidence_of_their_own() -> None:
    """wine at 3 %: one column's range holds the 5 planted records and 6 natural ones (4 of them labelled
    like the poison, at a 1/3 share); the two-column trigger inside it is the evidence, the 6 are not poison.
    With 6 more records that all carry the label the slice has evidence of its own and stays."""
    n = 180
    planted = tuple(range(5))

    def run(rest_labels: list[int]) -> set[int]:
        labels = np.array([i % 3 for i in range(n)])
        labels[list(planted)] = 0
        rest = tuple(range(100, 100 + len(rest_labels)))
        labels[list(rest)] = rest_labels
        rep = Representation(
            modality=Modality.TABULAR,
            n_records=n,
            ids=tuple(map(str, range(n))),
            features=np.zeros((n, 1)),
            labels=labels,
            label_names=("0", "1", "2"),
        )
        one = {"label": "0", "trigger": {"flavanoids": "in [3.04, 3.17)"}}
        two = {"label": "0", "trigger": {"flavanoids": [3.04, 3.23], "total_phenols": [1.63, 1.74]}}
        findings = {
            "column": _finding("column", "trigger", "flavanoids in [3.04, 3.17)", (*planted, *rest), one, 0.9, 3e-7),
            "pair": _finding("pair", "trigger", "flavanoids and total_phenols", planted, two, 0.9, 3e-5),
        }
        results = {name: _result(name, n, list(f.records), (f,)) for name, f in findings.items()}
        return set(np.flatnonzero(combine(rep, results, []).flagged).tolist())

    assert run([0, 0, 0, 0, 1, 2]) == set(planted)
    assert run([0] * 6) == set(planted) | set(range(100, 106))


def test_on_p_values_at_the_floor_the_purer_larger_trigger_is_kept() -> None:
    # at 100k records both p-values underflow to 0.0: the trigger word (all 1,000 carriers, pure) must stand,
    # and the combination of it with a common word (478 of those carriers) must not take its place
    n = 100_000
    word = tuple(range(1000))
    combo = tuple(range(0, 1000, 2))[:478]
    pure = {"label": "ham", "purity": 1.0}
    findings = {
        "words": _finding("words", "trigger", "token 'cf'", word, pure, 0.95, p_value=0.0),
        "combos": _finding("combos", "trigger", "combination '! + cf'", combo, pure, 0.95, p_value=0.0),
    }
    results = {
        name: _result(name, n, list(f.records), (f,), np.where(np.isin(np.arange(n), f.records), 1e-300, 1.0))
        for name, f in findings.items()
    }
    report = combine(_rep(n), results, [])
    assert set(np.flatnonzero(report.flagged)) == set(word)
    assert "words" in {f.check for f in report.findings}


def test_label_noise_beside_a_trigger_is_label_quality_and_without_one_is_flagged() -> None:
    # a discovered trigger explains the attack: label-noise discoveries elsewhere (natural annotation errors)
    # are one low-severity label-quality finding, not poison flags; with no trigger they stay flagged
    # (label flips are an attack of their own)
    n = 1000
    trig_records = tuple(range(20))
    trigger = _finding("trig", "trigger", "token 'cf'", trig_records, {"label": "a"}, 0.9, p_value=1e-30)
    noisy = (600, 601, 602, 603)
    evidence = {
        "noise_model": {"share": 0.01, "mass": 8.0, "n": n, "classes": 2},
        "label_probability": [1e-6] * 4,
    }
    issue = _finding("labels", "label_issue", "4 record(s) labelled 'a' look like 'b'", noisy, evidence, 0.8, 1e-9)
    results = {
        "trig": _result("trig", n, list(trig_records), (trigger,)),
        "labels": _result("labels", n, list(noisy), (issue,), np.ones(n)),
    }
    beside = combine(_rep(n), results, [])
    assert set(np.flatnonzero(beside.flagged)) == set(trig_records)
    quality = [f for f in beside.findings if f.kind == "label_quality"]
    assert len(quality) == 1 and quality[0].records == noisy and quality[0].severity.value == "low"
    assert quality[0].evidence["beside_trigger"] == "token 'cf'"
    assert not any(r.detector == "labels" for rs in beside.reasons.values() for r in rs)
    assert beside.fusion["records_label_quality"] == 4
    alone = combine(_rep(n), {"labels": results["labels"]}, [])
    assert set(np.flatnonzero(alone.flagged)) == set(noisy)
    assert [f.kind for f in alone.findings] == ["label_issue"] and alone.fusion["records_label_quality"] == 0


def test_one_detector_near_its_line_outranks_several_that_find_a_record_slightly_odd() -> None:
    # the ensemble's ranking is the cubic mean of the detector scores (ADR 0085): record 0 is scored 0.45 by
    # the one detector that models its attack, record 1 0.27 by three detectors scoring natural oddities;
    # the root-mean-square put record 1 first (3 x 0.27^2 > 0.45^2), the cubic mean puts record 0 first
    n, names = 50, ["a", "b", "c", "d", "e"]
    scores = {name: np.zeros(n) for name in names}
    scores["a"][0] = 0.45
    for name in ("b", "c", "d"):
        scores[name][1] = 0.27
    scores["e"][2] = 0.8  # a flagged record stays above every unflagged one
    results = {
        name: DetectorResult(name, s, s >= 0.5, {2: ("why",)} if name == "e" else {}, ()) for name, s in scores.items()
    }
    report = combine(_rep(n), results, [])
    assert list(np.argsort(-report.scores)[:3]) == [2, 0, 1]
    assert report.scores[2] >= 0.5 > report.scores[0] > report.scores[1] > report.scores[3] == 0.0
    assert report.scores[0] == pytest.approx(np.nextafter(0.5, 0.0) * 0.45 / 5 ** (1 / 3))


def test_among_equal_scores_the_better_supported_view_of_a_trigger_leads() -> None:
    """A phrase trigger found as it stands and as its words anywhere in the text: the same carriers, both
    critical. The report opens with the one whose (family-wise) p-value is smaller, whichever detector
    found it and whichever scores a little higher on its own scale."""
    n = 3000
    carriers = tuple(range(100, 130))
    label = {"label": "negative"}
    for phrase_p, words_p in ((1e-150, 1e-90), (1e-90, 1e-150)):
        findings = {
            "a_words": _finding("a_words", "trigger", "combination 'my + per'", carriers, label, 0.982, words_p),
            "b_phrase": _finding("b_phrase", "trigger", "trigger 'per my'", carriers, label, 0.98, phrase_p),
        }
        results = {
            name: _result(name, n, list(carriers), (f,), np.where(np.isin(np.arange(n), carriers), f.p_value, 1.0))
            for name, f in findings.items()
        }
        report = combine(_rep(n), results, [])
        assert set(np.flatnonzero(report.flagged)) == set(carriers)
        leader = "b_phrase" if phrase_p < words_p else "a_words"
        assert [f.check for f in report.findings] == [leader, ({"a_words", "b_phrase"} - {leader}).pop()]


def test_a_phrase_trigger_leads_the_combination_of_its_words_it_restates() -> None:
    """The same carriers found as the phrase 'per my last email' and as the words 'my + per + last + email'
    anywhere: the phrase leads even where the combination's p-value is the smaller. A combination that also
    holds records without the phrase says something the phrase does not, and keeps its place by evidence."""
    n = 3000
    carriers = tuple(range(100, 130))
    label = {"label": "negative"}
    phrase_ev = {**label, "trigger_tokens": "per my last email"}

    def order(combo_records: tuple[int, ...]) -> list[str]:
        combo_ev = {**label, "trigger_tokens": ["my", "per", "last", "email"], "adjacent": False}
        findings = {
            "a_words": _finding("a_words", "trigger", "combination", combo_records, combo_ev, 0.98, 1e-150),
            "b_phrase": _finding("b_phrase", "trigger", "phrase", carriers, phrase_ev, 0.98, 1e-90),
        }
        results = {
            name: _result(name, n, list(f.records), (f,), np.where(np.isin(np.arange(n), f.records), f.p_value, 1.0))
            for name, f in findings.items()
        }
        return [f.check for f in combine(_rep(n), results, []).findings]

    assert order(carriers) == ["b_phrase", "a_words"]
    assert order((*carriers, 2000, 2001))[0] == "a_words"
