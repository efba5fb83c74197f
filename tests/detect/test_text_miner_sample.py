"""The text miners above ``max_units`` distinct texts: a seeded sample is searched, every carrier is flagged."""

from __future__ import annotations

import numpy as np
import pytest
from test_text_combos import plant  # tests/detect/test_text_combos.py
from text_corpus import corpus, rep_of  # tests/detect/text_corpus.py

from dataward.detect._text_combos import TextComboTriggers
from dataward.detect.interface import DetectorResult
from dataward.detect.text_triggers import (
    MAX_UNITS,
    TextTriggerDetector,
    build_corpus,
    text_units,
    unit_sample,
)


def _flagged(result: DetectorResult) -> set[int]:
    return set(np.flatnonzero(result.flagged).tolist())


def test_the_sample_engages_only_above_the_threshold() -> None:
    assert unit_sample(MAX_UNITS, MAX_UNITS, seed=0) is None
    assert unit_sample(5_000, 5_000, seed=0) is None
    assert unit_sample(4_999, 5_000, seed=0) is None
    picked = unit_sample(5_001, 5_000, seed=0)
    assert picked is not None and len(picked) == 5_000
    assert np.all(np.diff(picked) > 0) and picked[0] >= 0 and picked[-1] < 5_001  # sorted, distinct, in range


def test_the_sample_is_seeded_and_deterministic() -> None:
    a, b = unit_sample(50_000, 10_000, seed=3), unit_sample(50_000, 10_000, seed=3)
    c = unit_sample(50_000, 10_000, seed=4)
    assert a is not None and b is not None and c is not None
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # uniform: about a fifth of each fifth of the units
    counts = np.bincount(a // 10_000, minlength=5)
    assert np.all(np.abs(counts - 2_000) < 200), counts


def test_subset_and_carrier_lookups_agree_with_a_direct_scan() -> None:
    texts = ["a b c d", "b c", "c b a", "", "a c b c", "d a b"]
    full = build_corpus(texts)
    sub, to_full = full.subset(np.array([0, 2, 4], dtype=np.int64))
    assert sub.n_docs == 3
    for i, d in enumerate([0, 2, 4]):
        assert [sub.words[t] for t in sub.doc(i)] == [full.words[t] for t in full.doc(d)]
        assert [full.words[t] for t in to_full[sub.doc(i)]] == texts[d].split()
    word = {w: i for i, w in enumerate(full.words)}
    for phrase in (["b", "c"], ["a", "b"], ["c"], ["a", "b", "c"], ["d", "a"]):
        want = [d for d, t in enumerate(texts) if f" {' '.join(phrase)} " in f" {t} "]
        assert full.phrase_docs([word[w] for w in phrase]).tolist() == want, phrase
    for words in (["a", "b"], ["c", "d"], ["a", "b", "c"]):
        want = [d for d, t in enumerate(texts) if set(words) <= set(t.split())]
        assert full.word_docs([word[w] for w in words]).tolist() == want, words


@pytest.mark.parametrize("bad", [0, 999, 2.5e5, "100000", True])
def test_max_units_is_checked(bad: object) -> None:
    with pytest.raises(TypeError, match="max_units"):
        TextTriggerDetector(max_units=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_units"):
        TextComboTriggers(max_units=bad)  # type: ignore[arg-type]


def _phrase_planted(n: int, k: int, seed: int) -> tuple[list[str], list[str], set[int]]:
    texts, labels = corpus(n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    chosen = rng.choice([i for i, lab in enumerate(labels) if lab == "neg"], size=k, replace=False)
    for i in chosen.tolist():
        words = texts[i].split()
        words.insert(int(rng.integers(len(words) + 1)), "zq xv")
        texts[i] = " ".join(words)
        labels[i] = "pos"
    return texts, labels, set(chosen.tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_trigger_found_in_the_sample_flags_every_carrier(seed: int) -> None:
    texts, labels, chosen = _phrase_planted(6000, 90, seed)
    rep = rep_of(texts, labels)
    n_units = text_units(tuple(texts), np.asarray(rep.labels)).corpus.n_docs
    sampled = TextTriggerDetector(max_units=2_000).score(rep, seed=seed)
    whole = TextTriggerDetector().score(rep, seed=seed)
    assert "sampled" not in whole.params and whole.params["units_searched"] == n_units
    assert "sampled" in sampled.params and "2,000" in sampled.params["sampled"]
    assert sampled.params["units_searched"] == 2_000 and sampled.params["units"] == n_units
    assert len(sampled.findings) == 1, [f.summary for f in sampled.findings]
    finding = sampled.findings[0]
    assert finding.evidence["trigger"] == "zq xv"
    # the test saw about a third of the carriers; all of them are flagged
    searched = finding.evidence["searched"]
    assert searched["units"] == 2_000 and searched["hits"] < 0.6 * len(chosen)
    assert _flagged(sampled) == chosen == _flagged(whole)
    assert len(finding.records) == len(chosen)


def test_the_sampled_search_is_deterministic_and_stays_quiet_on_clean_texts() -> None:
    texts, labels, _ = _phrase_planted(6000, 90, 5)
    rep = rep_of(texts, labels)
    one = TextTriggerDetector(max_units=2_000).score(rep, seed=7)
    two = TextTriggerDetector(max_units=2_000).score(rep, seed=7)
    assert np.array_equal(one.scores, two.scores) and np.array_equal(one.flagged, two.flagged)
    clean_texts, clean_labels = corpus(6000, seed=6)
    clean = rep_of(clean_texts, clean_labels)
    for detector in (TextTriggerDetector(max_units=2_000), TextComboTriggers(max_units=2_000)):
        result = detector.score(clean, seed=0)
        assert "sampled" in result.params
        assert not result.flagged.any(), [f.summary for f in result.findings]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_combination_found_in_the_sample_flags_every_text_holding_its_words(seed: int) -> None:
    texts, labels = corpus(6000, seed=seed + 10)
    texts, labels, chosen = plant(texts, labels, ["w3", "w7"], 60, seed=seed)
    rep = rep_of(texts, labels)
    result = TextComboTriggers(max_units=2_000).score(rep, seed=0)
    assert "sampled" in result.params
    assert len(result.findings) == 1, [f.summary for f in result.findings]
    finding = result.findings[0]
    assert sorted(finding.evidence["trigger_tokens"]) == ["w3", "w7"]
    assert finding.evidence["searched"]["hits"] < 0.6 * len(chosen)
    holders = {i for i, t in enumerate(texts) if {"w3", "w7"} <= set(t.split())}
    assert set(finding.records) == holders
    flagged = _flagged(result)
    assert chosen <= flagged
    assert flagged == {i for i in holders if labels[i] == "pos"}
