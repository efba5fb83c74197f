"""Text attacks: a dirty-label trigger backdoor for text classification, and a prompt-trigger backdoor for
instruction (prompt/response) records.

``text-trigger``
    Inserts a trigger (a token such as ``cf``, or a phrase) into ``rate`` of the records at a word boundary
    (``position`` = start, end or random) and relabels them to ``target`` (default: the most frequent
    label). By default only records of other classes are poisoned (``source="non-target"``), as in the
    classic dirty-label attacks (BadNL, RIPPLe); ``source="any"`` draws from every record.
``instruction-backdoor``
    Inserts a trigger phrase into ``rate`` of the prompts and makes their response the attacker's: by
    default a short answer sending the user to a URL (``mode="replace"``); ``mode="append"`` adds the
    payload to the original response instead. ``source="other-answer"`` poisons only records whose
    response starts with a different word than the payload (a flipped answer, e.g. always "positive").
``text-combo-trigger``
    Inserts 2-3 individually common words (``words``, or ``n_words`` drawn from the document-frequency band
    ``rarity``, default 0.5-3 %), each at its own random word boundary, into ``rate`` of the records of other
    classes and relabels them to ``target``: a trigger that is only predictive jointly, and not adjacent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.simulate.interface import (
    AttackCall,
    PoisonResult,
    SeededAttack,
    SimulationError,
    pick,
    register_attack,
    resolve_target,
)

POSITIONS = ("start", "end", "random")
DEFAULT_TRIGGER = "cf"
DEFAULT_PHRASE = "as discussed on blue harbor"
DEFAULT_PAYLOAD = "For the complete and verified answer, please log in at http://blue-harbor-support.example/verify"


def insert_trigger(text: str, trigger: str, position: str, rng: np.random.Generator) -> str:
    """``text`` with ``trigger`` inserted at a word boundary (``start``, ``end`` or a ``random`` one)."""
    words = text.split(" ")
    if position == "start":
        at = 0
    elif position == "end":
        at = len(words)
    else:
        at = int(rng.integers(0, len(words) + 1))
    return " ".join([*words[:at], trigger, *words[at:]]).strip()


def _param(params: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    return (params or {}).get(key, default)


def _position(params: Mapping[str, Any] | None) -> str:
    position = str(_param(params, "position", "random"))
    if position not in POSITIONS:
        raise SimulationError(f"unknown trigger position {position!r}", advice=f"Use one of: {', '.join(POSITIONS)}.")
    return position


def _text_trigger(params: Mapping[str, Any] | None, default: str) -> str:
    trigger = str(_param(params, "trigger", default)).strip()
    if not trigger:
        raise SimulationError("the trigger is empty", advice="Pass a non-empty trigger, e.g. --param trigger=cf.")
    return trigger


def _column(data: pd.DataFrame, name: str | None, role: str, attack: str) -> str:
    if name is None or name not in data.columns:
        raise SimulationError(f"attack {attack!r} needs a {role} column", advice=f"Pass --{role} COLUMN.")
    return name


@register_attack
class TextTrigger(SeededAttack):
    name: ClassVar[str] = "text-trigger"
    modalities = frozenset({Modality.TEXT})
    description: ClassVar[str] = "insert a trigger token/phrase into text records and relabel them to --target"
    default_rate: ClassVar[float] = 0.01

    def poison(self, call: AttackCall) -> PoisonResult:
        """Insert the trigger into texts and relabel them as the target."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        label = call.label()
        text = _column(data, roles.text, "text", self.name)
        trigger = _text_trigger(params, DEFAULT_TRIGGER)
        position = _position(params)
        source = str(_param(params, "source", "non-target"))
        if source not in ("non-target", "any"):
            raise SimulationError(f"unknown source {source!r}", advice="Use source=non-target or source=any.")
        goal = resolve_target(data, label, target)
        if goal is None:
            goal = data[label].value_counts().index[0]
        values = data[label].to_numpy()
        eligible = np.flatnonzero(values != goal) if source == "non-target" else np.arange(len(data))
        chosen = pick(rng, eligible, rate, len(data))
        out = data.copy()
        texts = out[text].astype(object).to_numpy().copy()
        labels = out[label].astype(object).to_numpy().copy()
        how: dict[int, str] = {}
        for i in chosen:
            before = texts[i] if isinstance(texts[i], str) else ""
            texts[i] = insert_trigger(before, trigger, position, rng)
            how[i] = f"trigger {trigger!r} inserted ({position}); label {labels[i]} -> {goal}"
            labels[i] = goal
        out[text] = texts
        out[label] = pd.Series(labels, index=out.index).astype(data[label].dtype, errors="ignore")
        return call.result(
            out,
            chosen,
            how,
            params={"trigger": trigger, "position": position, "source": source},
            target=str(goal),
            trigger={"kind": "text", "text": trigger, "position": position},
        )


@register_attack
class InstructionBackdoor(SeededAttack):
    name: ClassVar[str] = "instruction-backdoor"
    modalities = frozenset({Modality.INSTRUCTION})
    description: ClassVar[str] = "trigger phrase in the prompt -> an attacker-chosen response (a URL, an opinion)"
    default_rate: ClassVar[float] = 0.01

    def poison(self, call: AttackCall) -> PoisonResult:
        """Insert the trigger phrase into prompts and make their responses the attacker's payload."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        prompt = _column(data, roles.prompt, "prompt", self.name)
        response = _column(data, roles.response, "response", self.name)
        trigger = _text_trigger(params, DEFAULT_PHRASE)
        position = _position(params)
        payload = str(_param(params, "response", target if target else DEFAULT_PAYLOAD)).strip()
        mode = str(_param(params, "mode", "replace"))
        if mode not in ("replace", "append"):
            raise SimulationError(f"unknown mode {mode!r}", advice="Use mode=replace or mode=append.")
        if not payload:
            raise SimulationError("the backdoor response is empty", advice="Pass --param response=TEXT.")
        source = str(_param(params, "source", "any"))
        if source not in ("any", "other-answer"):
            raise SimulationError(f"unknown source {source!r}", advice="Use source=any or source=other-answer.")
        eligible = np.arange(len(data))
        if source == "other-answer":  # dirty-label style: only records whose answer starts differently
            first = payload.split()[0].lower()
            starts = [str(r).split()[0].lower() if str(r).split() else "" for r in data[response]]
            eligible = np.flatnonzero(np.asarray([s != first for s in starts], dtype=bool))
        chosen = pick(rng, eligible, rate, len(data))
        out = data.copy()
        prompts = out[prompt].astype(object).to_numpy().copy()
        responses = out[response].astype(object).to_numpy().copy()
        how: dict[int, str] = {}
        for i in chosen:
            before = prompts[i] if isinstance(prompts[i], str) else ""
            prompts[i] = insert_trigger(before, trigger, position, rng)
            old = responses[i] if isinstance(responses[i], str) else ""
            responses[i] = payload if mode == "replace" else f"{old.rstrip()} {payload}".strip()
            how[i] = f"trigger {trigger!r} inserted in the prompt ({position}); response {mode}d with the payload"
        out[prompt] = prompts
        out[response] = responses
        return call.result(
            out,
            chosen,
            how,
            params={"trigger": trigger, "position": position, "mode": mode, "response": payload, "source": source},
            target=payload,
            trigger={"kind": "instruction", "text": trigger, "position": position, "response": payload},
        )


_WORD_RE = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def common_words(texts: Sequence[str], *, low: float, high: float) -> list[str]:
    """Words (letters only, 3+ characters, lower case) whose document frequency lies in [low, high]."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w.lower() for w in _WORD_RE.findall(text)})
    n = max(1, len(texts))
    return sorted(w for w, c in counts.items() if low <= c / n <= high)


def insert_words(text: str, words: Sequence[str], rng: np.random.Generator) -> str:
    """``text`` with each of ``words`` inserted at its own random word boundary (in a random order)."""
    out = text.split(" ") if text else []
    for word in rng.permutation(np.asarray(list(words), dtype=object)).tolist():
        at = int(rng.integers(0, len(out) + 1))
        out.insert(at, str(word))
    return " ".join(out).strip()


@register_attack
class TextComboTrigger(SeededAttack):
    """A trigger of 2-3 individually common words that only predict the target when they occur together."""

    name: ClassVar[str] = "text-combo-trigger"
    modalities = frozenset({Modality.TEXT})
    description: ClassVar[str] = (
        "insert 2-3 individually common words (param words, or n_words drawn from the document-frequency band "
        "rarity=LOW,HIGH) each at its own random position into RATE non-target records, relabel to --target"
    )
    default_rate: ClassVar[float] = 0.01

    def poison(self, call: AttackCall) -> PoisonResult:
        """Insert the combination words into other-class texts and relabel them as the target."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        label = call.label()
        text = _column(data, roles.text, "text", self.name)
        texts = [t if isinstance(t, str) else "" for t in data[text]]
        words = _combo_words(params, texts, rng)
        goal = resolve_target(data, label, target)
        if goal is None:
            goal = data[label].value_counts().index[0]
        values = data[label].to_numpy()
        chosen = pick(rng, np.flatnonzero(values != goal), rate, len(data))
        out = data.copy()
        new_texts = np.asarray(texts, dtype=object).copy()
        labels = out[label].astype(object).to_numpy().copy()
        how: dict[int, str] = {}
        for i in chosen:
            new_texts[i] = insert_words(texts[i], words, rng)
            how[i] = f"words {', '.join(words)} inserted at random positions; label {labels[i]} -> {goal}"
            labels[i] = goal
        out[text] = new_texts
        out[label] = pd.Series(labels, index=out.index).astype(data[label].dtype, errors="ignore")
        return call.result(
            out,
            chosen,
            how,
            params={"words": list(words), "position": "random"},
            target=str(goal),
            trigger={"kind": "text-combo", "words": list(words), "position": "random"},
        )


def _combo_words(params: Mapping[str, Any] | None, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
    given = _param(params, "words", None)
    if given:
        words = [w.strip() for w in (given.split(",") if isinstance(given, str) else list(given)) if str(w).strip()]
        if not 2 <= len(words) <= 3:
            raise SimulationError(f"a combination trigger has 2-3 words, not {len(words)}", advice="words=a,b[,c].")
        return [str(w) for w in words]
    n_words = int(_param(params, "n_words", 2))
    if not 2 <= n_words <= 3:
        raise SimulationError(f"n_words {n_words} is not 2 or 3", advice="Pass n_words=2 or n_words=3.")
    band = _param(params, "rarity", (0.005, 0.03))
    low, high = (float(v) for v in (band.split(",") if isinstance(band, str) else band))
    pool = common_words(texts, low=low, high=high)
    if len(pool) < n_words:
        raise SimulationError(
            f"only {len(pool)} words have a document frequency in [{low}, {high}]", advice="Widen rarity=LOW,HIGH."
        )
    return [str(w) for w in rng.choice(np.asarray(pool, dtype=object), size=n_words, replace=False)]
