"""The random text backdoors of benchmarks/generalise.py are what their kinds say they are."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bench_module import load_benchmark  # tests/detect/bench_module.py

gen = load_benchmark("generalise")

TEXTS = [f"we {w} meet at the station {i} ok" for i, w in enumerate(["will", "can", "should", "might"] * 50)]
TEXTS += [f"free prize call now {i}" for i in range(40)]
# words held by 3 of the 330 texts (0.9 %): ordinary words of the data, not template words
TEXTS += [
    f"see you {w}"
    for w in [
        "tonight",
        "later",
        "soon",
        "there",
        "again",
        "sunday",
        "monday",
        "home",
        "first",
        "inside",
        "outside",
        "upstairs",
        "downtown",
        "tomorrow",
        "friday",
    ]
    * 6
]


@pytest.mark.parametrize("kind", gen.KINDS)
def test_each_kind_draws_its_own_sort_of_trigger(kind: str) -> None:
    df = gen._doc_freq(TEXTS)
    n = len(TEXTS)
    lowered = "\n".join(TEXTS).lower()
    for d in range(20):
        trigger = gen.draw_trigger(kind, TEXTS, df, np.random.default_rng([3, d]))
        assert trigger.strip() == trigger and trigger
        if kind in ("rare", "cased", "number"):  # unseen in the data
            assert not re.search(rf"\b{re.escape(trigger.lower())}\b", lowered)
        if kind == "cased":
            assert trigger != trigger.lower()
        if kind == "emoji":
            assert trigger in gen.EMOJI
        if kind == "punctuation":
            assert len(set(trigger)) == 1 and trigger[0] in gen.MARKS and 2 <= len(trigger) <= 3
        if kind == "common":  # an ordinary word, with natural carriers
            assert 0.002 * n <= df[trigger] <= 0.02 * n
        if kind == "phrase":
            words = trigger.split()
            assert 3 <= len(words) <= 5 and len(set(words)) == len(words)
            assert all(0.005 * n <= df[w] <= 0.05 * n for w in words)
