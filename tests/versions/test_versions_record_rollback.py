"""Record-level rollback: `rollback DS --without-records FILE|FINDING` keeps the clean records of a batch and
drops exactly the named ones; the signed manifest and the log say which and why; the replayed log revokes
them, so an older version still serving them is refused, and an edit of the dropped-record list (in the log
row or the catalog) is caught by `log verify` and at read time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from release_helpers import Env
from sqlalchemy import select, update

import dataward
from dataward.batches import get_batch
from dataward.core import dsse, merkle
from dataward.errors import ConflictError, InputError, IntegrityError, NotFoundError
from dataward.log.query import show_entries
from dataward.log.verify import verify_log
from dataward.release.diff import diff_versions
from dataward.release.rollback import parse_selector, read_selectors, rollback
from dataward.release.versions import get_version, read_envelope, release, verify_version
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _digest(record: str) -> str:
    return hashlib.sha256(b"\x00" + record.encode()).hexdigest()


ROWS = [f"clean{i}" for i in range(8)]
BAD = ["poison-a", "poison-b"]


def _two_batches(env: Env) -> tuple[str, str]:
    """train@1: a batch with 8 clean and 2 poisoned records (rows 2 and 6), and an untouched batch."""
    rows = [*ROWS[:2], BAD[0], *ROWS[2:5], BAD[1], *ROWS[5:]]
    mixed = env.approved("t\n" + "".join(r + "\n" for r in rows))
    other = env.approved("t\nother1\nother2\n")
    release(env.ws, env.actor("alice"), "train", [mixed, other])
    return mixed, other


def _texts(env: Env, spec: str) -> list[str]:
    return sorted(dataward.open(spec, workspace=env.ws, principal="tom").column("t").to_pylist())


def test_dropping_two_records_by_digest_keeps_the_rest_of_the_batch(env: Env, tmp_path: Path) -> None:
    mixed, other = _two_batches(env)
    lst = tmp_path / "bad.txt"
    lst.write_text("# found by the trigger detector\n" + "".join(_digest(b) + "\n" for b in BAD))
    v2, revoked = rollback(env.ws, env.actor("alice"), "train", without_records=read_selectors(str(lst)),
                           reason="trigger found")  # fmt: skip
    assert revoked == [] and (v2.number, v2.kind, v2.batches) == (2, "rollback", tuple(sorted([mixed, other])))
    assert get_batch(env.ws, mixed).state == "released"  # the batch is not revoked: its clean records stay
    assert v2.record_count == 10
    assert _texts(env, "train@2") == sorted([*ROWS, "other1", "other2"])
    t = dataward.open("train@2", workspace=env.ws, principal="tom")
    assert not set(t.column("_record_digest").to_pylist()) & {_digest(b) for b in BAD}
    # the Merkle root is the RFC 6962 root of the served records in order (an independent recomputation)
    leaves = [bytes.fromhex(h) for h in t.column("_record_digest").to_pylist()]
    assert merkle.root_from_leaf_hashes(leaves).hex() == v2.merkle_root
    rep = verify_version(env.ws, "train@2")
    assert rep.ok and rep.records == 10
    # the signed manifest names each dropped record, the version that dropped it and why
    pred = dsse.parse_statement(read_envelope(env.ws, v2.manifest_digest, "v2")).predicate
    entry = next(e for e in pred["batches"] if e["batch"] == mixed)
    assert [(d["file"], d["record"], d["sha256"], d["version"], d["reason"]) for d in entry["dropped_records"]] == [
        ("data.csv", 2, _digest(BAD[0]), "train@2", "trigger found"),
        ("data.csv", 6, _digest(BAD[1]), "train@2", "trigger found"),
    ]
    # and so does the log entry
    logged = show_entries(env.ws, action="dataset.rollback")[0].details
    assert [(d["batch"], d["record"]) for d in logged["dropped_records"]] == [(mixed, 2), (mixed, 6)]
    d = diff_versions(env.ws, "train@1", "train@2")
    assert sorted(r.digest for r in d.removed) == sorted(_digest(b) for b in BAD) and not d.added
    # the records are revoked: the old version that serves them no longer reads
    assert not verify_version(env.ws, "train@1").ok
    with pytest.raises(IntegrityError, match="revoked by rollback train@2"):
        dataward.open("train@1", workspace=env.ws, principal="tom")
    assert verify_log(env.ws).ok


def test_the_export_serves_the_remaining_records_and_raw_paths_are_refused(env: Env) -> None:
    mixed, other = _two_batches(env)
    rollback(env.ws, env.actor("alice"), "train", without_records=[parse_selector(f"{mixed}:2")])
    with pytest.raises(InputError, match="dropped"):
        dataward.open("train@2", as_="paths", workspace=env.ws, principal="tom")
    out = env.path / "exp"
    dataward.export("train@2", out, workspace=env.ws, principal="tom")
    import pyarrow.parquet as pq

    table = pq.read_table(next((out / "data").glob("*.parquet")))
    assert sorted(table.column("t").to_pylist()) == sorted([*ROWS, BAD[1], "other1", "other2"])
    # the raw file with a dropped record is not exported; the untouched one is, byte for byte
    assert not (out / mixed / "data.csv").exists()
    assert (out / other / "data.csv").read_text() == "t\nother1\nother2\n"


def test_dropped_records_stay_dropped_in_later_releases_and_whole_batch_rollback_still_works(env: Env) -> None:
    mixed, other = _two_batches(env)
    alice = env.actor("alice")
    rollback(env.ws, alice, "train", without_records=[parse_selector(f"{mixed}/data.csv:6")])
    more = env.approved("t\nmore\n")
    v3 = release(env.ws, alice, "train", [more])
    assert BAD[1] not in _texts(env, v3.spec) and BAD[0] in _texts(env, v3.spec)
    v4, revoked = rollback(env.ws, alice, "train", without=[other])
    assert revoked == [other] and v4.batches == tuple(sorted([mixed, more]))
    assert BAD[1] not in _texts(env, v4.spec)
    assert verify_version(env.ws, v4.spec).ok


def test_another_dataset_holding_the_batch_must_drop_the_records_too(env: Env) -> None:
    mixed, _other = _two_batches(env)
    alice = env.actor("alice")
    release(env.ws, alice, "eval", [mixed])
    rollback(env.ws, alice, "train", without_records=[parse_selector(_digest(BAD[0]))])
    with pytest.raises(IntegrityError, match="revoked by rollback train@2"):
        dataward.open("eval@1", workspace=env.ws, principal="tom")
    with pytest.raises(ConflictError, match="revoked by rollback train@2") as exc:
        release(env.ws, alice, "eval", [env.approved("t\nx\n")])
    assert "--without-records" in exc.value.advice
    v = rollback(env.ws, alice, "eval", without_records=[parse_selector(_digest(BAD[0]))])[0]
    assert BAD[0] not in _texts(env, v.spec) and len(_texts(env, v.spec)) == 9


def test_a_finding_id_drops_every_record_of_the_finding(env: Env) -> None:
    from dataward.workflow import screening

    dups = env.approved("t\n" + "".join(f"row number {i}\n" for i in range(30)) + "same\nsame\nsame\n")
    release(env.ws, env.actor("alice"), "train", [dups])
    report = screening.latest_report(env.ws, dups)
    shown = report.to_json()["findings"]
    assert all(f["id"] == f"{dups}#{i}" for i, f in enumerate(shown))
    i, f = next((i, f) for i, f in enumerate(report.findings) if f.kind == "exact_duplicates")
    assert f.records == (30, 31, 32)
    v, _ = rollback(env.ws, env.actor("alice"), "train", without_records=read_selectors(f"{dups}#{i}"))
    assert v.record_count == 30 and "same" not in _texts(env, v.spec)
    pred = dsse.parse_statement(read_envelope(env.ws, v.manifest_digest, "v")).predicate
    drops = pred["batches"][0]["dropped_records"]
    assert [d["record"] for d in drops] == [30, 31, 32]
    assert all(d["by"].startswith(f"finding {dups}#{i} (duplicates/exact_duplicates") for d in drops)
    with pytest.raises(NotFoundError, match=f"the screening report of {dups} has"):
        rollback(env.ws, env.actor("alice"), "train", without_records=read_selectors(f"{dups}#99"))


def test_a_findings_json_from_screen_show(env: Env, tmp_path: Path) -> None:
    mixed, _other = _two_batches(env)
    doc = {"batch": mixed, "findings": [{"check": "detection", "kind": "trigger", "severity": "high",
                                         "summary": "x", "records": [2, 6], "n_records": 2}]}  # fmt: skip
    p = tmp_path / "findings.json"
    p.write_text(json.dumps(doc))
    v, _ = rollback(env.ws, env.actor("alice"), "train", without_records=read_selectors(str(p)))
    assert _texts(env, v.spec) == sorted([*ROWS, "other1", "other2"])
    capped = {**doc, "findings": [{**doc["findings"][0], "n_records": 40}]}
    p.write_text(json.dumps(capped))
    with pytest.raises(InputError, match="lists 2 of its 40 records"):
        read_selectors(str(p))
    p.write_text(json.dumps({"findings": [{"check": "c", "kind": "k", "records": [1]}]}))
    with pytest.raises(InputError, match=r"finding 0 \(c/k\) names no batch records"):
        read_selectors(str(p))


def test_refusals_name_the_record(env: Env, tmp_path: Path) -> None:
    mixed, _other = _two_batches(env)
    alice = env.actor("alice")
    with pytest.raises(NotFoundError, match="is not served by train@1"):
        rollback(env.ws, alice, "train", without_records=[parse_selector("ab" * 32)])
    with pytest.raises(InputError, match="has 10 records, no record 10"):
        rollback(env.ws, alice, "train", without_records=[parse_selector(f"{mixed}:10")])
    with pytest.raises(NotFoundError, match="not in train@1"):
        rollback(env.ws, alice, "train", without_records=[parse_selector("b-nonesuch:1")])
    with pytest.raises(InputError, match="line 2"):
        (tmp_path / "l.txt").write_text(_digest(BAD[0]) + "\nnot a record\n")
        read_selectors(str(tmp_path / "l.txt"))
    with pytest.raises(InputError, match="exactly one"):
        rollback(env.ws, alice, "train", without=[mixed], without_records=[parse_selector(f"{mixed}:1")])
    rollback(env.ws, alice, "train", without_records=[parse_selector(f"{mixed}:2")])
    with pytest.raises(ConflictError, match="already dropped"):
        rollback(env.ws, alice, "train", without_records=[parse_selector(f"{mixed}:2")])
    assert get_version(env.ws, "train@latest").number == 2


def test_cli_rollback_without_records(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed, _other = _two_batches(env)
    lst = tmp_path / "bad.txt"
    lst.write_text(f"{_digest(BAD[0])}\n{mixed}:6\n")
    capsys.readouterr()
    assert env.cli("rollback", "train", "--without-records", str(lst), "--reason", "poison", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "train@2" and out["revoked"] == [] and out["records"] == 10
    assert [(d["batch"], d["record"], d["reason"]) for d in out["dropped_records"]] == [
        (mixed, 2, "poison"),
        (mixed, 6, "poison"),
    ]
    assert env.cli("rollback", "train", "--without-records", str(tmp_path / "missing.txt")) == InputError.exit_code
    assert env.cli("export", "train@2", str(tmp_path / "e"), principal="tom") == 0
    assert env.cli("export", "train@1", str(tmp_path / "e1"), principal="tom") == IntegrityError.exit_code
    assert not (tmp_path / "e1").exists()


def _sql(env: Env, stmt: object) -> None:
    with write_transaction(env.ws.engine) as conn:
        conn.execute(stmt)  # type: ignore[call-overload]


def test_an_sql_edit_of_the_logged_dropped_list_is_caught(env: Env) -> None:
    _two_batches(env)
    rollback(env.ws, env.actor("alice"), "train", without_records=[parse_selector(_digest(BAD[0]))])
    t = schema.log_entries
    with env.ws.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.action == "dataset.rollback")).one()
    body = json.loads(bytes(row.entry))
    body["details"]["dropped_records"] = []  # an insider "un-drops" the poisoned record in the log row
    _sql(env, update(t).where(t.c.seq == row.seq).values(entry=json.dumps(body).encode()))
    fresh = type(env.ws).open(env.ws.path)
    assert not verify_log(fresh).ok
    with pytest.raises(IntegrityError):
        dataward.open("train@2", workspace=fresh, principal="tom")
    fresh.engine.dispose()


def test_a_catalog_swap_to_the_parent_manifest_is_caught(env: Env) -> None:
    """Pointing the rollback version's catalog row at its parent's manifest and root would serve the
    dropped records again; the replayed log names the other manifest."""
    _two_batches(env)
    v1 = get_version(env.ws, "train@1")
    rollback(env.ws, env.actor("alice"), "train", without_records=[parse_selector(_digest(BAD[0]))])
    t = schema.dataset_versions
    _sql(env, update(t).where(t.c.dataset == "train", t.c.number == 2).values(
        manifest_digest=v1.manifest_digest, merkle_root=v1.merkle_root, record_count=v1.record_count))  # fmt: skip
    fresh = type(env.ws).open(env.ws.path)
    with pytest.raises(IntegrityError):
        dataward.open("train@2", workspace=fresh, principal="tom")
    fresh.engine.dispose()


def test_lineage_says_which_records_were_dropped_and_why(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from dataward.lineage.queries import lineage

    mixed, _other = _two_batches(env)
    rollback(env.ws, env.actor("alice"), "train", without_records=[parse_selector(f"{mixed}:2")], reason="trigger")
    release(env.ws, env.actor("alice"), "train", [env.approved("t\nlater\n")])
    got = lineage(env.ws, "train@3")["dropped_records"]  # carried forward into the later release
    assert [(d["batch"], d["record"], d["sha256"], d["version"], d["reason"]) for d in got] == [
        (mixed, 2, _digest(BAD[0]), "train@2", "trigger")
    ]
    assert lineage(env.ws, "train@1")["dropped_records"] == []
    assert [(r["record"], r["version"]) for r in lineage(env.ws, mixed)["revoked_records"]] == [(2, "train@2")]
    capsys.readouterr()
    assert env.cli("lineage", "train@3") == 0
    assert f"{mixed}/data.csv record 2 {_digest(BAD[0])} by train@2 trigger" in capsys.readouterr().out
