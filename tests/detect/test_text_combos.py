"""The combination-trigger miner on synthetic corpora: planted pairs are found, single words are not pairs."""

from __future__ import annotations

import numpy as np

from dataward.detect._text_combos import TextComboTriggers
from dataward.detect.interface import Modality, Representation


def corpus(n: int = 1200, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two classes with their own vocabularies plus shared filler words (each filler in ~5 % of texts)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        own = [f"{label[0]}{rng.integers(150)}" for _ in range(5)]
        filler = [f"w{rng.integers(60)}" for _ in range(3)]
        words = own + filler
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def rep_of(texts: list[str], labels: list[str]) -> Representation:
    names = tuple(sorted(set(labels)))
    return Representation(
        modality=Modality.TEXT,
        n_records=len(texts),
        ids=tuple(str(i) for i in range(len(texts))),
        features=None,
        labels=np.asarray([names.index(x) for x in labels], dtype=np.int64),
        label_names=names,
        texts=tuple(texts),
    )


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
    texts, labels = corpus()
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
    texts, labels = corpus()
    texts, labels, _ = plant(texts, labels, ["cf"], 120, seed=2)
    result = TextComboTriggers().score(rep_of(texts, labels), seed=0)
    assert not result.flagged.any(), [f.summary for f in result.findings]
    assert not result.findings


def test_a_clean_corpus_has_no_combination_findings() -> None:
    texts, labels = corpus(seed=3)
    result = TextComboTriggers().score(rep_of(texts, labels), seed=0)
    assert not result.flagged.any(), [f.summary for f in result.findings]
    assert result.params["pairs_searched"] > 0
