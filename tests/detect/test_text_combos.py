"""The combination-trigger miner on synthetic corpora: planted pairs are found, single words are not pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from text_corpus import corpus, rep_of, sentiment_frame  # tests/detect/text_corpus.py

from dataward.detect._text_combos import TextComboTriggers, pair_weights
from dataward.detect.representation import from_frame
from dataward.detect.text_triggers import _LENGTH_GROUPS, MiningParams, _rate_by_length, text_units
from dataward.simulate import Roles, simulate

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def plant(
    texts: list[str], labels: list[str], words: list[str], k: int, seed: int
) -> tuple[list[str], list[str], set[int]]:
    """Insert ``words`` (each at its own random position) into ``k`` 'neg' texts and relabel them 'pos'."""
    rng = np.random.default_rng(seed)
    texts, labels = list(texts), list(labels)
    chosen = rng.choice([i for i, lab in enumerate(labels) if lab == "neg"], size=k, replace=False)
    for i in chosen.tolist():
        toks = texts[i].split()
        for w in words:
            toks.insert(int(rng.integers(len(toks) + 1)), w)
        texts[i] = " ".join(toks)
        labels[i] = "pos"
    return texts, labels, set(chosen.tolist())


def test_a_planted_pair_of_common_words_is_named_and_its_carriers_flagged() -> None:
    texts, labels = corpus(1200)
    # w3 and w7 are filler words: each is in about 5 % of the texts of both classes
    texts, labels, chosen = plant(texts, labels, ["w3", "w7"], 20, seed=1)
    result = TextComboTriggers().score(rep_of(texts, labels), seed=0)
    assert len(result.findings) == 1, [f.summary for f in result.findings]
    finding = result.findings[0]
    assert sorted(finding.evidence["trigger_tokens"]) == ["w3", "w7"]
    assert finding.evidence["label"] == "pos"
    flagged = set(np.flatnonzero(result.flagged).tolist())
    assert chosen <= flagged
    # every flagged record holds both words and carries the target label (natural co-carriers may be among them)
    for r in flagged:
        assert {"w3", "w7"} <= set(texts[r].split()) and labels[r] == "pos"


def test_a_single_word_trigger_is_not_reported_as_pairs_with_the_words_beside_it() -> None:
    """A rare token planted alone is the n-gram miner's finding; every common word that happens to sit beside it
    in some carriers forms a pure, contradicted pair, but the word's other carriers (its matched controls) are
    contradicted just as often, so no pair is significant."""
    texts, labels = corpus(1200)
    texts, labels, _ = plant(texts, labels, ["cf"], 120, seed=2)
    result = TextComboTriggers().score(rep_of(texts, labels), seed=0)
    assert not result.flagged.any(), [f.summary for f in result.findings]
    assert not result.findings


def test_a_clean_corpus_has_no_combination_findings() -> None:
    texts, labels = corpus(1200, seed=3)
    result = TextComboTriggers().score(rep_of(texts, labels), seed=0)
    assert not result.flagged.any(), [f.summary for f in result.findings]
    assert result.params["pairs_searched"] > 0


def test_pair_weights_spend_alpha_over_every_searched_pair_and_favour_surprising_ones() -> None:
    """The weighted bounds sum to alpha over all m searched pairs, the untested ones included: the weights have
    mean 1 over them, a pair that can never pass the (label-free) excess screen gets none, and a pair whose
    words co-occur far beyond chance gets more than the plain bound, up to the cap."""
    rng = np.random.default_rng(0)
    n, m = 3000, 5000
    df_a, df_b = rng.integers(15, 90, m).astype(float), rng.integers(15, 90, m).astype(float)
    joint = np.maximum(5.0, rng.poisson(df_a * df_b / n))  # about as chance has it
    joint[:50] += 9  # a few pairs with nine extra co-carriers each, as a planted combination adds
    params = MiningParams(max_fraction=0.3, min_contradiction=0.5)
    w = pair_weights(joint, df_a, df_b, n, params)
    assert w.shape == (m,) and np.all(w >= 0)
    assert w.sum() == pytest.approx(m)
    never_tested = joint - df_a * df_b / n < params.min_support
    assert never_tested.any() and np.all(w[never_tested] == 0.0)
    assert np.all(w[:50] > 3.0)  # the surprising pairs get a much larger share than 1/m
    cap = -2.0 * np.log10(params.alpha / m)
    assert w.max() <= cap * m / (np.count_nonzero(~never_tested) * 1.0) + 1e-9


def test_pair_weights_do_not_read_the_labels() -> None:
    """The weights are fixed by the texts alone, so the union bound holds conditional on them: shuffling the
    labels changes which pairs are tested, never a pair's weight or the number of pairs searched."""
    texts, labels = corpus(1200, seed=4)
    texts, labels, chosen = plant(texts, labels, ["w3", "w7"], 20, seed=5)
    # the other texts' labels shuffled: the planted pair stays a tested candidate, the rest change
    others = np.asarray([i for i in range(len(texts)) if i not in chosen])
    shuffled = np.asarray(labels, dtype=object)
    shuffled[others] = np.random.default_rng(6).permutation(shuffled[others])
    detector = TextComboTriggers()
    seen: list[dict[tuple[int, ...], float]] = []
    searched: list[int] = []
    for labs in (labels, [str(v) for v in shuffled]):
        rep = rep_of(texts, labs)
        assert rep.texts is not None
        units = text_units(rep.texts, np.asarray(rep.labels))
        table, n_hyp, _, weights = detector._pairs(sparse.csc_matrix(units.corpus.incidence()), units.unit_labels, 2)
        assert table is not None and weights is not None
        seen.append(dict(zip(table.tokens, weights.tolist(), strict=True)))
        searched.append(n_hyp)
    assert searched[0] == searched[1]
    assert seen[0].keys() != seen[1].keys()  # the labels do decide what is tested
    common = seen[0].keys() & seen[1].keys()
    assert common
    assert all(seen[0][k] == pytest.approx(seen[1][k]) for k in common)


@pytest.mark.skipif(not (SHARED / "sentiment").exists(), reason="needs the shared data sets")
def test_the_weighted_bound_names_a_small_combination_the_plain_bound_misses() -> None:
    """Sentiment sentences, 9 records (0.3 %) given two common words and the positive label: 7 of the 9 read as
    negative without the words, p about 6e-2 after the plain Bonferroni bound over ~10,000 (pair, class)
    tests; the planted pair's co-occurrence is among the most surprising 2 % of the pairs searched, and its
    weighted bound is about ten times the plain one."""
    frame = sentiment_frame()
    roles = Roles(label="label", text="text")
    poisoned = simulate(
        frame, "text-combo-trigger", roles, rate=0.003, target="positive", seed=152, params={"n_words": 2}
    )
    trigger = poisoned.truth.trigger
    assert trigger is not None
    words = sorted(w.lower() for w in trigger["words"])
    rep = from_frame(poisoned.data, label="label", text="text")

    def named(weighted: bool) -> bool:
        result = TextComboTriggers(weighted=weighted).score(rep, seed=152)
        return any(sorted(t.lower() for t in f.evidence["trigger_tokens"]) == words for f in result.findings)

    assert not named(weighted=False)
    assert named(weighted=True)


def test_the_null_rate_by_length_groups_the_target_texts_by_their_content_tokens() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 2000).astype(np.float64)
    y = rng.random(2000) < 0.7
    contradicted = rng.random(2000) < lengths / 100.0  # long texts are read as another class more often
    edges, rate = _rate_by_length(contradicted, y, lengths)
    group = np.searchsorted(edges, lengths, side="right")
    for g in range(rate.size):
        members = y & (group == g)
        assert rate[g] == pytest.approx(contradicted[members].mean())
    assert rate[-1] > 3 * rate[0]  # the trend is kept, not averaged away
    assert rate.size == _LENGTH_GROUPS
    assert _rate_by_length(contradicted, np.zeros(2000, dtype=bool), lengths)[1].tolist() == [0.0]


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
@pytest.mark.skipif(not (SHARED / "sms_spam.tsv").exists(), reason="needs the shared data sets")
def test_sms_with_shuffled_labels_has_no_combination() -> None:
    """The permutation null: SMS texts with their labels shuffled hold no trigger. Words that co-occur beyond
    chance pick long texts, which the content model reads as another class more often (spam is long); against
    the all-texts rate the test named pairs such as ', + "' on 9 of 10 shuffles (seeds 0-9), against the rate
    of texts as long as the carriers on 1 (docs/adr/0106). Seeds 0-2 each gave one or two findings before."""
    lines = (SHARED / "sms_spam.tsv").read_text(encoding="utf-8").split("\n")[1:]  # after the header
    frame = pd.DataFrame([ln.split("\t", 1)[::-1] for ln in lines if ln.strip()], columns=["text", "label"])
    found = []
    for seed in range(3):
        data = frame.assign(label=np.random.default_rng(seed).permutation(frame["label"].to_numpy()))
        result = TextComboTriggers().score(from_frame(data, label="label", text="text"), seed=seed)
        found += [f.evidence["trigger"] for f in result.findings]
    assert found == []
