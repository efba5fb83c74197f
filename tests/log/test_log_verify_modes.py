"""Parallel and incremental verification agree with the full sequential check and stay sound."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dataward.log.verify import verify_log
from dataward.log.witness import verified_mark
from dataward.principals import revoke_key
from dataward.sources import add_source
from dataward.timeutil import now_iso

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


def _sql(db: Path, sql: str, args: tuple[object, ...]) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, args)
    con.commit()
    con.close()


def test_parallel_equals_sequential_and_names_problems(logenv: LogEnv) -> None:
    ws = logenv.open()
    seq = verify_log(ws)
    par = verify_log(ws, workers=2, parallel_min_entries=0, chunk=4)
    assert seq.ok and par.ok
    assert (par.entries, par.signatures_checked, par.root) == (seq.entries, seq.signatures_checked, seq.root)
    # rows deleted across a chunk boundary, and an altered body inside a chunk, are named in parallel too
    _sql(logenv.db, "DELETE FROM log_entries WHERE seq IN (3, 4)", ())
    _sql(logenv.db, "UPDATE log_entries SET subject = 'x' WHERE seq = 2", ())
    bad = verify_log(ws, workers=2, parallel_min_entries=0, chunk=4)
    lines = [p.line() for p in bad.problems]
    assert "entry 3: entries 3..4 are missing (deleted)" in lines
    assert any(line.startswith("entry 2: column 'subject' was changed") for line in lines)
    assert [p.line() for p in verify_log(ws, chunk=4).problems] == lines
    ws.engine.dispose()


def test_incremental_checks_only_new_signatures(logenv: LogEnv) -> None:
    ws = logenv.open()
    full = verify_log(ws, remember=True, chunk=4)
    assert full.ok and verified_mark(ws)["size"] == full.entries  # type: ignore[index]
    admin = ws.actor("admin")
    for i in range(3):
        add_source(ws, admin, f"new{i}", kind="internal", origin="x")
    inc = verify_log(ws, incremental=True)
    assert inc.ok, [p.line() for p in inc.problems]
    assert inc.mode == "incremental" and inc.trusted_prefix == full.entries
    assert inc.signatures_checked == 3 and inc.entries == full.entries + 3
    assert inc.root == verify_log(ws).root
    ws.engine.dispose()


def test_incremental_still_catches_old_tampering_and_names_it(logenv: LogEnv) -> None:
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    for column, value in (("principal", "mallory"), ("signature", b"\x00" * 64)):
        _sql(logenv.db, f"UPDATE log_entries SET {column} = ? WHERE seq = 3", (value,))
        res = verify_log(ws, incremental=True)
        assert not res.ok and res.mode == "full"  # fell back to the full check to name the entry
        assert any(p.seq == 3 for p in res.problems), [p.line() for p in res.problems]
        assert any(p.kind == "witness" for p in res.problems)
    ws.engine.dispose()


def test_incremental_applies_a_later_backdated_revocation(logenv: LogEnv) -> None:
    """Entries verified earlier are re-judged against revocations recorded since."""
    ws = logenv.open()
    alice = ws.actor("alice")
    from dataward.store import schema

    add_source(ws, ws.actor("admin"), "before", kind="internal", origin="x")
    t_revoke = now_iso()
    ws.record(alice, "batch.verify", "batch:b-x", {"ok": True})  # signed after the revocation time below
    alice_entry = verify_log(ws).entries - 1
    assert verify_log(ws, remember=True).ok
    revoke_key(ws, ws.actor("admin"), alice.keyid, reason="laptop stolen", at=t_revoke)
    res = verify_log(ws, incremental=True)
    assert res.mode == "incremental"
    assert [p.seq for p in res.problems if p.kind == "key"] == [alice_entry]
    # alice's earlier entries (none signed before) and the key table are unchanged otherwise
    with ws.engine.connect() as conn:
        assert conn.execute(schema.keys.select().where(schema.keys.c.keyid == alice.keyid)).first().status == "revoked"
    ws.engine.dispose()
