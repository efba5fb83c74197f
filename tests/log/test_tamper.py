"""Tampering with the SQLite catalog directly is detected by `dataward log verify` or the witness, and named.

Each case edits a copy of a small workspace with sqlite3 (as an insider with database access would), then
runs `dataward log verify` through the CLI and asserts on the exit code and on the message naming the
entry (or saying the log was rewound).
"""

from __future__ import annotations

import gc
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.core import merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import Checkpoint, sign_checkpoint
from dataward.core.dsse import key_id
from dataward.log.auditlog import entry_leaf_hash

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


MIDDLE = 4


def _sql(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    con = sqlite3.connect(db)
    try:
        for sql, args in statements:
            cur = con.execute(sql, args)
            assert cur.rowcount != 0, sql
        con.commit()
    finally:
        con.close()


def _size(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT COUNT(*) FROM log_entries").fetchone()[0])
    finally:
        con.close()


def _row(db: Path, seq: int) -> dict[str, object]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return dict(con.execute("SELECT * FROM log_entries WHERE seq = ?", (seq,)).fetchone())
    finally:
        con.close()


def _verify(env: LogEnv) -> tuple[int, str]:
    return env.cli("log", "verify", who=None)


COLUMN_EDITS: dict[str, object] = {
    "time": "2020-01-01T00:00:00.000000Z",
    "principal": "mallory",
    "action": "principal.remove",
    "subject": "source:elsewhere",
    "keyid": "ab" * 32,
    "entry": None,  # set per test: one byte of the signed body changed
    "signature": None,  # one bit flipped
    "leaf_hash": b"\x00" * 32,
}


@pytest.mark.parametrize("column", sorted(COLUMN_EDITS))
def test_update_each_column_is_named(logenv: LogEnv, column: str) -> None:
    value = COLUMN_EDITS[column]
    row = _row(logenv.db, MIDDLE)
    if column == "entry":
        body = bytes(row["entry"])  # type: ignore[arg-type]
        value = body.replace(b'"subject":"', b'"subject":"X', 1)
        assert value != body
    elif column == "signature":
        sig = bytearray(row["signature"])  # type: ignore[arg-type]
        sig[0] ^= 1
        value = bytes(sig)
    _sql(logenv.db, (f"UPDATE log_entries SET {column} = ? WHERE seq = ?", (value, MIDDLE)))
    rc, out = _verify(logenv)
    assert rc == 3, out
    assert f"entry {MIDDLE}:" in out, out
    assert "FAILED" in out


def test_update_seq_renumbering_is_named(logenv: LogEnv) -> None:
    _sql(logenv.db, ("UPDATE log_entries SET seq = 1000 WHERE seq = ?", (MIDDLE,)))
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {MIDDLE}: entries {MIDDLE}..{MIDDLE} are missing" in out
    assert f"entry 1000: entry says it is number {MIDDLE}" in out


def test_delete_middle_row_is_named(logenv: LogEnv) -> None:
    n = _size(logenv.db)
    _sql(logenv.db, ("DELETE FROM log_entries WHERE seq = ?", (MIDDLE,)))
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {MIDDLE}: entries {MIDDLE}..{MIDDLE} are missing (deleted)" in out
    assert f"entry {n - 1}:" not in out  # only the deleted entry is named


def test_delete_last_row_is_named(logenv: LogEnv) -> None:
    last = _size(logenv.db) - 1
    _sql(logenv.db, ("DELETE FROM log_entries WHERE seq = ?", (last,)))
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {last}: entries {last}..{last} are missing" in out


def test_truncated_tail_is_named(logenv: LogEnv) -> None:
    n = _size(logenv.db)
    _sql(logenv.db, ("DELETE FROM log_entries WHERE seq >= ?", (n - 3,)))
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {n - 3}: entries {n - 3}..{n - 1} are missing" in out


def test_truncation_with_checkpoints_and_nodes_is_caught_by_the_witness(logenv: LogEnv) -> None:
    """A careful insider also drops the later checkpoints and tree nodes: only the witness can tell."""
    con = sqlite3.connect(logenv.db)
    sizes = [r[0] for r in con.execute("SELECT size FROM checkpoints ORDER BY size")]
    con.close()
    keep = sizes[-3]
    _sql(
        logenv.db,
        ("DELETE FROM log_entries WHERE seq >= ?", (keep,)),
        ("DELETE FROM checkpoints WHERE size > ?", (keep,)),
        ("DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > ?", (keep,)),
    )
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"rewound from {sizes[-1]} to {keep} entries" in out


def _insert_forged(db: Path, principal: str, key: Ed25519PrivateKey) -> int:
    """Append a signed entry behind the log's back (no nodes, no checkpoint); returns its number."""
    n = _size(db)
    kid = key_id(key.public_key())
    when = "2099-01-01T00:00:00.000000Z"
    fields = {"principal": principal, "action": "batch.approve", "subject": "batch:b-1"}
    body = canonical_json({"seq": n, "time": when, **fields, "details": {}, "keyid": kid})
    sig = key.sign(body)
    _sql(
        db,
        (
            "INSERT INTO log_entries (seq, time, principal, action, subject, entry, keyid, signature, leaf_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (n, when, *fields.values(), body, kid, sig, entry_leaf_hash(body, sig)),
        ),
    )
    return n


def test_forged_row_is_named(logenv: LogEnv) -> None:
    n = _insert_forged(logenv.db, "admin", Ed25519PrivateKey.generate())
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {n}: signed by unknown key" in out
    assert f"entry {n}: entries {n}..{n} are not covered by the signed checkpoint" in out


def test_forged_row_signed_with_a_stolen_principal_key_is_named(logenv: LogEnv) -> None:
    """Even with a principal's private key, an entry appended behind the log's back has no checkpoint."""
    ws = logenv.open()
    stolen = ws.actor("alice").key
    ws.engine.dispose()
    n = _insert_forged(logenv.db, "alice", stolen)
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {n}: entries {n}..{n} are not covered by the signed checkpoint" in out
    assert "signed by unknown key" not in out  # the signature itself is valid


def test_swapped_rows_are_named(logenv: LogEnv) -> None:
    a, b = 2, 5
    ra, rb = _row(logenv.db, a), _row(logenv.db, b)
    cols = [c for c in ra if c != "seq"]
    sets = ", ".join(f"{c} = ?" for c in cols)
    _sql(
        logenv.db,
        ("UPDATE log_entries SET seq = -1 WHERE seq = ?", (a,)),
        (f"UPDATE log_entries SET {sets} WHERE seq = ?", (*[rb[c] for c in cols], -1)),
        (f"UPDATE log_entries SET {sets} WHERE seq = ?", (*[ra[c] for c in cols], b)),
        ("UPDATE log_entries SET seq = ? WHERE seq = -1", (a,)),
    )
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"entry {a}: entry says it is number {b}" in out
    assert f"entry {b}: entry says it is number {a}" in out


def test_history_rewritten_with_the_stolen_log_key_is_caught_by_the_witness(logenv: LogEnv) -> None:
    """An insider with every key rewrites an old entry and rebuilds nodes and checkpoints consistently."""
    ws = logenv.open()
    log_key = ws.log_actor()
    ws.engine.dispose()
    con = sqlite3.connect(logenv.db)
    rows = con.execute("SELECT seq, entry, signature, keyid FROM log_entries ORDER BY seq").fetchall()
    seq, body, _sig, kid = rows[1]
    assert kid == log_key.keyid  # the admin's first entry is signed by the log key (the admin's key stays home)
    new_body = bytes(body).replace(b'"roles":["admin"]', b'"roles":["admin","approver"]')
    assert new_body != bytes(body)
    new_sig = log_key.sign(new_body)
    con.execute(
        "UPDATE log_entries SET entry = ?, signature = ?, leaf_hash = ? WHERE seq = ?",
        (new_body, new_sig, entry_leaf_hash(new_body, new_sig), seq),
    )
    leaves = [
        entry_leaf_hash(bytes(b), bytes(s))
        for _, b, s, _ in con.execute("SELECT seq, entry, signature, keyid FROM log_entries ORDER BY seq")
    ]
    tree = merkle.MerkleTree(leaves)
    con.execute("DELETE FROM log_nodes")
    con.executemany("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", list(tree.nodes()))
    for (size,) in con.execute("SELECT size FROM checkpoints").fetchall():
        note = sign_checkpoint(Checkpoint(ws.origin, size, tree.root(size)), ws.origin, log_key.key)
        con.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note.decode(), size))
    # and makes the catalog agree with the forged history (else log verify names the missing grant)
    con.execute(
        "INSERT INTO role_grants (principal, role, source, granted_at) VALUES ('admin', 'approver', NULL, ?)",
        ("2026-01-01T00:00:00.000000Z",),
    )
    con.commit()
    con.close()
    # the log itself is consistent again: a verifier without a witness is fooled ...
    fresh_witness = logenv.tmp / "fresh-witness.json"
    import os

    old = os.environ["DATAWARD_WITNESS"]
    os.environ["DATAWARD_WITNESS"] = str(fresh_witness)
    try:
        rc, out = _verify(logenv)
        assert rc == 0, out
    finally:
        os.environ["DATAWARD_WITNESS"] = old
    # ... but this client's witness saw the old root
    rc, out = _verify(logenv)
    assert rc == 3
    assert "forked or rewound" in out


def _snapshot(db: Path, dest: Path, *, with_wal: bool) -> None:
    gc.collect()
    dest.mkdir()
    wal = db.with_name(db.name + "-wal")
    if with_wal:
        # the caller keeps a connection open, so committed pages stay in the WAL: the copy needs both files
        assert wal.exists() and wal.stat().st_size > 0
        shutil.copy2(db, dest / db.name)
        shutil.copy2(wal, dest / wal.name)
    else:
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        shutil.copy2(db, dest / db.name)


def _restore(src: Path, db: Path) -> None:
    gc.collect()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    for f in src.iterdir():
        shutil.copy2(f, db.parent / f.name)


@pytest.mark.slow  # 9 s per case
@pytest.mark.parametrize("with_wal", [False, True], ids=["db-file", "db-and-wal"])
def test_restored_older_database_is_rewound(logenv: LogEnv, with_wal: bool) -> None:
    holder = sqlite3.connect(logenv.db)
    if with_wal:
        holder.execute("SELECT COUNT(*) FROM log_entries").fetchall()  # opens the WAL; no checkpoint on our close
        # more commits, so that the WAL holds pages the db file lacks
        assert logenv.cli("source", "add", "extra", "--kind", "internal", "--origin", "x")[0] == 0
    before = _size(logenv.db)
    snap = logenv.tmp / "snapshot"
    _snapshot(logenv.db, snap, with_wal=with_wal)
    holder.close()
    for i in range(3):
        rc, out = logenv.cli("source", "add", f"later{i}", "--kind", "internal", "--origin", "x")
        assert rc == 0, out
    after = _size(logenv.db)
    assert after > before
    _restore(snap, logenv.db)
    assert _size(logenv.db) == before
    rc, out = _verify(logenv)
    assert rc == 3
    # the witness saw every entry, the last command's own included (it re-checks when a command ends)
    assert re.search(rf"rewound from {after} to {before} entries", out), out


def test_untampered_log_verifies(logenv: LogEnv) -> None:
    rc, out = _verify(logenv)
    assert rc == 0, out
    assert "OK" in out


def test_emptied_log_is_rewound(logenv: LogEnv) -> None:
    n = _size(logenv.db)
    _sql(
        logenv.db,
        ("DELETE FROM log_entries", ()),
        ("DELETE FROM log_nodes", ()),
        ("DELETE FROM checkpoints", ()),
    )
    rc, out = _verify(logenv)
    assert rc == 3
    assert f"rewound from {n} to 0 entries" in out


def test_future_dated_last_entry_stops_appends_loudly(logenv: LogEnv) -> None:
    last = _size(logenv.db) - 1
    _sql(logenv.db, ("UPDATE log_entries SET time = '2099-01-01T00:00:00.000000Z' WHERE seq = ?", (last,)))
    rc, out = logenv.cli("source", "add", "late", "--kind", "internal", "--origin", "x")
    assert rc == 3 and f"the last audit log entry ({last}) is dated 2099" in out
    rc, out = _verify(logenv)
    assert rc == 3 and f"entry {last}: column 'time' was changed" in out


def test_garbage_time_on_the_last_entry_stops_appends_cleanly(logenv: LogEnv) -> None:
    last = _size(logenv.db) - 1
    _sql(logenv.db, ("UPDATE log_entries SET time = 'not a time' WHERE seq = ?", (last,)))
    rc, out = logenv.cli("source", "add", "late", "--kind", "internal", "--origin", "x")
    assert rc == 3 and f"the last audit log entry ({last}) has no valid time" in out and "Traceback" not in out
    rc, out = _verify(logenv)
    assert rc == 3 and f"entry {last}: column 'time' was changed" in out
