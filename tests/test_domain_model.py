"""The domain model and the state layer's repositories (ADR 0040): actions, subjects, sources and keys are
frozen model values, read from the catalog by store/ and nowhere else."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from dataward.access import PERMISSIONS
from dataward.errors import InputError
from dataward.log.query import show_entries
from dataward.model import Action, KeyRecord, Source, SourceKind, Subject
from dataward.sources import add_source, get_source, list_sources
from dataward.store import _schema as schema
from dataward.store import keys_repo, sources_repo
from dataward.store.catalog import write_transaction


def test_every_checked_action_is_one_action_member() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(type(a) is Action for a in PERMISSIONS)
    assert PERMISSIONS["batch.acquire"] is PERMISSIONS[Action.BATCH_ACQUIRE]  # a plain string finds it too


def test_log_entries_name_the_model_subjects(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path, admin="ada")
    admin = ws.actor("ada")
    add_source(ws, admin, "vendor", kind="third-party", origin="https://example.org", license="MIT")
    entries = {e.action: e for e in show_entries(ws, newest_first=False)}
    assert entries["principal.add"].subject == Subject.principal("ada")
    assert entries["source.add"].subject == Subject.source("vendor")
    assert entries["source.add"].action == Action.SOURCE_ADD


def test_sources_come_back_as_frozen_values(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    made = add_source(ws, admin, "gen", kind="synthetic", origin="in-house", license="Apache-2.0")
    assert isinstance(made, Source) and made.kind is SourceKind.SYNTHETIC and made.created_by == "admin"
    assert get_source(ws, "gen") == made and list_sources(ws) == [made]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.origin = "elsewhere"  # type: ignore[misc]
    with ws.engine.connect() as conn:
        assert sources_repo.source_named(conn, "gen") == made
        assert sources_repo.source_named(conn, "nope") is None


def test_key_records_keep_a_tampered_key_for_the_verifier_to_name(
    tmp_path: Path, make_workspace: Callable[..., Any]
) -> None:
    ws = make_workspace(tmp_path)
    kid = ws.actor("admin").keyid
    with ws.engine.connect() as conn:
        record = keys_repo.active_key(conn, "admin")
        assert isinstance(record, KeyRecord) and record.keyid == kid and record.status == "active"
        assert record.key().public_key.keyid == kid  # the stored key is the key its ID names
        assert set(ws.public_keys(conn)) == {kid, ws.log_actor().keyid}
    with write_transaction(ws.engine) as conn:  # replace the stored public key beneath the library
        conn.execute(update(schema.keys).where(schema.keys.c.keyid == kid).values(public_key="zz" * 32))
    with ws.engine.connect() as conn:
        tampered = keys_repo.key_records(conn)[kid]
    assert tampered.public_key == "zz" * 32  # read as stored: verifiers report it, they do not crash on it
    with pytest.raises((InputError, ValueError)):
        tampered.key()


def test_a_repository_failure_is_a_catalog_error(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    from dataward.errors import CatalogError
    from dataward.store import evidence_repo

    ws = make_workspace(tmp_path)
    conn = ws.engine.connect()
    conn.close()  # SQLAlchemy's own error (a closed connection), raised before any driver is reached
    for read in (lambda: keys_repo.key_records(conn), lambda: list(evidence_repo.raw_entries(conn))):
        with pytest.raises(CatalogError, match="catalog failure"):
            read()
