"""Entries of workspaces created before keyrings name their key by the legacy key ID (SHA-256 of the raw
key, dsse.legacy_key_id): `log verify` accepts them as the same key and flags each one; a legacy ID that
belongs to no registered key, or a legacy-ID entry with a bad signature, still fails."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from dataward.core.dsse import key_id, legacy_key_id
from dataward.identity import Actor
from dataward.log import auditlog
from dataward.log.verify import verify_log
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction
from dataward.workspace import Workspace

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _append_as_old_dataward(ws: Workspace, actor: Actor, subject: str) -> int:
    """Append an entry as dataward before keyrings wrote it: its writer knew keys by their legacy ID only, so
    today's check that the acting key is registered under the actor's keyid is left out (the entry is signed,
    chained, and checkpointed as any other)."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auditlog, "check_signing_keys", lambda *a, **k: None)
        with write_transaction(ws.engine) as conn:
            [entry] = auditlog.append(
                conn,
                [auditlog.PendingEntry(actor, "log.verify", subject, {})],
                log_key=ws.log_actor(),
                origin=ws.origin,
            )
    return entry.seq


def _old_format_entry(ws: Workspace, who: str, subject: str) -> tuple[int, str]:
    """Append, as a workspace before keyrings did, an entry by ``who`` naming its key by the legacy ID."""
    actor = ws.actor(who)
    legacy = legacy_key_id(actor.key.public_key())
    assert legacy != actor.keyid == key_id(actor.key.public_key())
    return _append_as_old_dataward(ws, Actor(actor.name, actor.key, legacy), subject), legacy


def test_legacy_key_id_is_accepted_as_the_same_key_and_flagged(logenv: Any) -> None:
    ws = logenv.open()
    seq, legacy = _old_format_entry(ws, "alice", "log:before-keyrings")
    with ws.engine.connect() as conn:
        stored = conn.execute(select(schema.log_entries.c.keyid).where(schema.log_entries.c.seq == seq)).scalar()
    assert stored == legacy
    result = verify_log(ws, max_problems=100)
    assert result.ok, [p.line() for p in result.problems]
    flagged = [m for m in result.marked if m.startswith(f"entry {seq}:")]
    assert flagged and "legacy key ID" in flagged[0] and legacy[:16] in flagged[0]
    # and through the CLI: OK, with the note
    rc, out = logenv.cli("log", "verify")
    assert rc == 0 and "legacy key ID" in out, out
    # the gates' replay accepts it too: the entry is not a problem of the trusted state
    from dataward.evidence.load import replay_log

    with ws.engine.connect() as conn:
        st = replay_log(conn)
    assert not [p for p in st.problems if p.seq == seq]


def test_legacy_key_id_with_a_bad_signature_or_of_no_key_fails(logenv: Any) -> None:
    ws = logenv.open()
    seq, _ = _old_format_entry(ws, "alice", "log:before-keyrings")
    t = schema.log_entries
    # a legacy ID is not a way around the signature: flip a byte of the signature, fix the leaf hash
    with ws.engine.connect() as conn:
        body, sig = conn.execute(select(t.c.entry, t.c.signature).where(t.c.seq == seq)).one()
    bad = bytes([sig[0] ^ 1]) + bytes(sig[1:])
    with write_transaction(ws.engine) as conn:
        conn.execute(
            update(t).where(t.c.seq == seq).values(signature=bad, leaf_hash=auditlog.entry_leaf_hash(bytes(body), bad))
        )
    lines = [p.line() for p in verify_log(ws, max_problems=100).problems]
    assert any(f"entry {seq}" in x and "does not verify" in x for x in lines), lines


def test_a_legacy_id_of_no_registered_key_is_unknown(logenv: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dataward.core.signer import PrivateKeySigner

    ws = logenv.open()
    stranger = Ed25519PrivateKey.generate()
    old = Actor("alice", PrivateKeySigner(stranger), legacy_key_id(stranger.public_key()))
    seq = _append_as_old_dataward(ws, old, "log:x")
    lines = [p.line() for p in verify_log(ws, max_problems=100).problems]
    assert any(f"entry {seq}" in x and "unknown key" in x for x in lines), lines
