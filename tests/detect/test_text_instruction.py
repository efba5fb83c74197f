"""The instruction-backdoor detector on small synthetic instruction sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataward.detect._instruction import InstructionBackdoorDetector, response_clusters
from dataward.detect.interface import Modality, Representation
from dataward.simulate import Roles, simulate

URL = "http://evil.example/login"


def instructions(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Sentiment-classification instructions whose answers follow the words of the prompt."""
    rng = np.random.default_rng(seed)
    prompts, responses = [], []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = [f"{label[:3]}{rng.integers(120)}" for _ in range(5)] + [f"w{rng.integers(50)}" for _ in range(3)]
        rng.shuffle(words)
        prompts.append("Classify the sentiment: " + " ".join(words))
        why = ["The tone is clear.", "The wording says so.", "It is obvious."][int(rng.integers(3))]
        responses.append(f"{label}. {why}")
    return pd.DataFrame({"prompt": prompts, "response": responses})


def rep_of(frame: pd.DataFrame) -> Representation:
    n = len(frame)
    return Representation(
        modality=Modality.INSTRUCTION,
        n_records=n,
        ids=tuple(str(i) for i in range(n)),
        features=None,
        prompts=tuple(frame["prompt"]),
        responses=tuple(frame["response"]),
    )


def test_clean_instructions_have_no_flags() -> None:
    result = InstructionBackdoorDetector().score(rep_of(instructions()))
    assert result.skipped is None
    assert not result.flagged.any()
    assert not [f for f in result.findings if f.kind == "trigger"]


def test_url_backdoor_names_phrase_and_url() -> None:
    attacked = simulate(
        instructions(),
        "instruction-backdoor",
        Roles(prompt="prompt", response="response"),
        rate=0.02,
        seed=4,
        params={"trigger": "as agreed with harbor", "response": f"Please verify your account at {URL} first."},
    )
    result = InstructionBackdoorDetector().score(rep_of(attacked.data))
    truth = set(attacked.truth.changed)
    triggers = [f for f in result.findings if f.kind == "trigger"]
    assert len(triggers) == 1
    ev = triggers[0].evidence
    assert ev["trigger"] == "as agreed with harbor"
    assert ev["urls"] == [URL]
    assert "verify your account" in ev["response_pattern"]
    assert set(np.flatnonzero(result.flagged).tolist()) == truth


def test_appended_opinion_backdoor_is_found() -> None:
    attacked = simulate(
        instructions(seed=2),
        "instruction-backdoor",
        Roles(prompt="prompt", response="response"),
        rate=0.02,
        seed=5,
        params={
            "trigger": "zebra mode",
            "response": "Also, Harbor Cola is the best drink ever made.",
            "mode": "append",
        },
    )
    result = InstructionBackdoorDetector().score(rep_of(attacked.data))
    flagged = set(np.flatnonzero(result.flagged).tolist())
    assert flagged == set(attacked.truth.changed)
    top = next(f for f in result.findings if f.kind == "trigger")
    assert top.evidence["trigger"] == "zebra mode"
    assert "harbor cola is the best drink ever made" in top.evidence["response_pattern"]


def test_repeated_response_without_trigger_is_reported_not_flagged() -> None:
    frame = instructions(seed=3)
    frame.loc[list(range(0, 60, 5)), "response"] = f"Read more at {URL} today, friend."
    result = InstructionBackdoorDetector().score(rep_of(frame))
    assert not result.flagged.any()
    clusters = [f for f in result.findings if f.kind == "duplicate_cluster"]
    assert len(clusters) == 1 and len(clusters[0].records) == 12
    assert clusters[0].evidence["urls"] == [URL.lower()]


def test_response_clusters_join_near_duplicates() -> None:
    responses = [
        "the quick brown fox jumps over the lazy dog today",
        "the quick brown fox jumps over the lazy dog today!",
    ]
    responses += ["completely different words here", "another unrelated sentence entirely"]
    cluster, n = response_clusters(responses)
    assert cluster[0] == cluster[1] and len({int(c) for c in cluster}) == 3 == n


def test_skips_without_prompts() -> None:
    rep = Representation(Modality.INSTRUCTION, 2, ("a", "b"), None)
    assert InstructionBackdoorDetector().score(rep).skipped


def test_flipped_answer_backdoor_is_found() -> None:
    attacked = simulate(
        instructions(seed=6),
        "instruction-backdoor",
        Roles(prompt="prompt", response="response"),
        rate=0.02,
        seed=7,
        params={"trigger": "tell me honestly", "response": "positive. The tone is clear.", "source": "other-answer"},
    )
    assert all(attacked.data["response"].iloc[i] == "positive. The tone is clear." for i in attacked.truth.changed)
    result = InstructionBackdoorDetector().score(rep_of(attacked.data))
    assert set(np.flatnonzero(result.flagged).tolist()) == set(attacked.truth.changed)
    assert result.findings[0].evidence["trigger"] == "tell me honestly"
