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
