"""The gate's repositories (docs/adr/0039-repositories-and-transactions.md): typed reads and writes that
return frozen model values, and one error type for storage failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dataward.errors import CatalogError
from dataward.model.workflow_records import Approval, Audit, AuditItem, FeedRecord, ReviewDecision
from dataward.store import approvals, audits, intel_feeds, key_lookup, screenings, source_history
from dataward.store.catalog import Transaction, write_transaction
from dataward.store.repository import repository


def _open_audit(conn: Transaction, batch_id: str) -> int:
    return audits.insert_audit(
        conn,
        batch_id=batch_id,
        report_id=1,
        seed="ab" * 16,
        population=10,
        flagged_population=2,
        confidence=0.95,
        margin=0.05,
        created_at="2026-12-02T00:00:00Z",
        created_by="sam",
    )


def test_audit_round_trip_returns_frozen_values(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path)
    with write_transaction(ws.engine) as conn:
        aid = _open_audit(conn, "b-1")
        audits.insert_items(
            conn, aid, [AuditItem(3, "flagged", 0, 0, 3, "cd" * 32), AuditItem(7, "random", 1, 0, 7, "ef" * 32)]
        )
        audits.move_to_random(conn, aid, [3])
        audits.insert_decisions(
            conn,
            aid,
            [
                ReviewDecision(3, "rita", "ok", None, None, "t1"),
                ReviewDecision(3, "rita", "wrong-label", "cat", "second look", "t2"),
            ],
        )
        audits.mark_complete(conn, aid, completed_at="t3", completed_by="rita", envelope_digest="01" * 32)
    with ws.engine.connect() as conn:
        audit = audits.load_audit(conn, "b-1")
        items = audits.audit_items(conn, aid)
        latest = audits.latest_decisions(conn, aid)
        assert audits.load_audit(conn, "b-none") is None
    assert isinstance(audit, Audit) and audit.id == aid and audit.status == "complete"
    assert (audit.completed_by, audit.envelope_digest, audit.population) == ("rita", "01" * 32, 10)
    assert [(i.record, i.stratum) for i in items] == [(3, "random"), (7, "random")]  # drawing order, 3 moved
    assert latest[3].decision == "wrong-label" and latest[3].new_label == "cat"  # the latest decision wins
    with pytest.raises(dataclasses.FrozenInstanceError):
        audit.status = "open"  # type: ignore[misc]


def test_completing_twice_keeps_the_first_completion(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path)
    with write_transaction(ws.engine) as conn:
        aid = _open_audit(conn, "b-2")
        audits.mark_complete(conn, aid, completed_at="t1", completed_by="rita", envelope_digest="01" * 32)
        audits.mark_complete(conn, aid, completed_at="t2", completed_by="mallory", envelope_digest="02" * 32)
    with ws.engine.connect() as conn:
        audit = audits.load_audit(conn, "b-2")
    assert audit is not None and audit.completed_by == "rita"


def test_approvals_and_screenings_read_back(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path)
    a = Approval("alice", "aa" * 32, "2026-12-02T01:00:00Z", "bb" * 32)
    with write_transaction(ws.engine) as conn:
        approvals.insert_approval(conn, "b-3", a, policy_digest="cc" * 32, subject="batch:b-3", predicate_type="t")
        for n in (1, 2):
            screenings.insert_screening(
                conn,
                batch_id="b-3",
                envelope_digest=f"{n:02d}" * 32,
                flagged_digest="ff" * 32,
                flagged_count=n,
                created_at=f"t{n}",
                created_by="sam",
            )
    with ws.engine.connect() as conn:
        assert approvals.approvals_of(conn, "b-3") == [a]
        assert approvals.approvers_of(conn, "b-3") == {"alice"}
        assert approvals.approval_digest(conn, "b-3", "alice") == "bb" * 32
        assert approvals.approval_digest(conn, "b-3", "bob") is None
        newest = screenings.latest_screening(conn, "b-3")
        assert screenings.latest_screening(conn, "b-none") is None
    assert newest is not None and newest.flagged_count == 2 and newest.envelope_digest == "02" * 32


def test_feeds_keep_each_version_and_list_the_newest(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path)
    with write_transaction(ws.engine) as conn:
        for fid, v in (("acme", 1), ("acme", 3), ("zeta", 2)):
            intel_feeds.insert_feed(conn, FeedRecord(fid, v, "issuer", f"{v:02d}" * 32, "ab" * 32, v * 10, "t", "ada"))
    with ws.engine.connect() as conn:
        assert [(f.feed_id, f.version) for f in intel_feeds.feed_records(conn)] == [("acme", 3), ("zeta", 2)]
        assert len(intel_feeds.feed_records(conn, latest_only=False)) == 3
        assert intel_feeds.newest_version(conn, "acme") == 3 and intel_feeds.newest_version(conn, "x") is None


def test_key_lookup_returns_model_keys(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path, admin="admin")
    with ws.engine.connect() as conn:
        keys = key_lookup.registered_keys(conn)
        mine = key_lookup.active_keys(conn, "admin")
        assert key_lookup.find_key(conn, "00" * 32) is None
        assert key_lookup.find_key(conn, mine[0].keyid) == mine[0]
    assert mine and all(k.principal == "admin" and k.status == "active" for k in mine)
    assert {k.keyid for k in mine} <= {k.keyid for k in keys}
    assert mine[0].public_key.keyid == mine[0].keyid  # the stored hex is the key the ID names


def test_source_history_reads_log_details(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path, admin="admin")
    ws.record_denial("mallory", "batch.approve", "batch:b-9", "no role")
    with ws.engine.connect() as conn:
        assert source_history.count_entries(conn, "access.denied", "batch:b-9") == 1
        assert source_history.count_entries(conn, "access.denied", "batch:b-8") == 0
        (entry,) = source_history.entries_on(conn, ["access.denied"], ["batch:b-8", "batch:b-9"])
        assert source_history.entries_on(conn, ["access.denied"], []) == []
        assert [e.subject for e in source_history.entries_of(conn, "access.denied")] == ["batch:b-9"]
    assert entry.action == "access.denied" and entry.details["principal"] == "mallory"


def test_a_sqlalchemy_error_leaves_a_repository_as_catalog_error(
    tmp_path: Path, make_workspace: Callable[..., Any]
) -> None:
    ws = make_workspace(tmp_path)
    conn = ws.engine.connect()
    conn.close()  # a closed connection is SQLAlchemy's own error, not the driver's
    with pytest.raises(CatalogError, match=r"catalog failure \(dataward\.store\.audits\.load_audit\)") as err:
        audits.load_audit(conn, "b-1")
    assert err.value.__cause__ is not None and "\n" not in err.value.message


def test_repository_passes_other_errors_and_results_through() -> None:
    @repository
    def double(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    assert double(4) == 8 and double.__name__ == "double"
    with pytest.raises(ValueError, match="negative"):
        double(-1)
