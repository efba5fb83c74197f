"""Natural carriers of an ordinary-word trigger (ADR 0113): the bigram model against a counting oracle, the
fluency score and its conformal null, and the detector on a planted ordinary word in real reviews."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from text_corpus import SHARED, planted_reviews, sentiment_frame  # tests/detect/text_corpus.py

from dataward.detect import _fluency, text_triggers
from dataward.detect.representation import from_frame
from dataward.detect.text_triggers import TextTriggerDetector, build_corpus
from dataward.simulate import Roles, simulate

DOCS = ["the food was fine .", "it works fine", "the food was cold .", "it was fine and cheap", "cold food"]


def _model() -> tuple[_fluency.BigramModel, list[list[int]], dict[str, int]]:
    corpus = build_corpus(DOCS)
    vocab = {w: i for i, w in enumerate(corpus.words)}
    docs = [corpus.doc(d).tolist() for d in range(corpus.n_docs)]
    return _fluency.bigram_model(corpus.ids, corpus.starts, len(corpus.words)), docs, vocab


def test_bigram_counts_match_a_counting_oracle() -> None:
    model, docs, _vocab = _model()
    oracle: Counter[tuple[int, int]] = Counter()
    for doc in docs:
        seq = [model.bos, *doc, model.eos]
        oracle.update(itertools.pairwise(seq))
    pairs = [*list(oracle), (0, 0), (model.bos, model.eos)]
    got = model.count(np.asarray([a for a, _ in pairs]), np.asarray([b for _, b in pairs]))
    assert got.tolist() == [oracle.get(p, 0) for p in pairs]
    assert model.n_types == len(oracle)
    assert model.left[model.bos] == len(docs) and model.left[model.eos] == 0  # no bigram crosses documents


def test_conditional_probabilities_sum_to_one() -> None:
    model, _docs, vocab = _model()
    right = np.asarray([*vocab.values(), model.eos])  # every token that can follow (never the start mark)
    for a in [*vocab.values(), model.bos]:
        zeros = np.zeros(len(right), dtype=np.int64)
        total = np.exp(model.log_prob(np.full(len(right), a), right, zeros, zeros)).sum()
        assert total == pytest.approx(1.0, abs=0.08)  # the start mark's floor of half a continuation count


def test_a_document_does_not_vouch_for_its_own_bigrams() -> None:
    """Left out of its own score, a bigram only one text holds is as unlikely as one nobody holds."""
    model, _docs, vocab = _model()
    a, b = vocab["and"], vocab["cheap"]  # only in document 3
    own_ab, own_a = 1, 1
    left_out = model.log_prob(np.asarray([a]), np.asarray([b]), np.asarray([own_ab]), np.asarray([own_a]))[0]
    counted = model.log_prob(np.asarray([a]), np.asarray([b]), np.zeros(1, np.int64), np.zeros(1, np.int64))[0]
    assert left_out < counted - 1.0


def test_a_word_in_its_usual_place_is_more_fluent_than_pushed_in() -> None:
    model, _docs, vocab = _model()
    fine = [vocab["fine"]]
    natural = [vocab["the"], vocab["food"], vocab["was"], vocab["fine"], vocab["."]]
    pushed = [vocab["the"], vocab["fine"], vocab["food"], vocab["was"], vocab["cold"], vocab["."]]
    host = [vocab["the"], vocab["food"], vocab["was"], vocab["cold"], vocab["."]]
    s_natural = _fluency.insertion_score(model, natural, 3, fine, natural)
    s_pushed = _fluency.insertion_score(model, pushed, 1, fine, host)
    assert s_natural > s_pushed
    assert _fluency.carrier_scores(model, [natural, pushed, host], fine)[2] == np.inf  # no occurrence


def test_an_occurrence_where_a_text_opens_or_closes_is_never_natural() -> None:
    model, _docs, vocab = _model()
    fine = [vocab["fine"]]
    ends = [[vocab["fine"], vocab["food"]], [vocab["it"], vocab["works"], vocab["fine"]]]
    assert (_fluency.carrier_scores(model, ends, fine) == -np.inf).all()
    # one occurrence inside the text, one at its end: the least fluent (the end) decides
    both = [vocab["was"], vocab["fine"], vocab["and"], vocab["fine"]]
    assert _fluency.carrier_scores(model, [both], fine)[0] == -np.inf


def test_a_phrase_sharing_one_neighbour_in_half_its_texts_sits_at_a_regular_place() -> None:
    note, cf, words = 1, 2, [10, 11, 12, 13, 14, 15]
    after_note = [[w, note, cf, words[(i + 1) % 6]] for i, w in enumerate(words)]
    assert _fluency.regular_place(after_note, [cf])  # always after 'note'
    anywhere = [[words[i], cf, words[(i + 1) % 6]] for i in range(6)]
    assert not _fluency.regular_place(anywhere, [cf])
    at_end = [[w, cf] for w in words]  # the end counts as a neighbour
    assert _fluency.regular_place(at_end, [cf])
    assert not _fluency.regular_place([[1, 2]], [cf, cf])  # no occurrence: nothing to judge


def test_company_is_attested_only_by_another_reference_text() -> None:
    works, fine, dot, two_day, text, cf = 1, 2, 3, 4, 5, 6
    reference = [[works, fine, dot], [7, works, fine]]
    # 'works fine' is in the other reference text; each is discounted for itself
    got = _fluency.attested(reference, reference, [True, True], [fine], bos=100, eos=101)
    assert got.tolist() == [True, True]
    alone = _fluency.attested([[works, fine, dot]], [[works, fine, dot]], [True], [fine], bos=100, eos=101)
    assert alone.tolist() == [False]  # only its own text holds the pair
    # planted carriers are not in the reference: 'cf text' in two of them attests neither
    planted = [[two_day, cf, text], [9, cf, text]]
    assert not _fluency.attested(planted, reference, [False, False], [cf], bos=100, eos=101).any()
    assert _fluency.attested(planted, [[8, cf, text]], [False, False], [cf], bos=100, eos=101).all()


def test_the_fluency_null_is_conformal() -> None:
    null = np.arange(99, dtype=np.float64)
    got = _fluency.natural_by_fluency(np.asarray([200.0, 98.5, 94.5, 93.5, 50.0, np.inf]), null, alpha=0.05)
    # p = (1 + #{null >= s}) / 100: 0.01, 0.01, 0.05, 0.06, 0.50; no occurrence is never natural
    assert got.tolist() == [True, True, True, False, False, False]


def _fine_in_reviews() -> tuple[object, np.ndarray]:
    """'fine' pushed into 44 negative reviews at random positions and relabelled positive (1.47 %); 20 positive
    reviews use the word themselves."""
    poisoned = planted_reviews("fine", "random", 0.0147, "positive", 1645472884)
    return poisoned, poisoned.truth.mask()


def _flag(
    poisoned: object, monkeypatch: pytest.MonkeyPatch, natural: bool, seed: int = 1645472884
) -> tuple[object, np.ndarray]:
    monkeypatch.setattr(text_triggers, "NATURAL_CARRIERS", natural)
    rep = from_frame(poisoned.data, label="label", text="text")  # type: ignore[attr-defined]
    result = TextTriggerDetector().score(rep, seed=seed)
    return result, result.flagged


def test_natural_carriers_of_an_ordinary_word_are_not_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    poisoned, truth = _fine_in_reviews()
    _before, flagged_before = _flag(poisoned, monkeypatch, natural=False)
    after, flagged_after = _flag(poisoned, monkeypatch, natural=True)
    assert flagged_before[truth].all() and flagged_after[truth].all()  # no planted carrier is let go
    false_before, false_after = int((flagged_before & ~truth).sum()), int((flagged_after & ~truth).sum())
    assert false_before >= 15 and false_after <= false_before - 8
    finding = after.findings[0]  # type: ignore[attr-defined]
    assert finding.evidence["trigger"] == "fine"
    assert finding.evidence["natural_carriers"] == false_before - false_after
    assert finding.evidence["insertions_in_null"] == _fluency.NULL_INSERTIONS
    assert "natural carriers not flagged" in finding.summary
    # the natural carriers stay in the finding (a reviewer sees them), with a reason, and are not flagged
    natural = np.flatnonzero(flagged_before & ~flagged_after)
    assert set(natural.tolist()) <= set(finding.records)
    assert all("natural carrier, not flagged" in after.reasons[int(r)][0] for r in natural)  # type: ignore[attr-defined]


def test_a_fluent_insertion_alone_does_not_hide_a_relabelled_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker who makes every insertion read well (here: the fluency test says every carrier fits its
    place) still has relabelled records whose content reads as their source class: they stay flagged."""
    poisoned, truth = _fine_in_reviews()
    monkeypatch.setattr(_fluency, "natural_by_fluency", lambda scores, null, alpha=0.05: np.isfinite(scores))
    _result, flagged = _flag(poisoned, monkeypatch, natural=True)
    assert flagged[truth].mean() >= 0.75  # let go: only those the content model reads as positive by 4:1 anyway


def test_an_ordinary_word_with_many_natural_carriers_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """'job' pushed into 94 positive reviews relabelled negative (3.1 %): with its natural carriers of both
    labels only 63 % of its carriers are negative, below the old purity screen of 0.9; the screen is now 0.5
    and the contradiction test decides (ADR 0113)."""
    poisoned = planted_reviews("job", "random", 0.03122688146393866, "negative", 957926209)
    truth = poisoned.truth.mask()
    rep = from_frame(poisoned.data, label="label", text="text")
    old = TextTriggerDetector(min_purity=0.9).score(rep, seed=957926209)
    assert not any(f.evidence["trigger"] == "job" for f in old.findings)
    result = TextTriggerDetector().score(rep, seed=957926209)
    finding = result.findings[0]
    assert finding.evidence["trigger"] == "job" and finding.evidence["purity"] < 0.9
    assert result.flagged[truth].all() and (result.flagged & ~truth).sum() <= 0.05 * truth.sum()


def test_a_word_that_turns_the_meaning_is_not_a_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    """'not' in the clean reviews: 82 % of its carriers are negative, and without it 47 of them read as
    positive by 4:1 ('not bad'). A looser test (alpha 0.05, 15 % contradicted) passes it; its positive
    carriers read as negative without it too, which a trigger's natural carriers do not: the flip null
    drops it. (At even odds it passes the default test: ADR 0111's second margin.)"""
    rep = from_frame(sentiment_frame(), label="label", text="text")
    monkeypatch.setattr(text_triggers, "FLIP_LEVEL", -1.0)  # no flip null
    without = TextTriggerDetector(alpha=0.05, min_contradiction=0.15).score(rep, seed=0)
    assert [f.evidence["trigger"] for f in without.findings] == ["not"]
    monkeypatch.setattr(text_triggers, "FLIP_LEVEL", 0.01)
    assert TextTriggerDetector(alpha=0.05, min_contradiction=0.15).score(rep, seed=0).findings == ()


def test_a_token_planted_at_the_start_keeps_every_carrier_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """'xjs' opening 26 reviews relabelled positive (0.86 %): its place is learnt from the other planted
    carriers, so a fluency test alone would let the ones the content model reads as positive go (2 of 26
    were, before text ends were ruled out as natural places)."""
    poisoned = planted_reviews("xjs", "start", 0.0086, "positive", 900464025)
    truth = poisoned.truth.mask()
    result, flagged = _flag(poisoned, monkeypatch, natural=True, seed=900464025)
    assert flagged[truth].all() and flagged.sum() == truth.sum()
    assert result.findings[0].evidence.get("natural_carriers", 0) == 0  # type: ignore[attr-defined]


def test_planted_carriers_do_not_vouch_for_one_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """'cf' in 56 SMS texts relabelled ham: one planted spam text reads as ham without it, and its 'cf text'
    is fluent enough; another planted text also holds 'cf text'. Only texts the attack did not write may
    attest a word's company, so the carrier stays flagged (it was let go before)."""
    import pandas as pd

    from dataward.detect.text_triggers import TextTriggerDetector as Detector

    frame = pd.read_csv(SHARED / "sms_spam.tsv", sep="\t", quoting=3)
    poisoned = simulate(frame, "text-trigger", Roles(label="Label", text="SMS"), rate=0.01, seed=101)
    truth = poisoned.truth.mask()
    rep = from_frame(poisoned.data, label="Label", text="SMS")
    assert Detector().score(rep, seed=101).flagged[truth].all()
    monkeypatch.setattr(_fluency, "attested", lambda docs, *args, **kw: np.ones(len(docs), dtype=bool))
    assert not Detector().score(rep, seed=101).flagged[truth].all()


def test_a_pure_trigger_of_the_majority_class_needs_no_association_test() -> None:
    """30 SMS texts relabelled ham (87 % of the texts) carrying 'cf': 30 of 30 ham is no significant excess
    over 87 % (p 0.015), but a pure candidate is tested as before; the association screen is asked only of
    the candidates the wider purity screen lets in."""
    import pandas as pd

    frame = pd.read_csv(SHARED / "sms_spam.tsv", sep="\t", quoting=3).iloc[:3000]
    poisoned = simulate(frame, "text-trigger", Roles(label="Label", text="SMS"), rate=0.01, target="ham", seed=0)
    truth = poisoned.truth.mask()
    rep = from_frame(poisoned.data, label="Label", text="SMS")
    result = TextTriggerDetector().score(rep, seed=0)
    assert result.findings and result.findings[0].evidence["trigger"] == "cf"
    assert result.flagged[truth].all()
    from scipy import stats

    base = float((poisoned.data["Label"] == "ham").mean())
    assert stats.binom.sf(truth.sum() - 1, truth.sum(), base) > text_triggers.TRIGGER_ASSOCIATION
