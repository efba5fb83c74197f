"""Parallel and incremental verification agree with the full sequential check and stay sound."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dataward.core.checkpoint import Checkpoint, sign_checkpoint
from dataward.core.merkle import MerkleTree
from dataward.log.auditlog import entry_leaf_hash
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
    mark = verified_mark(ws)
    assert full.ok and mark is not None and mark.size == full.entries
    admin = ws.actor("admin")
    for i in range(3):
        add_source(ws, admin, f"new{i}", kind="internal", origin="x")
    inc = verify_log(ws, incremental=True)
    assert inc.ok, [p.line() for p in inc.problems]
    assert inc.mode == "incremental" and inc.trusted_prefix == full.entries
    assert inc.signatures_checked == 3 and inc.entries == full.entries + 3
    assert inc.root == verify_log(ws).root
    ws.engine.dispose()


def _rewrite_tree(ws: Any, db: Path) -> None:
    """What an insider holding the log key does after editing entries: recompute every stored node from the
    rows and sign a new checkpoint over them, so the catalog is consistent with itself again."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT entry, signature FROM log_entries ORDER BY seq").fetchall()
    leaves = [entry_leaf_hash(bytes(e), bytes(s)) for e, s in rows]
    tree = MerkleTree(leaves)
    con.execute("DELETE FROM log_nodes")
    con.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", list(tree.nodes()))
    for i, leaf in enumerate(leaves):
        con.execute("UPDATE log_entries SET leaf_hash = ? WHERE seq = ?", (leaf, i))
    note = sign_checkpoint(Checkpoint(ws.origin, len(leaves), tree.root()), ws.origin, ws.log_actor().key)
    con.execute("UPDATE checkpoints SET note = ? WHERE size = (SELECT max(size) FROM checkpoints)", (note.decode(),))
    con.commit()
    con.close()


def test_incremental_reads_only_the_new_entries_and_a_full_verify_names_old_tampering(logenv: LogEnv) -> None:
    """A row edited below the verified size, the tree left alone, is not read by the incremental check (that
    is its point: O(new entries)); the tree it committed to is unchanged, and a full verification names it."""
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    _sql(logenv.db, "UPDATE log_entries SET signature = ? WHERE seq = 3", (b"\x00" * 64,))
    inc = verify_log(ws, incremental=True)
    assert inc.mode == "incremental" and inc.signatures_checked == 0
    full = verify_log(ws)
    assert any(p.seq == 3 and p.kind == "signature" for p in full.problems), [p.line() for p in full.problems]
    ws.engine.dispose()


def test_incremental_catches_a_rewritten_prefix_by_the_tree_and_names_it(logenv: LogEnv) -> None:
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    add_source(ws, ws.actor("admin"), "later", kind="internal", origin="x")
    _sql(logenv.db, "UPDATE log_entries SET principal = 'mallory' WHERE seq = 3", ())
    _sql(logenv.db, "UPDATE log_entries SET signature = ? WHERE seq = 3", (b"\x00" * 64,))
    _rewrite_tree(ws, logenv.db)  # consistent nodes, leaf hashes and a checkpoint signed by the log key
    res = verify_log(ws, incremental=True)
    assert not res.ok and res.mode == "full"  # fell back to the full check to name the entry
    assert any(p.seq == 3 for p in res.problems), [p.line() for p in res.problems]
    assert any(p.kind == "witness" and "changed since this client verified" in p.detail for p in res.problems)
    ws.engine.dispose()


def test_incremental_catches_an_edited_stored_node_of_the_verified_entries(logenv: LogEnv) -> None:
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    _sql(logenv.db, "UPDATE log_nodes SET hash = ? WHERE level = 3 AND idx = 0", (b"\x01" * 32,))
    res = verify_log(ws, incremental=True)
    assert not res.ok and res.mode == "full"
    assert any(p.kind == "witness" and "stored tree nodes" in p.detail for p in res.problems)
    assert any(p.kind == "node" for p in res.problems)
    ws.engine.dispose()


def test_incremental_names_a_tampered_new_entry_without_falling_back(logenv: LogEnv) -> None:
    ws = logenv.open()
    before = verify_log(ws, remember=True)
    add_source(ws, ws.actor("admin"), "later", kind="internal", origin="x")
    _sql(logenv.db, "UPDATE log_entries SET subject = 'source:other' WHERE seq = ?", (before.entries,))
    res = verify_log(ws, incremental=True)
    assert res.mode == "incremental" and not res.ok
    assert any(p.seq == before.entries and p.kind == "entry" for p in res.problems), [p.line() for p in res.problems]
    assert not any(p.kind == "witness" for p in res.problems)
    ws.engine.dispose()


def _witness(logenv: LogEnv) -> Path:
    return Path(os.environ["DATAWARD_WITNESS"])


def test_an_edited_witness_mark_or_state_is_not_trusted(logenv: LogEnv) -> None:
    """Each part of the recorded verification is bound: edited, the run falls back to a full verification
    and says why (a smaller size would otherwise skip checks, an edited state would change verdicts)."""
    ws = logenv.open()
    assert verify_log(ws, remember=True).ok
    add_source(ws, ws.actor("admin"), "later", kind="internal", origin="x")
    path = _witness(logenv)
    pristine = path.read_text(encoding="utf-8")
    (state_file,) = path.with_name(path.name + ".states").iterdir()
    state = state_file.read_bytes()

    def entry(data: dict[str, Any]) -> dict[str, Any]:
        return next(e for e in data.values() if isinstance(e, dict) and "verified" in e)["verified"]  # type: ignore[no-any-return]

    assert verify_log(ws, incremental=True).mode == "incremental"
    edits = {
        "size": lambda m: m.update(size=m["size"] - 1),
        "frontier": lambda m: m.update(frontier=list(reversed(m["frontier"]))),
        "mac recomputed without the key": lambda m: m.update(mac="0" * 64),
    }
    for what, edit in edits.items():
        data = json.loads(pristine)
        edit(entry(data))
        path.write_text(json.dumps(data), encoding="utf-8")
        res = verify_log(ws, incremental=True)
        assert res.mode == "full" and res.ok and "MAC" in res.fallback, (what, res.fallback)
    path.write_text(pristine, encoding="utf-8")
    state_file.write_bytes(state.replace(b'"admin"', b'"mallory"', 1))
    res = verify_log(ws, incremental=True)
    assert res.mode == "full" and "state was changed" in res.fallback
    state_file.write_bytes(state)
    assert verify_log(ws, incremental=True).mode == "incremental"
    ws.engine.dispose()


def test_incremental_applies_a_later_backdated_revocation(logenv: LogEnv) -> None:
    """Entries verified earlier are re-judged against revocations recorded since."""
    ws = logenv.open()
    alice = ws.actor("alice")
    from dataward.store import _schema as schema

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


def test_balanced_chunk_gives_every_worker_several_chunks() -> None:
    from dataward.log.verify import CHUNK, balanced_chunk

    # 100k entries in chunks of 32k were 4 tasks for 2 workers: one worker checked 65k entries, the other 35k
    assert balanced_chunk(CHUNK, 100_000, 2) == 8192
    assert -(-100_000 // balanced_chunk(CHUNK, 100_000, 2)) >= 8
    assert balanced_chunk(CHUNK, 1_000_000, 2) == CHUNK  # enough chunks already
    assert balanced_chunk(CHUNK, 10_000, 2) == 4096  # never below one row batch
    assert balanced_chunk(8, 100, 2) == 8  # a chunk asked for below a row batch is kept


def test_parallel_verification_cuts_a_small_log_finer(logenv: LogEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.log import verify

    ws = logenv.open()
    seq = verify_log(ws)
    monkeypatch.setattr(verify, "_ROW_BATCH", 1)  # lets the chunk shrink to a few entries on this small log
    par = verify_log(ws, workers=2, parallel_min_entries=0, chunk=1 << 10)
    assert par.ok and seq.ok
    assert -(-par.entries // par.chunk) >= 2 * verify.TASKS_PER_WORKER > -(-par.entries // (2 * par.chunk))
    assert (par.entries, par.signatures_checked, par.root) == (seq.entries, seq.signatures_checked, seq.root)
    ws.engine.dispose()
