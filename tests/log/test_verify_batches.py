"""log verify's row check in batches: the leaf hashes of a batch in one call and compared with the stored ones
at once, the signatures verified in one pass with the key each row's ``keyid`` column names (ADR 0089).

Each tampered log below must give the same report whatever the batch size (1: every row alone; 3: the
tampered entry inside a later batch; the default) and whether the leaf hashes come from the native
extension or its pure-Python twin; and the report must name the tampered entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dataward.core import ed25519, leafhash
from dataward.log import verify as V

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)

MIDDLE = 4


def _sql(db: Path, sql: str, args: tuple[object, ...]) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute(sql, args).rowcount == 1, sql
        con.commit()
    finally:
        con.close()


def _cell(db: Path, column: str, seq: int) -> Any:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT {column} FROM log_entries WHERE seq = ?", (seq,)).fetchone()[0]
    finally:
        con.close()


def _other_keyid(db: Path, seq: int) -> str:
    """The key ID of another entry's signer: a registered key that did not sign entry ``seq``."""
    con = sqlite3.connect(db)
    try:
        mine = con.execute("SELECT keyid FROM log_entries WHERE seq = ?", (seq,)).fetchone()[0]
        return str(con.execute("SELECT keyid FROM keys WHERE keyid != ? LIMIT 1", (mine,)).fetchone()[0])
    finally:
        con.close()


def _flip(b: bytes) -> bytes:
    x = bytearray(b)
    x[0] ^= 1
    return bytes(x)


#: (what is changed, how) -> the edit of entry MIDDLE's row
EDITS: dict[str, Callable[[Path], tuple[str, object]]] = {
    "leaf hash zeroed": lambda db: ("leaf_hash", b"\x00" * 32),
    "leaf hash of another entry": lambda db: ("leaf_hash", _cell(db, "leaf_hash", MIDDLE + 1)),
    "leaf hash cut short": lambda db: ("leaf_hash", bytes(_cell(db, "leaf_hash", MIDDLE))[:31]),
    "leaf hash as text": lambda db: ("leaf_hash", bytes(_cell(db, "leaf_hash", MIDDLE)).hex()),
    "leaf hash as a number": lambda db: ("leaf_hash", 7),
    "signature flipped": lambda db: ("signature", _flip(bytes(_cell(db, "signature", MIDDLE)))),
    "signature as text": lambda db: ("signature", "not a signature"),
    "signature cut short": lambda db: ("signature", bytes(_cell(db, "signature", MIDDLE))[:63]),
    "body with a changed subject": lambda db: (
        "entry",
        bytes(_cell(db, "entry", MIDDLE)).replace(b'"subject":"', b'"subject":"X', 1),
    ),
    "keyid column names another registered key": lambda db: ("keyid", _other_keyid(db, MIDDLE)),
    "keyid column names no key": lambda db: ("keyid", "ab" * 32),
    "keyid column as a number": lambda db: ("keyid", 12),
}

#: what the report of each edit must say about entry MIDDLE (and must not)
EXPECT: dict[str, tuple[str, str | None]] = {
    "leaf hash zeroed": ("stored leaf hash differs", None),
    "leaf hash of another entry": ("stored leaf hash differs", None),
    "leaf hash cut short": ("stored leaf hash differs", None),
    "leaf hash as text": ("stored leaf hash differs", None),
    "leaf hash as a number": ("stored leaf hash differs", None),
    "signature flipped": ("does not verify", None),
    "signature as text": ("does not verify", None),
    "signature cut short": ("does not verify", None),
    "body with a changed subject": ("does not verify", None),
    # the entry was signed with the key its body names: the column is reported, the signature verifies
    "keyid column names another registered key": ("column 'keyid' was changed", "does not verify"),
    "keyid column names no key": ("column 'keyid' was changed", "does not verify"),
    "keyid column as a number": ("column 'keyid' was changed", "does not verify"),
}


def _report(ws: Any) -> list[tuple[int | None, str, str]]:
    r = V.verify_log(ws, workers=1)
    return [(p.seq, p.kind, p.detail) for p in r.problems]


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_tampered_row_gets_one_report_whatever_the_batch_and_the_hasher(
    logenv: LogEnv, edit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    column, value = EDITS[edit](logenv.db)
    _sql(logenv.db, f"UPDATE log_entries SET {column} = ? WHERE seq = ?", (value, MIDDLE))
    ws = logenv.open()
    reports = {}
    for batch in (1, 3, V._ROW_BATCH):
        for native in (True, False):
            monkeypatch.setattr(V, "_ROW_BATCH", batch)
            if not native:
                monkeypatch.setattr(leafhash, "_native", None)
            reports[batch, native] = _report(ws)
            monkeypatch.undo()
    ws.engine.dispose()
    first = next(iter(reports.values()))
    assert all(r == first for r in reports.values()), reports
    named = [d for seq, _k, d in first if seq == MIDDLE]
    must, must_not = EXPECT[edit]
    assert any(must in d for d in named), first
    if must_not is not None:
        assert not any(must_not in d for d in named), first
    # only entry MIDDLE is named among the entry checks (the replay's own reports follow from it)
    assert {seq for seq, kind, _d in first if kind in ("entry", "signature")} == {MIDDLE}, first


def test_the_untampered_log_gives_no_report_whatever_the_batch(logenv: LogEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = logenv.open()
    for batch in (1, 2, 3, 5, V._ROW_BATCH):
        monkeypatch.setattr(V, "_ROW_BATCH", batch)
        r = V.verify_log(ws, workers=1)
        assert r.ok and r.signatures_checked == r.entries > MIDDLE + 1, r.to_json()
    ws.engine.dispose()


def test_a_signature_verified_with_the_columns_key_is_not_taken_for_the_bodys(
    logenv: LogEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the keyid column of entry MIDDLE names another registered key: the pass over the batch verifies its
    # signature with that key (and fails); the entry's own verdict is with the key its signed body names
    _sql(logenv.db, "UPDATE log_entries SET keyid = ? WHERE seq = ?", (_other_keyid(logenv.db, MIDDLE), MIDDLE))
    ws = logenv.open()
    seen: list[tuple[bytes, bool]] = []
    real = ed25519.verifier

    def spy(pub: bytes) -> Any:
        check = real(pub)

        def wrapped(sig: bytes, msg: bytes) -> bool:
            ok = bool(check(sig, msg))
            seen.append((pub, ok))
            return ok

        return wrapped

    monkeypatch.setattr(ed25519, "verifier", spy)
    r = V.verify_log(ws, workers=1)
    ws.engine.dispose()
    assert not any(p.kind == "signature" for p in r.problems), r.to_json()
    assert r.signatures_checked == r.entries
    assert sum(not ok for _pub, ok in seen) == 1  # the column's key, in the pass over the batch


def test_entry_leaves_native_and_python_agree_on_a_log(logenv: LogEnv) -> None:
    from dataward.log.auditlog import entry_leaf_hash

    con = sqlite3.connect(logenv.db)
    try:
        rows = con.execute("SELECT entry, signature FROM log_entries ORDER BY seq").fetchall()
    finally:
        con.close()
    bodies = [bytes(b) for b, _s in rows]
    sigs = [bytes(s) for _b, s in rows]
    # tampered forms as the row check hands them over: altered bodies, short, empty and long signatures
    bodies += [bodies[0][:-1], b"", bodies[1] + b" ", bodies[2] * 40]
    sigs += [sigs[0], b"", sigs[1][:1], sigs[2] + sigs[3]]
    want = b"".join(entry_leaf_hash(b, s) for b, s in zip(bodies, sigs, strict=True))
    assert leafhash.py_entry_leaves(bodies, sigs) == want
    assert leafhash.entry_leaves(bodies, sigs) == want
