"""Positional text triggers: a word planted where texts open or close, which also occurs naturally elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from text_corpus import corpus, rep_of  # tests/detect/text_corpus.py

from dataward.detect.text_triggers import (
    TextTriggerDetector,
    build_corpus,
    locate_phrase,
    ngram_table,
    positional_table,
)


def _planted(anchor: str, k: int = 14, seed: int = 3) -> tuple[list[str], list[str], set[int], list[int]]:
    """The two-class corpus with the filler ``w7`` (natural in ~5 % of texts of both classes, never first or
    last) planted at ``anchor`` of ``k`` 'neg' texts relabelled 'pos'."""
    texts, labels = corpus(seed=seed)
    out = []
    for t in texts:
        words = t.split()
        if "w7" in words:  # natural carriers hold it inside the text
            words = [w for w in words if w != "w7"]
            words.insert(len(words) // 2, "w7")
        out.append(" ".join(words))
    natural = [i for i, t in enumerate(out) if "w7" in t.split()]
    rng = np.random.default_rng(seed)
    chosen = rng.choice([i for i, lab in enumerate(labels) if lab == "neg" and i not in natural], k, replace=False)
    for i in chosen.tolist():
        out[i] = f"w7 {out[i]}" if anchor == "start" else f"{out[i]} w7"
        labels[i] = "pos"
    return out, labels, set(chosen.tolist()), natural


@pytest.mark.parametrize("anchor", ["start", "end"])
def test_a_word_planted_at_one_end_is_named_there_and_its_natural_carriers_are_not_flagged(anchor: str) -> None:
    texts, labels, truth, natural = _planted(anchor)
    assert len(natural) >= 20  # the word is ordinary: anywhere in the texts it is far from label-pure
    result = TextTriggerDetector().score(rep_of(texts, labels))
    assert len(result.findings) == 1
    f = result.findings[0]
    assert f.evidence["trigger"] == "w7" and f.evidence["position"] == anchor and f.evidence["label"] == "pos"
    assert f"at the {anchor} of the text" in f.summary
    assert set(f.records) == truth
    assert set(np.flatnonzero(result.flagged).tolist()) == truth
    for r, (lo, hi) in ((int(r), v) for r, v in f.evidence["spans"].items()):
        assert texts[r][lo:hi] == "w7" and (lo == 0 if anchor == "start" else hi == len(texts[r]))


def test_the_word_anywhere_is_not_a_trigger_without_the_position() -> None:
    # the same texts searched without the positional candidates: the word's natural carriers make it impure
    from dataward.detect import text_triggers

    texts, labels, _truth, _natural = _planted("start")
    rep = rep_of(texts, labels)
    units = text_triggers.text_units(rep.texts, np.asarray(rep.labels))
    table = ngram_table(units.corpus, n_max=3, min_support=5, max_support=80)
    w7 = units.corpus.words.index("w7")
    col = table.tokens.index((w7,))
    assert table.support[col] >= 34  # 14 planted + 20 or more natural carriers


def test_positional_table_adds_only_candidates_that_differ_from_the_ordinary_ngram() -> None:
    c = build_corpus(["a b c", "a b d", "a x b", "a y", "z a", "q b"], joined=True)
    base = ngram_table(c, n_max=2, min_support=2, max_support=6)
    pos = positional_table(base, c, n_max=2, min_support=2, max_support=6)
    extra = {(c.phrase(t), a) for t, a in zip(pos.table.tokens, pos.anchors, strict=True) if a is not None}
    # "a" opens 4 of its 5 texts: a candidate of its own; "a b" opens both texts that hold it: the same as
    # the ordinary bigram, not added again; "b" closes 2 of its 4 texts
    assert extra == {("a", "start"), ("b", "end")}
    a_start = pos.anchors.index("start")
    assert pos.table.support[a_start] == 4
    assert sorted(pos.table.matrix[:, a_start].nonzero()[0].tolist()) == [0, 1, 2, 3]
    assert pos.anchors[: len(base.tokens)] == (None,) * len(base.tokens)


def test_locate_phrase_with_an_anchor() -> None:
    assert locate_phrase("Win now. Win!", ["win"]) == (0, 3)
    assert locate_phrase("Win now. Win", ["win"], "end") == (9, 12)
    assert locate_phrase("Win now. Win!", ["win"], "end") is None  # "!" closes the text
    assert locate_phrase("so Win now", ["win"], "start") is None


@pytest.mark.slow
@pytest.mark.parametrize("shuffle", [3, 5])
def test_sms_with_shuffled_labels_has_no_trigger(shuffle: int) -> None:
    # labels independent of the texts: no trigger can exist. Texts opening with a quote mark (54 of SMS, long
    # and full of words seen nowhere else) read as the smaller class by the multinomial model, which takes
    # every unseen word as evidence for it, and passed the contradiction test at the start of the text
    # (shuffle 3) and anywhere (shuffle 5, already before positional candidates); judged again with unseen
    # words giving no evidence, both are refused
    from pathlib import Path

    import pandas as pd

    from dataward.detect import detect

    frame = pd.read_csv(
        Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sms_spam.tsv", sep="\t", quoting=3
    )
    frame["Label"] = np.random.default_rng(shuffle).permutation(frame["Label"].to_numpy())
    report = detect(frame, label="Label", text="SMS", detectors=["text_triggers"], seed=shuffle)
    assert [f.summary for f in report.findings] == []
