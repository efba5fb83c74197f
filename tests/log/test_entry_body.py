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


def test_a_mixed_batch_is_stored_as_entry_bodies_signed_by_each_actor(logenv: Any) -> None:
    # one append with two actors, repeated and distinct actions, non-ASCII text and details of several
    # shapes: each stored body is entry_body(...) of its parts, each signature verifies under its actor's
    # key (both libraries), each leaf is entry_leaf_hash, and the log verifies with the root of those leaves
    from dataward.core import ed25519
    from dataward.core.merkle import root_from_leaf_hashes
    from dataward.log.auditlog import PendingEntry, append, entry_leaf_hash, iter_entries
    from dataward.log.verify import verify_log
    from dataward.store.catalog import write_transaction

    ws = logenv.open()
    admin, otto = ws.actor("admin"), ws.actor("otto")
    shapes: list[dict[str, Any]] = [{}, {"ok": True, "n": 3}, {"z": [1, {"\u00e9": None}], "a": "x\u2028y"}, {"f": 0.5}]
    pending = [
        PendingEntry(admin if i % 3 else otto, ("log.verify", "batch.verify", "audit.\u00f1")[i % 3], f"s:{i}\n", d)
        for i, d in enumerate(shapes * 3)
    ]
    with write_transaction(ws.engine) as conn:
        out = append(conn, pending, log_key=ws.log_actor(), origin=ws.origin)
    with ws.engine.connect() as conn:
        stored = {int(r.seq): r for r in iter_entries(conn)}
    for e, pe in zip(out, pending, strict=True):
        assert e.entry == entry_body(e.seq, e.time, pe.actor.name, pe.action, pe.subject, pe.details, pe.actor.keyid)
        assert bytes(stored[e.seq].entry) == e.entry and bytes(stored[e.seq].signature) == e.signature
        pub = pe.actor.key.public_key().public_bytes_raw()
        assert ed25519.verifier(pub)(e.signature, e.entry)
        assert ed25519.openssl_verifier(pub)(e.signature, e.entry)
        assert e.leaf_hash == entry_leaf_hash(e.entry, e.signature) == bytes(stored[e.seq].leaf_hash)
    result = verify_log(ws)
    assert result.ok, result.to_json()
    assert result.root == root_from_leaf_hashes([bytes(stored[s].leaf_hash) for s in sorted(stored)]).hex()
