"""The log entry body assembled from its parts is byte for byte the canonical JSON of the entry object."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.core.canonical import canonical_json
from dataward.log.auditlog import canonical_bytes, entry_body

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(0, 2**63),
    time=text,
    principal=text,
    action=text,
    subject=text,
    details=st.dictionaries(text, json_values, max_size=5),
    keyid=text,
)
def test_entry_body_is_canonical_json(
    seq: int, time: str, principal: str, action: str, subject: str, details: dict[str, Any], keyid: str
) -> None:
    obj = {"seq": seq, "time": time, "principal": principal, "action": action, "subject": subject}
    want = canonical_json({**obj, "details": details, "keyid": keyid})
    assert entry_body(seq, time, principal, action, subject, details, keyid) == want


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_the_log_canonical_encoder_is_canonical_json(value: Any) -> None:
    # log verify's canonical-form check and the bodies of appends use it
    assert canonical_bytes(value) == canonical_json(value)
    assert canonical_bytes({"b": value, "a": [value]}) == canonical_json({"a": [value], "b": value})


def test_entry_body_other_types_take_the_generic_path() -> None:
    # a bool seq is an int subclass, but JSON spells it true: the assembled path must not take it
    assert entry_body(True, "t", "p", "a", "s", {}, "k") == canonical_json(  # type: ignore[arg-type]
        {"seq": True, "time": "t", "principal": "p", "action": "a", "subject": "s", "details": {}, "keyid": "k"}
    )
