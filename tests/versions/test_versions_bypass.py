"""Quarantine cannot be bypassed: every public way of reading data refuses anything not released and verified.

Each test tries one way around (a batch id, a forged version row, a forged manifest, a tampered object, a
revoked batch, a removed approval, a deleted log entry...) through open() in every form, export() and the
CLI, and checks that nothing is handed out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from release_helpers import Env
from sqlalchemy import delete, insert, update

import dataward
from dataward.batches import get_batch
from dataward.core import dsse
from dataward.errors import AuthorizationError, Error, InputError, IntegrityError, NotFoundError
from dataward.lifecycle import PREDICATE_RELEASE
from dataward.release.rollback import rollback
from dataward.release.versions import Version, release
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

FORMS = ("arrow", "pandas", "polars", "paths")


def _released(env: Env) -> tuple[str, Version]:
    b = env.approved("text,label\nhello,0\nworld,1\n")
    return b, release(env.ws, env.actor("alice"), "train", [b])


def _refused(
    env: Env, spec: str, exc: type[Error] = IntegrityError, match: str | None = None, *, quick: bool = False
) -> None:
    """Every read path refuses ``spec``: open in every form, export (no directory left), and the CLI;
    with ``quick``, also the quick verification level."""
    for form in FORMS:
        with pytest.raises(exc, match=match):
            dataward.open(spec, as_=form, workspace=env.ws, principal="tom")
    if quick:
        for form in FORMS:
            with pytest.raises(IntegrityError):
                dataward.open(spec, as_=form, workspace=env.ws, principal="tom", verify="quick")
        with pytest.raises(IntegrityError):
            dataward.export(spec, env.path / "quick-export", workspace=env.ws, principal="tom", verify="quick")
        assert not (env.path / "quick-export").exists()
        assert env.cli("export", spec, str(env.path / "quick-export"), "--quick", principal="tom") == 3
    dest = env.path / f"export-{abs(hash((spec, exc)))}"
    with pytest.raises(exc, match=match):
        dataward.export(spec, dest, workspace=env.ws, principal="tom")
    assert not dest.exists()
    assert env.cli("export", spec, str(dest), principal="tom") == exc.exit_code
    assert not dest.exists()
    assert not [p for p in env.path.iterdir() if p.name.startswith(".export-")]


def _sql(env: Env, stmt: object) -> None:
    with write_transaction(env.ws.engine) as conn:
        conn.execute(stmt)  # type: ignore[call-overload]


def test_the_released_version_reads_in_every_form(env: Env) -> None:
    b, _v = _released(env)
    t = dataward.open("train@1", workspace=env.ws, principal="tom")
    assert t.column("text").to_pylist() == ["hello", "world"]
    assert dataward.open("train@1", as_="pandas", workspace=env.ws, principal="tom")["label"].tolist() == [0, 1]
    assert dataward.open("train@1", as_="polars", workspace=env.ws, principal="tom").height == 2
    paths = dataward.open("train@1", as_="paths", workspace=env.ws, principal="tom")
    assert [n for n, _ in paths] == [f"{b}/data.csv"]
    assert all("/released/" in str(p) and "quarantine" not in str(p) for _, p in paths)
    out = dataward.export("train@1", env.path / "out", workspace=env.ws, principal="tom")
    assert out["files"] == 1 and (env.path / "out" / b / "data.csv").read_text() == "text,label\nhello,0\nworld,1\n"
    from dataward.log.query import show_entries

    reads = show_entries(env.ws, action="data.read", newest_first=False)
    assert [e.details["how"] for e in reads] == [*FORMS, "export"]
    assert {(e.principal, e.subject, e.details["manifest_sha256"]) for e in reads} == {
        ("tom", "version:train@1", _v.manifest_digest)
    }


def test_a_batch_id_is_not_a_version(env: Env) -> None:
    b = env.acquire("text\nsecret\n")
    _refused(env, b, InputError, "not DATASET@VERSION")
    _refused(env, f"{b}@1", NotFoundError)
    _refused(env, "vendor@1", NotFoundError)  # a source is not a dataset either


def test_an_approved_but_unreleased_batch_cannot_be_read(env: Env) -> None:
    b = env.approved("text\nsecret\n")
    _refused(env, b, InputError)
    assert get_batch(env.ws, b).state == "approved"


def test_a_version_row_with_a_quarantined_batch_slipped_in(env: Env) -> None:
    _b, _v = _released(env)
    q = env.acquire("text\npoison\n")
    _sql(env, insert(schema.version_batches).values(dataset="train", number=1, batch_id=q, position=1))
    _refused(env, "train@1", IntegrityError, "not released|batch list")


def test_a_quarantined_batch_marked_released_in_the_catalog(env: Env) -> None:
    _b, _v = _released(env)
    q = env.acquire("text\npoison\n")
    _sql(env, update(schema.batches).where(schema.batches.c.id == q).values(state="released"))
    _sql(env, insert(schema.version_batches).values(dataset="train", number=1, batch_id=q, position=1))
    _refused(env, "train@1", IntegrityError)


def test_a_forged_version_row_reusing_a_signed_manifest(env: Env) -> None:
    _b, v = _released(env)
    row = {
        "dataset": "train",
        "number": 2,
        "parent": 1,
        "kind": "release",
        "manifest_digest": v.manifest_digest,
        "merkle_root": v.merkle_root,
        "record_count": v.record_count,
        "batch_count": 1,
        "created_at": v.created_at,
        "created_by": "alice",
    }
    _sql(env, insert(schema.dataset_versions).values(**row))
    _sql(env, insert(schema.version_batches).values(dataset="train", number=2, batch_id=v.batches[0], position=0))
    _refused(env, "train@2", IntegrityError)


def test_a_forged_version_signed_with_a_real_approver_key_but_never_logged(env: Env) -> None:
    """An attacker with catalog access and even an approver's key cannot mint a readable version:
    the release must also be in the signed, append-only log."""
    q = env.acquire("text\npoison\n")
    _sql(env, update(schema.batches).where(schema.batches.c.id == q).values(state="released"))
    bq = get_batch(env.ws, q)
    for f in bq.files:
        env.ws.objects.copy("quarantine", "released", f.sha256)
    from dataward.release.versions import batch_entry, entry_leaves

    entry = batch_entry(env.ws, bq)
    from dataward.core import merkle

    root = merkle.root_from_leaf_hashes(entry_leaves(env.ws, entry)).hex()
    created = "2026-01-01T00:00:00.000000Z"
    pred = {
        "dataset": "evil",
        "version": 1,
        "kind": "release",
        "parent": None,
        "batches": [entry],
        "record_count": bq.record_count,
        "merkle_root": root,
    }
    env_ = dsse.sign_envelope(dsse.make_statement([("evil@1", root)], PREDICATE_RELEASE, pred), env.actor("alice").key)
    digest = env.ws.objects.put_bytes("meta", env_.to_bytes())
    _sql(env, insert(schema.datasets).values(name="evil", created_at=created, created_by="alice"))
    row = {
        "dataset": "evil",
        "number": 1,
        "parent": None,
        "kind": "release",
        "manifest_digest": digest,
        "merkle_root": root,
        "record_count": bq.record_count,
        "batch_count": 1,
        "created_at": created,
        "created_by": "alice",
    }
    _sql(env, insert(schema.dataset_versions).values(**row))
    _sql(env, insert(schema.version_batches).values(dataset="evil", number=1, batch_id=q, position=0))
    _refused(env, "evil@1", IntegrityError, "release log entries|no signed approval")


def test_a_swapped_manifest_digest(env: Env) -> None:
    b1 = env.approved("text\na\n")
    b2 = env.approved("text\nb\n")
    v1 = release(env.ws, env.actor("alice"), "train", [b1])
    v2 = release(env.ws, env.actor("alice"), "train", [b2])
    t = schema.dataset_versions
    _sql(env, update(t).where(t.c.number == 1).values(manifest_digest=v2.manifest_digest))
    _refused(env, "train@1", IntegrityError)
    assert v1.manifest_digest != v2.manifest_digest


def test_a_tampered_released_object(env: Env) -> None:
    b, _v = _released(env)
    f = get_batch(env.ws, b).files[0]
    p = Path(env.ws.objects.path("released", f.sha256))
    os.chmod(p, 0o644)
    p.write_text("text,label\nhello,1\nworld,1\n")
    _refused(env, "train@1", IntegrityError, "SHA-256|differs", quick=True)


def test_a_released_object_deleted(env: Env) -> None:
    b, _v = _released(env)
    f = get_batch(env.ws, b).files[0]
    os.remove(env.ws.objects.path("released", f.sha256))
    _refused(env, "train@1", IntegrityError, "missing", quick=True)


def test_a_tampered_record_digest_list(env: Env) -> None:
    b, _v = _released(env)
    digest = get_batch(env.ws, b).files[0].records_digest
    assert digest is not None
    p = Path(env.ws.objects.path("meta", digest))
    os.chmod(p, 0o644)
    p.write_bytes(bytes(64))
    _refused(env, "train@1", IntegrityError, quick=True)


def test_a_tampered_version_manifest(env: Env) -> None:
    _b, v = _released(env)
    p = Path(env.ws.objects.path("meta", v.manifest_digest))
    os.chmod(p, 0o644)
    p.write_bytes(p.read_bytes().replace(b'"sig":"', b'"sig":"A', 1))
    _refused(env, "train@1", IntegrityError, "modified")


def test_a_revoked_batch(env: Env) -> None:
    b1 = env.approved("text\nclean\n")
    b2 = env.approved("text\npoison\n", source="web")
    release(env.ws, env.actor("alice"), "train", [b1, b2])
    v2, revoked = rollback(env.ws, env.actor("alice"), "train", without=["web"], reason="poisoned")
    assert revoked == [b2] and get_batch(env.ws, b2).state == "revoked"
    _refused(env, "train@1", IntegrityError, "revoked")
    assert dataward.open(v2.spec, workspace=env.ws, principal="tom").column("text").to_pylist() == ["clean"]
    # and a revoked batch cannot be released again
    with pytest.raises(Error, match=r"revoked|only approved"):
        release(env.ws, env.actor("alice"), "other", [b2])


def test_an_approval_removed_from_the_catalog(env: Env) -> None:
    b, _v = _released(env)
    _sql(env, delete(schema.attestations).where(schema.attestations.c.batch_id == b))
    _sql(env, delete(schema.approvals).where(schema.approvals.c.batch_id == b))
    _refused(env, "train@1", IntegrityError, "no signed approval")


def test_an_approval_re_signed_by_the_acquirer(env: Env) -> None:
    b, _v = _released(env)
    for t in (schema.attestations, schema.approvals):
        _sql(env, update(t).where(t.c.batch_id == b).values(principal="ingrid"))
    _refused(env, "train@1", IntegrityError, "acquirer")


def test_the_release_log_entry_deleted(env: Env) -> None:
    _b, _v = _released(env)
    env.acquire("text\nlater\n")  # the release entry is no longer the last one
    t = schema.log_entries
    _sql(env, delete(t).where(t.c.action == "dataset.release"))
    _refused(env, "train@1", IntegrityError, "release log entries")


def test_readers_need_a_reading_role(env: Env) -> None:
    _b, _v = _released(env)
    for who in ("ingrid", "sam"):
        with pytest.raises(AuthorizationError):
            dataward.open("train@1", workspace=env.ws, principal=who)
        assert env.cli("export", "train@1", str(env.path / who), principal=who) == 4
        assert not (env.path / who).exists()
    from dataward.log.query import show_entries

    denied = show_entries(env.ws, action="access.denied")
    assert any(e.details.get("action") == "data.read" for e in denied)
    reads = show_entries(env.ws, action="data.read")
    assert reads == []  # the denied attempts read nothing


def test_export_refuses_a_non_empty_destination(env: Env) -> None:
    _b, _v = _released(env)
    d = env.path / "full"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not an empty directory"):
        dataward.export("train@1", d, workspace=env.ws, principal="tom")
    assert sorted(p.name for p in d.iterdir()) == ["keep.txt"]


def test_open_refuses_unknown_forms(env: Env) -> None:
    _b, _v = _released(env)
    with pytest.raises(InputError, match="as_="):
        dataward.open("train@1", as_="numpy", workspace=env.ws, principal="tom")


def test_a_release_whose_manifest_lists_other_files_than_the_batch(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A releaser who signs (and logs) a version whose file list differs from the batch's own signed manifest,
    e.g. to hand out another object under an approved batch's name, is caught on reading."""
    from dataward.release import versions

    good = env.approved("text\nreviewed\n")
    other = env.approved("text\nswapped in\n")
    real = versions.batch_entry

    def forged(ws: object, batch: object) -> dict:
        e = real(ws, batch)  # type: ignore[arg-type]
        if e["batch"] == good:
            e["files"] = real(ws, get_batch(env.ws, other))["files"]  # type: ignore[arg-type]
        return e

    with pytest.MonkeyPatch.context() as mp:  # not monkeypatch.undo(): that would also undo the test's keyring
        mp.setattr(versions, "batch_entry", forged)
        release(env.ws, env.actor("alice"), "train", [good])
    _refused(env, "train@1", IntegrityError, "other files")
