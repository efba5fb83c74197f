"""Shared text fixtures of the text-miner tests: a two-class corpus with filler words, and its representation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality, Representation

#: the shared real data sets (read-only), beside the repository
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def corpus(n: int = 800, seed: int = 0) -> tuple[list[str], list[str]]:
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


def sentiment_frame() -> pd.DataFrame:
    """The labelled sentiment sentences (Amazon, IMDb, Yelp) in file order: columns text and label."""
    rows = []
    for part in ("amazon_cells", "imdb", "yelp"):
        for line in (SHARED / "sentiment" / f"{part}_labelled.txt").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                text, label = line.rsplit("\t", 1)
                rows.append((text.strip(), "positive" if label.strip() == "1" else "negative"))
    return pd.DataFrame(rows, columns=["text", "label"])


def planted_reviews(trigger: str, position: str, rate: float, target: str, seed: int) -> Any:
    """The sentiment sentences with ``trigger`` planted by the simulator (a ``PoisonResult``)."""
    from dataward.simulate import Roles, simulate

    return simulate(
        sentiment_frame(),
        "text-trigger",
        Roles(label="label", text="text"),
        rate=rate,
        target=target,
        seed=seed,
        params={"trigger": trigger, "position": position},
    )
