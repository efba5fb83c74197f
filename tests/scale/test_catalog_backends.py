"""The same workspace operations on SQLite and on PostgreSQL (catalog_url is parametrized in tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.cli import main
from dataward.errors import AuthorizationError, ConflictError, WorkspaceError
from dataward.log.verify import verify_log
from dataward.log.witness import RewoundLogError, check_witness
from dataward.model.roles import Grant, Role
from dataward.principals import enroll, list_principals
from dataward.sources import add_source, list_sources
from dataward.store import schema
from dataward.store.catalog import make_engine, normalize_url
from dataward.workspace import Workspace


def _setup(ws: Workspace) -> Any:
    admin = ws.actor("admin")
    enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "feed", kind="third-party", origin="https://example.org/feed", license="MIT")
    return admin


def _delivery(tmp_path: Path) -> Path:
    d = tmp_path / "delivery"
    d.mkdir()
    (d / "a.jsonl").write_bytes(b'{"text": "one", "label": 0}\r\n\n{"text": "two", "label": 1}\n')
    (d / "b.csv").write_bytes(b'text,label\nhello,0\n"multi\nline",1\n')
    (d / "c.bin").write_bytes(bytes(range(256)))
    return d


def test_full_flow_on_both_backends(make_workspace: Any, tmp_path: Path, catalog_url: str) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    admin = _setup(ws)
    assert {p["name"] for p in list_principals(ws)} >= {"admin", "ingrid"}
    assert [s.name for s in list_sources(ws)] == ["feed"]
    with pytest.raises(ConflictError):
        add_source(ws, admin, "feed", kind="third-party", origin="x")

    batch = acquire(ws, ws.actor("ingrid"), "feed", [_delivery(tmp_path)])
    assert batch.file_count == 3 and batch.record_count == 2 + 2 + 1
    report = verify_batch(ws, batch.id)
    assert report.ok, report.problems
    assert report.records_checked == 5

    # a denied action is refused, rolled back and logged
    with pytest.raises(AuthorizationError):
        add_source(ws, ws.actor("ingrid"), "other", kind="internal", origin="x")
    assert [s.name for s in list_sources(ws)] == ["feed"]

    log = verify_log(ws)
    assert log.ok, log.problems
    actions = _actions(ws)
    assert actions[:2] == ["workspace.init", "principal.add"]
    assert actions.count("batch.acquire") == 1 and actions[-1] == "access.denied"
    assert log.entries == len(actions) == log.checkpoint_size
    assert check_witness(ws) is not None

    # reopening by the stored configuration gives the same catalog
    again = Workspace.open(ws.path)
    try:
        assert [b.id for b in list_batches(again)] == [batch.id]
    finally:
        again.engine.dispose()


def _actions(ws: Workspace) -> list[str]:
    t = schema.log_entries
    with ws.engine.connect() as conn:
        return [str(a) for a in conn.execute(select(t.c.action).order_by(t.c.seq)).scalars()]


def test_tampering_is_found_on_both_backends(make_workspace: Any, tmp_path: Path, catalog_url: str) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    _setup(ws)
    assert check_witness(ws) is not None
    t = schema.log_entries
    with ws.engine.begin() as conn:
        body = conn.execute(select(t.c.entry).where(t.c.seq == 2)).scalar_one()
        forged = bytes(body).replace(b"ingester", b"approver")
        assert forged != bytes(body)
        conn.execute(update(t).where(t.c.seq == 2).values(entry=forged))
    log = verify_log(ws)
    assert not log.ok and any(p.seq == 2 for p in log.problems)
    # a rewound log (the last entries deleted, as by restoring an old backup) is caught by the witness
    with ws.engine.begin() as conn:
        conn.execute(schema.log_entries.delete().where(t.c.seq >= 3))
        conn.execute(schema.checkpoints.delete().where(schema.checkpoints.c.size > 3))
    with pytest.raises(RewoundLogError):
        check_witness(ws)


@pytest.mark.slow  # 6.5 s
def test_threads_append_without_forks(make_workspace: Any, tmp_path: Path, catalog_url: str) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    admin = ws.actor("admin")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(15):
                ws.record(admin, "log.verify", f"thread:{k}:{i}", {"k": k, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    log = verify_log(ws)
    assert log.ok, log.problems
    assert log.entries == 2 + 6 * 15
    t = schema.log_entries
    with ws.engine.connect() as conn:
        seqs = list(conn.execute(select(t.c.seq).order_by(t.c.seq)).scalars())
        subjects = set(conn.execute(select(t.c.subject)).scalars())
    assert seqs == list(range(2 + 6 * 15))
    assert {f"thread:{k}:{i}" for k in range(6) for i in range(15)} <= subjects


def test_cli_init_with_catalog_url(tmp_path: Path, catalog_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ws_dir = tmp_path / "cliws"
    assert main(["init", str(ws_dir), "--admin", "root", "--catalog", catalog_url]) == 0
    capsys.readouterr()
    assert main(["-w", str(ws_dir), "--as", "root", "log", "verify", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["entries"] == 2
    Workspace.open(ws_dir).engine.dispose()


def test_second_workspace_on_same_catalog_is_refused(make_workspace: Any, tmp_path: Path, catalog_url: str) -> None:
    make_workspace(tmp_path, catalog_url)
    with pytest.raises(WorkspaceError, match="already belongs"):
        Workspace.init(tmp_path / "other", admin="admin", catalog=catalog_url)


def test_plain_postgresql_urls_use_psycopg() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert make_engine("postgresql://u:p@127.0.0.1:1/db").dialect.driver == "psycopg"


def test_unreachable_catalog_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"cannot connect to catalog .*:\*\*\*@127\.0\.0\.1:1/db"):
        Workspace.init(tmp_path / "ws", admin="admin", catalog="postgresql://u:secret@127.0.0.1:1/db")
    assert main(["init", str(tmp_path / "ws2"), "--admin", "a", "--catalog", "postgresql://u:pw@127.0.0.1:1/d"]) != 0
