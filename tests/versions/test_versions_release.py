"""Releasing versions: signed manifests over record leaves, state moves, refusals, CLI, DSSE interop."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from release_helpers import Env
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey
from sqlalchemy import select

from dataward import open_dataset
from dataward.batches import BatchState, get_batch
from dataward.core import dsse, merkle
from dataward.errors import AuthorizationError, ConflictError, InputError, PolicyError
from dataward.lifecycle import PREDICATE_APPROVAL, PREDICATE_RELEASE, transition
from dataward.log.verify import verify_log
from dataward.release.versions import get_version, list_versions, parse_spec, release, verify_version
from dataward.store import schema


def _leaf(line: str) -> bytes:
    return hashlib.sha256(b"\x00" + line.encode()).digest()


def _statement(env: Env, digest: str) -> dict:
    envelope = dsse.Envelope.from_bytes(env.ws.objects.read_bytes("meta", digest))
    return json.loads(envelope.payload)


def test_release_signs_a_manifest_over_the_record_leaves_in_batch_order(env: Env) -> None:
    b1 = env.approved("a,b\n1,x\n2,y\n")
    b2 = env.approved("a,b\n3,z\n")
    v = release(env.ws, env.actor("alice"), "train", [b2, b1])
    assert v.spec == "train@1" and v.parent is None and v.record_count == 3
    assert list(v.batches) == sorted([b1, b2])
    # the root is recomputable from the raw records alone, in the defined order (batch id, file, record)
    by_batch = {b1: ["1,x", "2,y"], b2: ["3,z"]}
    leaves = [_leaf(r) for b in sorted(by_batch) for r in by_batch[b]]
    assert v.merkle_root == merkle.root_from_leaf_hashes(leaves).hex()
    st = _statement(env, v.manifest_digest)
    assert st["predicateType"] == PREDICATE_RELEASE
    p = st["predicate"]
    assert (p["dataset"], p["version"], p["parent"], p["record_count"]) == ("train", 1, None, 3)
    assert [e["batch"] for e in p["batches"]] == sorted([b1, b2])
    assert p["batches"][0]["manifest_sha256"] == get_batch(env.ws, sorted([b1, b2])[0]).manifest_digest
    assert get_batch(env.ws, b1).state == "released" and get_batch(env.ws, b2).state == "released"
    # released objects are in the released area, re-hashed
    for b in (b1, b2):
        for f in get_batch(env.ws, b).files:
            assert env.ws.objects.exists("released", f.sha256)
    assert verify_version(env.ws, "train@1").ok
    assert verify_log(env.ws).ok


def test_release_and_approval_envelopes_verify_with_securesystemslib(env: Env) -> None:
    b = env.approved("a\n1\n")
    v = release(env.ws, env.actor("alice"), "train", [b])
    with env.ws.engine.connect() as conn:
        keys = env.ws.public_keys(conn)
        rows = list(conn.execute(select(schema.attestations).where(schema.attestations.c.batch_id == b)))
    approval = next(r for r in rows if r.predicate_type == PREDICATE_APPROVAL)
    for digest in (v.manifest_digest, approval.envelope_digest):
        raw = env.ws.objects.read_bytes("meta", digest)
        ref = SslibEnvelope.from_dict(json.loads(raw))
        kid = ref.signatures and next(iter(ref.signatures))
        row = keys[kid]
        key = SSlibKey(kid, "ed25519", "ed25519", {"public": row.public_key})
        assert kid in ref.verify([key], 1)
        # and a changed payload does not verify
        d = json.loads(raw)
        d["payload"] = base64.b64encode(dsse.Envelope.from_bytes(raw).payload.replace(b"batch", b"bitch")).decode()
        with pytest.raises(Exception):
            SslibEnvelope.from_dict(d).verify([key], 1)


def test_next_version_has_parent_and_remove(env: Env) -> None:
    b1, b2 = env.approved("a\n1\n"), env.approved("a\n2\n")
    release(env.ws, env.actor("alice"), "train", [b1])
    v2 = release(env.ws, env.actor("alice"), "train", [b2])
    assert (v2.number, v2.parent, v2.batches) == (2, 1, tuple(sorted([b1, b2])))
    v3 = release(env.ws, env.actor("alice"), "train", [], [b1])
    assert v3.batches == (b2,) and v3.record_count == 1
    assert _statement(env, v3.manifest_digest)["predicate"]["parent_manifest"] == v2.manifest_digest
    assert [v.spec for v in list_versions(env.ws, "train")] == ["train@1", "train@2", "train@3"]
    assert get_batch(env.ws, b1).state == "released"  # removal alone revokes nothing
    assert all(verify_version(env.ws, s).ok for s in ("train@1", "train@2", "train@3"))


@pytest.mark.parametrize("state_steps", [0, 1, 2])
def test_release_refuses_batches_not_approved(env: Env, state_steps: int) -> None:
    b = env.acquire("a\n1\n")
    if state_steps:  # drive part of the way only
        steps = [("sam", "batch.screen", BatchState.SCREENED), ("rita", "audit.decide", BatchState.AUDITED)]
        for who, action, st in steps[:state_steps]:
            with env.ws.change(env.actor(who), action, f"batch:{b}") as ch:
                transition(ch, b, st)
    with pytest.raises(ConflictError, match="only approved batches"):
        release(env.ws, env.actor("alice"), "train", [b])
    assert list_versions(env.ws) == []


def test_release_refuses_approved_state_without_a_signed_approval(env: Env) -> None:
    b = env.acquire("a\n1\n")
    for who, action, st in (
        ("sam", "batch.screen", BatchState.SCREENED),
        ("rita", "audit.decide", BatchState.AUDITED),
        ("alice", "batch.approve", BatchState.APPROVED),
    ):
        with env.ws.change(env.actor(who), action, f"batch:{b}") as ch:
            transition(ch, b, st)
    with pytest.raises(PolicyError, match="no signed approval"):
        release(env.ws, env.actor("alice"), "train", [b])


def test_release_needs_the_approver_role_and_separation(env: Env) -> None:
    b = env.approved("a\n1\n")
    with pytest.raises(AuthorizationError):
        release(env.ws, env.actor("tom"), "train", [b])
    # an approver who also acquired the batch may not release it
    from dataward import principals
    from dataward.model.roles import Grant, Role

    principals.grant_roles(env.ws, env.actor("admin"), "ingrid", [Grant(Role.APPROVER)])
    with pytest.raises(AuthorizationError, match="separation of duties"):
        release(env.ws, env.actor("ingrid"), "train", [b])
    assert get_batch(env.ws, b).state == "approved"
    assert list_versions(env.ws) == []


def test_release_input_errors(env: Env) -> None:
    b = env.approved("a\n1\n")
    with pytest.raises(InputError, match="nothing to release"):
        release(env.ws, env.actor("alice"), "train", [])
    with pytest.raises(InputError, match="twice"):
        release(env.ws, env.actor("alice"), "train", [b, b])
    with pytest.raises(InputError, match="not allowed"):
        release(env.ws, env.actor("alice"), "bad name/x", [b])
    release(env.ws, env.actor("alice"), "train", [b])
    with pytest.raises(ConflictError, match="already in"):
        release(env.ws, env.actor("alice"), "train", [b])
    with pytest.raises(ConflictError, match="not in"):
        release(env.ws, env.actor("alice"), "train", [], ["b-19990101-00000000"])


def test_parse_spec() -> None:
    assert parse_spec("train@3") == ("train", 3)
    assert parse_spec("train@v3") == ("train", 3)
    assert parse_spec("train@latest") == ("train", None)
    for bad in ("b-20261125-abcdef12", "train", "train@", "train@x", "@3", "train@0"):
        with pytest.raises(InputError):
            parse_spec(bad)


def test_cli_release_show_list_verify(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    b1 = env.approved("a\n1\n")
    capsys.readouterr()
    assert env.cli("release", "train", "--add", b1, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "train@1" and out["batches"] == [b1]
    assert env.cli("dataset", "show", "train@1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["manifest_sha256"] == out["manifest_sha256"]
    assert env.cli("dataset", "list", "--json") == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == ["train@1"]
    assert env.cli("dataset", "verify", "train@1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    # refusals are one line, no traceback, with a non-zero status
    assert env.cli("release", "train", "--add", "b-19990101-00000000") == 2
    err = capsys.readouterr().err
    assert "no batch" in err and "Traceback" not in err
    assert env.cli("release", "train", "--add", b1, principal="tom") == 4


def test_open_latest_and_version_row(env: Env) -> None:
    b = env.approved("a,b\n1,x\n")
    release(env.ws, env.actor("alice"), "train", [b])
    t = open_dataset("train@latest", workspace=env.ws, principal="tom")
    assert t.num_rows == 1 and t.column("b").to_pylist() == ["x"]
    assert get_version(env.ws, "train@latest").number == 1


def test_a_concurrent_release_of_the_same_dataset_is_refused_whole(env: Env) -> None:
    from dataward.release.versions import commit_version, plan_version, version_subject

    alice = env.actor("alice")
    b1, b2 = env.approved("a\n1\n"), env.approved("a\n2\n")
    plan = plan_version(env.ws, alice, "train", [], [b1], [], None)  # planned against "no version yet"
    release(env.ws, alice, "train", [b2])  # meanwhile, someone else releases train@1
    with pytest.raises(ConflictError, match="meanwhile"):  # noqa: SIM117
        with env.ws.change(alice, "dataset.release", version_subject("train", plan.number)) as ch:
            commit_version(env.ws, ch, plan, "release", {})
    assert [v.spec for v in list_versions(env.ws)] == ["train@1"]
    assert get_batch(env.ws, b1).state == BatchState.APPROVED  # nothing of the refused release remains
    assert verify_log(env.ws).ok
