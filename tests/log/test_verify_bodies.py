"""log verify's parse of a signed entry body agrees with json.loads + canonical_json on every input.

The verifier decodes a body with the JSON scanner directly (a third of the parse of an entry) and falls back
to json.loads for anything unusual; a tampered body must get the same verdict either way, and odd bytes
(lone surrogates, NaN, deep nesting, another encoding) must be reported, never crash the verification.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.core.canonical import canonical_json
from dataward.log.verify import _NOT_JSON, _parse_body


def _oracle(body: bytes) -> tuple[bool, bool]:
    """(is JSON, is a dict whose canonical JSON is exactly ``body``), the slow way."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False, False
    try:
        return True, isinstance(obj, dict) and canonical_json(obj) == body
    except (UnicodeError, ValueError):
        return True, False


def _verdict(body: bytes) -> tuple[bool, bool]:
    obj, canonical = _parse_body(body)
    return obj is not _NOT_JSON, canonical


ENTRY = canonical_json({"action": "batch.verify", "details": {"ok": True, "n": 3}, "seq": 7, "time": "t", "s": "é"})


@pytest.mark.parametrize(
    "body",
    [
        ENTRY,
        b"null",
        b"[]",
        b"{}",
        b'"text"',
        b" " + ENTRY,
        ENTRY + b" ",
        ENTRY + b"x",
        ENTRY[:-1],
        b"\xef\xbb\xbf" + ENTRY,  # a UTF-8 byte order mark
        ENTRY.decode("utf-8").encode("utf-16"),
        b'{"a":"\\ud800"}',  # a lone surrogate as an escape
        b'{"a":"\xed\xa0\x80"}',  # a lone surrogate as bytes
        b'{"a":NaN}',
        b'{"a":1.0}',
        b'{"b":1,"a":2}',  # keys out of order
        b'{"a":1,"a":1}',  # a duplicate key
        b"\xff\xfe",
        b"",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_odd_bodies_get_the_reference_verdict(body: bytes) -> None:
    assert _verdict(body) == _oracle(body)


def test_a_canonical_entry_parses_to_its_object() -> None:
    obj, canonical = _parse_body(ENTRY)
    assert canonical and obj == json.loads(ENTRY)
    assert _parse_body(ENTRY.replace(b'"ok":true', b'"ok": true')) == (json.loads(ENTRY), False)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_json, mutate=st.integers(0, 3), where=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_any_body_gets_the_reference_verdict(value: object, mutate: int, where: int, byte: int) -> None:
    body = canonical_json(value)
    if mutate and body:
        b = bytearray(body)
        if mutate == 1:
            b[where % len(b)] = byte  # one byte changed
        elif mutate == 2:
            b.insert(where % (len(b) + 1), byte)  # one byte inserted
        else:
            del b[where % len(b)]  # one byte removed
        body = bytes(b)
    assert _verdict(body) == _oracle(body)


def _row_verdict(body: bytes) -> tuple[bool, bool]:
    """The verdict of log verify's per-row check (which inlines the usual case of the parse) on a row holding
    ``body``: (reported as JSON, reported as canonical)."""
    from dataward.log.verify import _check_rows, _Task

    row = (0, "t", "p", "a", "s", body, "k", b"\x00" * 64, b"\x00" * 32)
    kinds = [p.detail for p in _check_rows([row], _Task(0, 1, 100), {}).problems]
    not_json = "entry is not valid JSON (altered)" in kinds
    return not not_json, not not_json and "entry is not canonical JSON (altered)" not in kinds


@pytest.mark.parametrize(
    "body",
    [
        ENTRY,
        b" " + ENTRY,
        ENTRY + b"x",
        ENTRY[:-1],
        b"\xef\xbb\xbf" + ENTRY,
        ENTRY.decode("utf-8").encode("utf-16"),
        b'{"a":"\\ud800"}',
        b'{"a":NaN}',
        b'{"a":1.0}',
        b'{"b":1,"a":2}',
        b'{"a":1,"a":1}',
        b"[]",
        b"null",
        b"",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_the_row_check_gives_the_reference_verdict(body: bytes) -> None:
    assert _row_verdict(body) == _oracle(body)


@settings(max_examples=200, deadline=None)
@given(value=_json, where=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_the_row_check_gives_the_reference_verdict_on_mutations(value: object, where: int, byte: int) -> None:
    body = bytearray(canonical_json({"k": value, "seq": 0}))
    body[where % len(body)] = byte
    assert _row_verdict(bytes(body)) == _oracle(bytes(body))
