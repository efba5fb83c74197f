"""The evidence state journal (docs/adr/0052-*): an incremental run that remembers keeps the state file of an
earlier run and replays the verified entries past it, after checking that their leaves fold from that
state's frontier to the recorded one; the state is written anew once the journal passes its limit."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dataward.log import witness
from dataward.log.verify import verify_log
from dataward.log.witness import verified_mark
from dataward.sources import add_source

pytestmark = pytest.mark.slow  # each test builds, verifies and re-verifies a workspace

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


def _sql(db: Path, sql: str, args: tuple[object, ...]) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, args)
    con.commit()
    con.close()


def _state_file(logenv: LogEnv) -> Path:
    path = Path(os.environ["DATAWARD_WITNESS"])
    (state_file,) = path.with_name(path.name + ".states").iterdir()
    return state_file


def _grow(ws: Any, tag: str, n: int) -> None:
    for i in range(n):
        add_source(ws, ws.actor("admin"), f"{tag}{i}", kind="internal", origin="x")


def test_incremental_runs_keep_the_state_file_and_agree_with_a_full_verify(logenv: LogEnv) -> None:
    ws = logenv.open()
    full = verify_log(ws, remember=True)
    assert full.ok
    state = _state_file(logenv).read_bytes()
    for round_ in range(3):
        _grow(ws, f"r{round_}-", 2)
        inc = verify_log(ws, incremental=True, remember=True)
        assert inc.ok and inc.mode == "incremental", [p.line() for p in inc.problems]
        mark = verified_mark(ws)
        assert mark is not None and mark.size == inc.entries
        assert mark.base is not None and mark.base.size == full.entries  # the journal: entries past the state
        assert mark.state.size == full.entries
        assert _state_file(logenv).read_bytes() == state  # not rewritten
        assert inc.root == verify_log(ws).root
        assert inc.signatures_checked == 2  # only the new entries' signatures, the journal's are not redone
    # the state replayed from the journal is the state a full replay gives (same verdicts from here on)
    _grow(ws, "last", 1)
    assert verify_log(ws, incremental=True).ok


def test_a_journal_over_its_limit_writes_the_state_anew(logenv: LogEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    state = _state_file(logenv).read_bytes()
    _grow(ws, "a", 1)
    monkeypatch.setattr(witness, "journal_limit", lambda size: 0)
    inc = verify_log(ws, incremental=True, remember=True)
    assert inc.ok and inc.mode == "incremental"
    mark = verified_mark(ws)
    assert mark is not None and mark.base is not None and mark.base.size == mark.size == inc.entries
    assert _state_file(logenv).read_bytes() != state


def test_an_edited_entry_in_the_journal_falls_back_to_a_full_verify_that_names_it(logenv: LogEnv) -> None:
    """A verified entry past the state file is read again (the replay reads it): its body or signature edited,
    the tree left alone, no longer folds to the recorded frontier, so the run verifies in full and names it."""
    ws = logenv.open()
    base = verify_log(ws, remember=True)
    _grow(ws, "j", 3)
    assert verify_log(ws, incremental=True, remember=True).ok
    victim = base.entries + 1  # verified, in the journal
    _sql(logenv.db, "UPDATE log_entries SET signature = ? WHERE seq = ?", (b"\x00" * 64, victim))
    _grow(ws, "k", 1)
    res = verify_log(ws, incremental=True)
    assert res.mode == "full" and not res.ok
    assert any(p.seq == victim and p.kind == "signature" for p in res.problems), [p.line() for p in res.problems]
    assert any(p.kind == "witness" and "changed since this client verified" in p.detail for p in res.problems)


def test_an_edited_column_of_a_journal_entry_is_named(logenv: LogEnv) -> None:
    """A column (not the signed body) of a journal entry edited: the leaves still fold (they cover the body
    and signature), and the replay names the column that no longer repeats the signed entry."""
    ws = logenv.open()
    base = verify_log(ws, remember=True)
    _grow(ws, "j", 3)
    assert verify_log(ws, incremental=True, remember=True).ok
    victim = base.entries + 2
    _sql(logenv.db, "UPDATE log_entries SET principal = 'mallory' WHERE seq = ?", (victim,))
    res = verify_log(ws, incremental=True)
    assert not res.ok
    assert any(p.seq == victim and "principal" in p.detail for p in res.problems), [p.line() for p in res.problems]


def test_an_edited_journal_frontier_in_the_mark_is_not_trusted(logenv: LogEnv) -> None:
    import json

    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    _grow(ws, "j", 2)
    assert verify_log(ws, incremental=True, remember=True).ok
    path = Path(os.environ["DATAWARD_WITNESS"])
    data = json.loads(path.read_text(encoding="utf-8"))
    mark = next(e for e in data.values() if isinstance(e, dict) and "verified" in e)["verified"]
    mark["state_size"] = mark["size"]  # claim the state covers every verified entry
    path.write_text(json.dumps(data), encoding="utf-8")
    res = verify_log(ws, incremental=True)
    assert res.mode == "full" and res.ok and "MAC" in res.fallback
