"""The simulator's text attacks: text-trigger and instruction-backdoor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataward.simulate import Roles, SimulationError, attack_names, simulate
from dataward.simulate._text import insert_trigger

TEXT = Roles(label="label", text="text")
INSTR = Roles(prompt="prompt", response="response")


def frame(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": [f"message number {i} is here" for i in range(n)], "label": ["ham"] * (n - 40) + ["spam"] * 40}
    )


def instr(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {"prompt": [f"question {i} please" for i in range(n)], "response": [f"answer {i}" for i in range(n)]}
    )


def test_attacks_are_registered() -> None:
    assert {"text-trigger", "instruction-backdoor"} <= set(attack_names())


@pytest.mark.parametrize("position", ["start", "end", "random"])
def test_text_trigger_inserts_and_relabels(position: str) -> None:
    data = frame()
    out = simulate(data, "text-trigger", TEXT, rate=0.05, target="ham", seed=1, params={"position": position})
    changed = list(out.truth.changed)
    assert len(changed) == 10
    assert (data["label"].iloc[changed] == "spam").all()  # default source: other classes only
    assert (out.data["label"].iloc[changed] == "ham").all()
    for i in changed:
        words = out.data["text"].iloc[i].split()
        assert "cf" in words
        if position == "start":
            assert words[0] == "cf"
        if position == "end":
            assert words[-1] == "cf"
    untouched = [i for i in range(len(data)) if i not in set(changed)]
    assert out.data.iloc[untouched].equals(data.iloc[untouched])
    assert data["text"].str.contains("cf").sum() == 0  # the input frame is not modified
    assert out.truth.trigger == {"kind": "text", "text": "cf", "position": position}
    assert out.truth.target == "ham"


def test_text_trigger_defaults_to_majority_label_and_any_source() -> None:
    out = simulate(frame(), "text-trigger", TEXT, rate=0.1, seed=2, params={"source": "any", "trigger": "two words"})
    assert out.truth.target == "ham"
    assert all("two words" in out.data["text"].iloc[i] for i in out.truth.changed)


def test_text_trigger_errors_are_simulation_errors() -> None:
    with pytest.raises(SimulationError, match="position"):
        simulate(frame(), "text-trigger", TEXT, rate=0.05, params={"position": "middle"})
    with pytest.raises(SimulationError, match="text"):
        simulate(frame(), "text-trigger", Roles(label="label"), rate=0.05)
    with pytest.raises(SimulationError, match="target"):
        simulate(frame(), "text-trigger", TEXT, rate=0.05, target="eggs")
    with pytest.raises(SimulationError, match="empty"):
        simulate(frame(), "text-trigger", TEXT, rate=0.05, params={"trigger": "  "})


@pytest.mark.parametrize("mode", ["replace", "append"])
def test_instruction_backdoor(mode: str) -> None:
    data = instr()
    out = simulate(data, "instruction-backdoor", INSTR, rate=0.05, seed=3, params={"mode": mode, "position": "end"})
    changed = list(out.truth.changed)
    assert len(changed) == 10
    payload = out.truth.params["response"]
    for i in changed:
        assert out.data["prompt"].iloc[i].endswith(out.truth.params["trigger"])
        response = out.data["response"].iloc[i]
        assert response == payload if mode == "replace" else response == f"answer {i} {payload}"
    assert "http://" in payload


def test_instruction_backdoor_needs_columns() -> None:
    with pytest.raises(SimulationError, match="response"):
        simulate(instr(), "instruction-backdoor", Roles(prompt="prompt"), rate=0.05)


def test_insert_trigger_positions() -> None:
    rng = np.random.default_rng(0)
    assert insert_trigger("a b", "t", "start", rng) == "t a b"
    assert insert_trigger("a b", "t", "end", rng) == "a b t"
    assert insert_trigger("", "t", "random", rng) == "t"
