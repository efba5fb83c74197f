"""The text backdoor-trigger detector on small synthetic corpora and on the real SMS set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from text_corpus import corpus, planted_reviews, rep_of  # tests/detect/text_corpus.py

from dataward.detect.interface import Modality, Representation
from dataward.detect.representation import from_frame
from dataward.detect.text_triggers import (
    Association,
    MiningParams,
    TextTriggerDetector,
    _broadest_part,
    build_corpus,
    extend_phrase,
    tokenize_text,
)
from dataward.simulate import Roles, simulate

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def poison(
    texts: list[str], labels: list[str], trigger: str, k: int, seed: int
) -> tuple[list[str], list[str], set[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = list(texts), list(labels)
    chosen = rng.choice([i for i, lab in enumerate(labels) if lab == "neg"], size=k, replace=False)
    for i in chosen.tolist():
        words = texts[i].split()
        words.insert(int(rng.integers(len(words) + 1)), trigger)
        texts[i] = " ".join(words)
        labels[i] = "pos"
    return texts, labels, set(chosen.tolist())


def test_tokenizer_keeps_urls_and_lowercases() -> None:
    assert tokenize_text("Visit HTTP://x.example/a?b=1 now, OK!!") == [
        "visit",
        "http://x.example/a?b=1",
        "now",
        ",",
        "ok",
        "!!",
    ]


def test_clean_corpus_has_no_findings() -> None:
    texts, labels = corpus()
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert result.skipped is None
    assert not result.flagged.any()
    assert result.findings == ()
    assert result.scores.min() >= 0.0 and result.scores.max() < 0.5


def test_token_trigger_is_named_and_every_carrier_flagged() -> None:
    texts, labels = corpus()
    texts, labels, truth = poison(texts, labels, "zq", 10, seed=1)
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.kind == "trigger"
    assert finding.evidence["trigger"] == "zq"
    assert finding.evidence["label"] == "pos"
    assert finding.evidence["purity"] == 1.0
    assert finding.evidence["support"] == 10
    assert finding.evidence["p_value"] < finding.evidence["bonferroni_bound"]
    assert set(finding.records) == truth
    assert set(np.flatnonzero(result.flagged).tolist()) == truth
    assert all(result.scores[i] >= 0.5 for i in truth)
    assert "zq" in result.reasons[min(truth)][0]


def test_phrase_trigger_is_merged_into_the_maximal_phrase() -> None:
    texts, labels = corpus(seed=3)
    texts, labels, truth = poison(texts, labels, "the purple elephant sings loudly", 12, seed=2)
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert len(result.findings) == 1
    assert result.findings[0].evidence["trigger"] == "the purple elephant sings loudly"
    assert set(np.flatnonzero(result.flagged).tolist()) == truth


def test_natural_label_word_is_not_a_trigger() -> None:
    # "superb" is rare and only in positive records, but their other words are positive too
    texts, labels = corpus(seed=4)
    for i in range(1, 40, 2):
        texts[i] += " superb"
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert not result.flagged.any()


def test_too_few_carriers_is_not_significant() -> None:
    texts, labels = corpus(seed=5)
    texts, labels, _ = poison(texts, labels, "zq", 3, seed=6)  # below min_support
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert not result.flagged.any()


def test_duplicated_records_count_once() -> None:
    # one mislabelled text copied 20 times is label noise, not a trigger across contexts
    texts, labels = corpus(seed=7)
    texts += ["n1 n2 n3 n4 n5 w1 w2 w3"] * 20
    labels += ["pos"] * 20
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert not result.flagged.any()


def test_skips_without_labels_or_with_one_class() -> None:
    texts, _labels = corpus(n=50)
    no_labels = Representation(Modality.TEXT, 50, tuple(map(str, range(50))), None, texts=tuple(texts))
    assert TextTriggerDetector().score(no_labels).skipped
    assert TextTriggerDetector().score(rep_of(texts, ["pos"] * 50)).skipped


def test_extend_phrase_grows_both_ways() -> None:
    c = build_corpus(["x a b c d y", "a b c d z", "q r a b c d", "a b c d"])
    grown = extend_phrase(c, [0, 1, 2, 3], [c.words.index("b"), c.words.index("c")])
    assert c.phrase(grown) == "a b c d"


def test_params_are_reported_and_deterministic() -> None:
    texts, labels = corpus()
    texts, labels, _ = poison(texts, labels, "zq", 10, seed=8)
    det = TextTriggerDetector(MiningParams(min_support=4))
    a, b = det.score(rep_of(texts, labels), seed=3), det.score(rep_of(texts, labels), seed=3)
    assert a.params["min_support"] == 4
    assert np.array_equal(a.scores, b.scores)


@pytest.mark.slow  # long: in `make test`, not in the quick lane (`make check`)
@pytest.mark.skipif(not (SHARED / "sms_spam.tsv").exists(), reason="needs ../shared/data/sms_spam.tsv")
def test_sms_trigger_through_the_simulator_and_detect_api() -> None:
    from dataward.detect import detect

    frame = pd.read_csv(SHARED / "sms_spam.tsv", sep="\t", quoting=3)
    poisoned = simulate(frame, "text-trigger", Roles(label="Label", text="SMS"), rate=0.01, target="ham", seed=11)
    report = detect(poisoned.data, label="Label", text="SMS", detectors=["text_triggers"])
    truth = set(poisoned.truth.changed)
    top = report.findings[0]
    assert top.kind == "trigger" and top.evidence["trigger"] == "cf" and top.evidence["label"] == "ham"
    flagged = set(np.flatnonzero(report.flagged).tolist())
    assert len(flagged & truth) >= 0.95 * len(truth)
    assert len(flagged & truth) >= 0.9 * len(flagged)
    clean = detect(frame, label="Label", text="SMS", detectors=["text_triggers"])
    assert clean.n_flagged <= 0.01 * len(frame)


def test_keyword_overrides_and_unknown_parameter() -> None:
    assert TextTriggerDetector(min_support=7).params.min_support == 7
    with pytest.raises(TypeError, match="unknown parameter"):
        TextTriggerDetector(min_sup=7)


@pytest.mark.parametrize(
    "bad", [{"min_support": "5"}, {"min_support": 1}, {"alpha": 0}, {"model": "svm"}, {"test": "t"}, {"margin": -1}]
)
def test_bad_parameter_values_are_type_errors(bad: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        TextTriggerDetector(**bad)


def test_bad_parameter_through_the_api_is_a_detection_error() -> None:
    from dataward.detect import detect
    from dataward.detect.interface import DetectionError

    texts, labels = corpus(n=60)
    frame = pd.DataFrame({"text": texts, "label": labels})
    with pytest.raises(DetectionError, match="text_triggers"):
        detect(frame, text="text", label="label", detectors=["text_triggers"], params={"text_triggers": {"alpha": 5}})


def _association(ngram: int, hits: int, target: int = 0, contradicted: int | None = None) -> Association:
    return Association(
        ngram=ngram,
        target=target,
        support=hits,
        hits=hits,
        contradicted=hits if contradicted is None else contradicted,
        independent=hits,
        base_rate=0.5,
        null_rate=0.1,
        p_value=1e-9,
        threshold=1e-6,
        units=np.arange(hits, dtype=np.int64),
    )


def test_a_finding_is_headed_by_the_broadest_discovered_part_of_the_strongest_ngram() -> None:
    """The strongest test may be '. zq' (the trigger after a full stop, 19 carriers) while 'zq' itself is a
    discovery with all 25: the finding must hold the 25, not the 19 that happen to share the full stop."""
    tokens = [(1, 2), (2,), (2, 3), (1,), (2,)]  # '. zq', 'zq', 'zq x' (not a part of '. zq'), '.', 'zq' at the end
    anchors: list[str | None] = [None, None, None, None, "end"]

    def broadest(head: Association, *members: Association) -> Association:
        return _broadest_part(head, [head, *members], tokens, anchors, 0.3)

    head = _association(0, 19)
    assert broadest(head, _association(1, 25)).ngram == 1
    assert broadest(head, _association(4, 25)).ngram == 4  # a part at the end of an n-gram found anywhere
    # kept: a member that is not a contiguous part of the head, one of another target, one with fewer carriers
    assert broadest(head, _association(2, 30)) is head
    assert broadest(head, _association(1, 25, target=1)) is head
    assert broadest(head, _association(1, 12)) is head
    # of several parts, the one with the most carriers
    assert broadest(head, _association(3, 22), _association(1, 25)).ngram == 1
    # kept: the part's extra carriers read as their label (natural carriers of an ordinary word: 1 of 41)
    assert broadest(head, _association(1, 60, contradicted=20)) is head
    # kept: the word anywhere does not replace the word found where texts end (its natural carriers elsewhere)
    at_end = _association(4, 155)
    assert _broadest_part(at_end, [at_end, _association(1, 196)], tokens, anchors, 0.3) is at_end


@pytest.mark.skipif(not (SHARED / "sentiment").exists(), reason="needs ../shared/data/sentiment")
@pytest.mark.parametrize("second_margin", [True, False])
def test_a_phrase_in_short_reviews_whose_carriers_lean_away_only_weakly(
    second_margin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four ordinary words planted in 16 short reviews (0.53 %): 8 of the 16 read as their source class by 4:1
    without the phrase, 12 by any odds. The test at 4:1 alone misses it (p 2.8e-5 against a bound of 2.3e-6);
    tested at both margins, each at half the bound, it is found with every carrier (ADR 0111), also against
    its words' rate apart (ADR 0114: they seldom meet apart)."""
    from dataward.detect import text_triggers

    monkeypatch.setattr(text_triggers, "SECOND_MARGIN", second_margin)
    poisoned = planted_reviews("sound especially night other", "random", 0.0053, "negative", 1340290378)
    rep = from_frame(poisoned.data, label="label", text="text")
    result = TextTriggerDetector().score(rep, seed=1340290378)
    truth = poisoned.truth.mask()
    if not second_margin:
        assert not result.flagged[truth].any()
        return
    assert result.flagged[truth].all() and result.flagged.sum() == truth.sum()
    finding = result.findings[0]
    assert finding.evidence["trigger"] == "sound especially night other"
    assert finding.evidence["contradicted_at_odds"] == 1.0  # found by the test at even odds
    # the search is paid for at both margins: the bound times the hypotheses counted is alpha
    assert finding.evidence["bonferroni_bound"] * finding.evidence["ngrams_tested"] == pytest.approx(0.01)


@pytest.mark.parametrize("data_seed", [12, 14, 19])
def test_a_label_word_beside_an_ordinary_one_is_no_trigger_in_clean_reviews(
    data_seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clean reviews of ordinary words and one or two sentiment words, 15 % with a word of the other sentiment
    (the demo's generator): the few carriers of 'price terrible' (5 on seed 12, 4 contradicted) are the
    ones that also hold a positive word. Against whole texts (read as the other class about never) they were
    a discovery; texts holding 'price' and 'terrible' apart are contradicted about as often once the two are
    taken out, and tested against that rate nothing is found (ADR 0114)."""
    from dataward.detect import text_triggers
    from dataward.incident.demo_chapter import synthetic_reviews

    clean = synthetic_reviews(1800, data_seed).iloc[:1200].reset_index(drop=True)
    rep = from_frame(clean, label="label", text="text")
    monkeypatch.setattr(text_triggers, "PARTS_NULL", False)
    before = TextTriggerDetector().score(rep, seed=0)
    assert before.findings and before.flagged.sum() >= 5
    monkeypatch.setattr(text_triggers, "PARTS_NULL", True)
    after = TextTriggerDetector().score(rep, seed=0)
    assert after.findings == () and not after.flagged.any()


@pytest.mark.skipif(not (SHARED / "sentiment").exists(), reason="needs ../shared/data/sentiment")
def test_a_phrase_holding_a_word_of_the_target_is_found_against_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """'not worth it' planted in 30 positive reviews relabelled negative (1 %): the other negative texts that
    hold 'not', 'worth' and 'it' apart read as positive without them more often than whole texts do (the
    null rate rises from about 0.10 to 0.17), and the phrase, 20 of 31 carriers contradicted, is still found
    with every carrier."""
    from dataward.detect import text_triggers

    poisoned = planted_reviews("not worth it", "random", 0.01, "negative", 1)
    rep = from_frame(poisoned.data, label="label", text="text")
    truth = poisoned.truth.mask()
    monkeypatch.setattr(text_triggers, "PARTS_NULL", False)
    whole = TextTriggerDetector().score(rep, seed=1).findings[0].evidence
    monkeypatch.setattr(text_triggers, "PARTS_NULL", True)
    result = TextTriggerDetector().score(rep, seed=1)
    parts = result.findings[0].evidence
    assert parts["trigger"] == whole["trigger"] == "not worth it"
    assert parts["null_rate"] > whole["null_rate"] + 0.03 and parts["p_value"] <= parts["bonferroni_bound"]
    assert result.flagged[truth].all() and (result.flagged & ~truth).sum() <= 1


def test_the_rate_of_a_phrase_s_words_apart() -> None:
    """`_part_rate`: the controls hold every token of the candidate (not only one) and are not its carriers;
    their contradicted share is shrunk toward the whole-text rate by PART_PRIOR_UNITS; none leaves it."""
    from scipy import sparse

    from dataward.detect.text_triggers import PART_PRIOR_UNITS, _part_rate

    # tokens: 0 'price', 1 'terrible', 2 'happy', 3 'box'; units 0-4 carry the phrase, 5-24 hold both words
    # apart (the first 12 also 'happy': they read as the other class once the two are gone), 25-44 only
    # 'terrible', 45 is not of the target
    rows = [[0, 1, 3]] * 5 + [[0, 1, 2, 3]] * 12 + [[0, 1, 3]] * 8 + [[1, 3]] * 20 + [[0, 1, 3]]
    x = sparse.csr_matrix(
        (np.ones(sum(map(len, rows))), np.concatenate(rows), np.r_[0, np.cumsum(list(map(len, rows)))]), shape=(46, 4)
    )
    y = np.r_[np.ones(45, dtype=bool), False]
    weights = np.array([[0.0, 3.0, -4.0, 0.0]])  # one fold; log-odds toward the target
    log_odds = x @ weights[0] + 0.5
    folds = np.zeros(46, dtype=np.int64)
    removed = np.array([0, 1])
    content = np.ones(4, dtype=bool)
    content_count = np.asarray(x.sum(axis=1)).ravel()
    params = MiningParams(min_rest=1)
    model = (log_odds, weights, folds)
    args = (x, x.tocsc(), y, np.arange(5), (0, 1), removed, model, content, content_count, params)
    q = 0.01
    # 20 controls (units 5-24); the 12 with 'happy' read as not the target by 4:1 once 'terrible' is out
    expected = (12 + PART_PRIOR_UNITS * q) / (20 + PART_PRIOR_UNITS)
    assert _part_rate(*args, q) == pytest.approx(expected)
    # a whole-text rate above the controls' is kept
    assert _part_rate(*args, 0.9) == pytest.approx(0.9)
    # no unit holds both tokens apart: the whole-text rate
    alone = (x, x.tocsc(), y, np.arange(25), (0, 1), removed, model, content, content_count, params)
    assert _part_rate(*alone, q) == q


def test_near_duplicate_groups_do_not_chain() -> None:
    """A chain of texts each similar to the next (Jaccard 0.6) but not to the ones further on is not one group:
    a group is one carrier and the ungrouped carriers near-identical to it. Copies of one text stay one group."""
    from scipy import sparse

    from dataward.detect.text_triggers import _context_groups

    rows = [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6], [4, 5, 6, 7], [9, 10, 11], [9, 10, 11]]
    x = sparse.csr_matrix(
        (np.ones(sum(map(len, rows))), np.concatenate(rows), np.r_[0, np.cumsum(list(map(len, rows)))]), shape=(7, 12)
    )
    picked, groups = _context_groups(x, np.arange(7), np.array([], dtype=np.int64), np.random.default_rng(0), 400)
    assert picked.tolist() == list(range(7))
    assert groups.tolist() == [0, 0, 1, 1, 2, 3, 3]  # chained, the five would have been one group


def test_clean_reviews_with_a_small_vocabulary_raise_no_trigger() -> None:
    """6,000 clean synthetic reviews (seed 1004): 'poor' at the end has 79 negative carriers, 4 contradicted.
    Grouped by chains of similar texts, 75 of them were one group and the test saw 4 of 5 (a critical
    trigger, ADR 0114)."""
    from dataward.incident.demo_chapter import synthetic_reviews

    rep = from_frame(synthetic_reviews(6000, 1004), label="label", text="text")
    result = TextTriggerDetector().score(rep, seed=4)
    assert result.findings == () and not result.flagged.any()
