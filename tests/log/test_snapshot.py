"""The evidence state snapshot an incremental verification starts from: exact round trip, strict decoding."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from dataward.evidence.load import trusted_state
from dataward.log._snapshot import _SKIPPED, SnapshotError, decode_state, encode_state

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


def _fields(st: Any) -> dict[str, Any]:
    # every field but the caches of derived values (parsed keys, remembered authorizations), rebuilt on use
    return {f.name: getattr(st, f.name) for f in dataclasses.fields(st) if f.name not in _SKIPPED}


def test_a_replayed_state_survives_the_round_trip_exactly(logenv: LogEnv) -> None:
    ws = logenv.open()
    st = trusted_state(ws)
    assert st.batches and st.keys and st.grants  # the fixture's log has something of each kind
    data = encode_state(st)
    back = decode_state(data)
    assert _fields(back) == _fields(st)
    assert encode_state(back) == data
    # and it replays on like the original: one more entry gives the same state either way
    ws.record(ws.actor("admin"), "log.verify", "log:x", {})
    with ws.engine.connect() as conn:
        from dataward.evidence.load import replay_log

        assert _fields(replay_log(conn, state=back)) == _fields(replay_log(conn, state=decode_state(data)))
    ws.engine.dispose()


def test_a_state_written_from_its_signed_bodies_is_the_same_bytes(logenv: LogEnv) -> None:
    from dataward.evidence.load import replay_log

    ws = logenv.open()
    with ws.engine.connect() as conn:
        kept, plain = replay_log(conn, keep_bodies=True), replay_log(conn)
    assert len(kept._bodies) == len(kept.entries) > 5 and not plain._bodies
    assert encode_state(kept) == encode_state(plain)
    assert _fields(decode_state(encode_state(kept))) == _fields(plain)
    # replayed on from a decoded state (no bodies for its entries): none kept, written the plain way
    ws.record(ws.actor("admin"), "log.verify", "log:x", {"ok": "é\n\u2028"})
    with ws.engine.connect() as conn:
        on = replay_log(conn, state=decode_state(encode_state(plain)), keep_bodies=True)
        fresh = replay_log(conn, keep_bodies=True)
    assert not on._bodies and len(fresh._bodies) == len(fresh.entries)
    assert encode_state(on) == encode_state(fresh)
    # an entry kept as a copy (its body's number is not that int) stops the bodies: the plain way again
    fresh.entries[-1] = {**fresh.entries[-1], "seq": True}
    fresh._bodies.pop()
    assert b'"seq":true' in encode_state(fresh)
    ws.engine.dispose()


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.__setitem__(0, "12"),  # size as text
        lambda s: s.append(None),  # one field too many
        lambda s: s.__setitem__(2, {"k": ["not", "a", "key"]}),  # a key record of the wrong shape
    ],
)
def test_a_state_edited_into_another_shape_is_refused(logenv: LogEnv, edit: Any) -> None:
    ws = logenv.open()
    doc = json.loads(encode_state(trusted_state(ws)))
    edit(doc["state"])
    with pytest.raises(SnapshotError):
        decode_state(json.dumps(doc).encode())
    with pytest.raises(SnapshotError):
        decode_state(b"not json")
    ws.engine.dispose()
