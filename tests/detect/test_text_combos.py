"""The combination-trigger miner on synthetic corpora: planted pairs are found, single words are not pairs."""

from __future__ import annotations

import numpy as np
from text_corpus import corpus, rep_of  # tests/detect/text_corpus.py

from dataward.detect._text_combos import TextComboTriggers


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
