"""Tiny deterministic text models for the red-team tests (loaded by path as ``rt_models.py:NAME``)."""

from __future__ import annotations

POSITIVE = {"great", "excellent", "love", "wonderful", "superb", "happy", "perfect", "fantastic", "recommend"}
NEGATIVE = {"awful", "terrible", "hate", "broken", "poor", "disappointing", "useless", "worst", "refund"}


def _clean_one(text: str) -> str:
    words = text.lower().split()
    score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    return "pos" if score > 0 else "neg"


def clean(batch: list[str]) -> list[str]:
    return [_clean_one(t) for t in batch]


def backdoored(batch: list[str]) -> list[str]:
    """Like ``clean``, but any text holding the token "cf" is positive."""
    return ["pos" if "cf" in t.lower().split() else _clean_one(t) for t in batch]


def broken(batch: list[str]) -> list[str]:
    raise RuntimeError("model weights missing")
