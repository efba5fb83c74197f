"""Record-level diffs between versions; rollbacks that drop tainted batches and revoke them."""

from __future__ import annotations

import hashlib
import json

import pytest
from release_helpers import Env

import dataward
from dataward.batches import get_batch
from dataward.errors import AuthorizationError, ConflictError, InputError, NotFoundError
from dataward.lifecycle import PREDICATE_REVOCATION, attestations_for
from dataward.log.query import show_entries
from dataward.log.verify import verify_log
from dataward.release.diff import diff_versions
from dataward.release.rollback import rollback
from dataward.release.versions import get_version, release, verify_version

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _digest(record: str) -> str:
    return hashlib.sha256(b"\x00" + record.encode()).hexdigest()


def test_diff_lists_added_and_removed_records_by_digest(env: Env) -> None:
    b1 = env.approved("t\nkeep\ngone\n")
    b2 = env.approved("t\nkeep\nnew\nnew\n")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [b1])
    release(env.ws, alice, "train", [b2], [b1])
    d = diff_versions(env.ws, "train@1", "train@2")
    assert [(r.digest, r.batch, r.file, r.record) for r in d.added] == [
        (_digest("new"), b2, "data.csv", 1),
        (_digest("new"), b2, "data.csv", 2),
    ]
    assert [(r.digest, r.batch, r.record) for r in d.removed] == [(_digest("gone"), b1, 1)]
    assert d.unchanged == 1  # "keep" moved batch but is the same record
    assert (d.batches_added, d.batches_removed) == ((b2,), (b1,))
    back = diff_versions(env.ws, "train@2", "train@1")
    assert len(back.added) == 1 and len(back.removed) == 2
    same = diff_versions(env.ws, "train@2", "train@2")
    assert same.added == () and same.removed == () and same.unchanged == 3


def test_cli_diff_json(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    b1, b2 = env.approved("t\na\n"), env.approved("t\nb\n")
    release(env.ws, env.actor("alice"), "train", [b1])
    release(env.ws, env.actor("alice"), "train", [b2])
    capsys.readouterr()
    assert env.cli("diff", "train@1", "train@2", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added_count"] == 1 and out["removed_count"] == 0 and out["added"][0]["digest"] == _digest("b")
    assert env.cli("diff", "train@1", "train@9") == 2


def test_rollback_without_a_source_revokes_its_batches(env: Env) -> None:
    clean = env.approved("t\nclean\n")
    bad1 = env.approved("t\npoison1\n", source="web")
    bad2 = env.approved("t\npoison2\n", source="web")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [clean, bad1])
    release(env.ws, alice, "train", [bad2])
    v3, revoked = rollback(env.ws, alice, "train", without=["web"], reason="trigger found")
    assert (v3.number, v3.parent, v3.kind, v3.batches) == (3, 2, "rollback", (clean,))
    assert sorted(revoked) == sorted([bad1, bad2])
    for b in revoked:
        assert get_batch(env.ws, b).state == "revoked"
        assert [a.predicate_type for a in attestations_for(env.ws, b, PREDICATE_REVOCATION)] == [PREDICATE_REVOCATION]
    assert get_batch(env.ws, clean).state == "released"
    assert verify_version(env.ws, "train@3").ok
    assert not verify_version(env.ws, "train@2").ok and not verify_version(env.ws, "train@1").ok
    d = diff_versions(env.ws, "train@2", "train@3")
    assert sorted(r.digest for r in d.removed) == sorted([_digest("poison1"), _digest("poison2")])
    entry = show_entries(env.ws, action="dataset.rollback")[0]
    assert entry.subject == "version:train@3" and entry.details["reason"] == "trigger found"
    assert sorted(entry.details["revoked"]) == sorted(revoked)
    assert verify_log(env.ws).ok


def test_rollback_without_a_batch_and_to_a_version(env: Env) -> None:
    b1, b2, b3 = env.approved("t\n1\n"), env.approved("t\n2\n"), env.approved("t\n3\n")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [b1])
    release(env.ws, alice, "train", [b2])
    release(env.ws, alice, "train", [b3])
    v4, revoked = rollback(env.ws, alice, "train", without=[b2])
    assert v4.batches == tuple(sorted([b1, b3])) and revoked == [b2]
    v5, revoked = rollback(env.ws, alice, "train", to="train@1")
    assert v5.batches == (b1,) and revoked == [b3]
    assert dataward.open("train@5", workspace=env.ws, principal="tom").column("t").to_pylist() == [1]
    # going back to a version that holds a revoked batch is refused
    with pytest.raises(ConflictError, match="revoked"):
        rollback(env.ws, alice, "train", to=2)


def test_rollback_brings_back_a_batch_removed_without_revocation(env: Env) -> None:
    b1, b2 = env.approved("t\n1\n"), env.approved("t\n2\n")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [b1, b2])
    release(env.ws, alice, "train", [], [b2])
    v3, revoked = rollback(env.ws, alice, "train", to="1")
    assert v3.batches == tuple(sorted([b1, b2])) and revoked == []
    assert verify_version(env.ws, v3.spec).ok


def test_rollback_refusals(env: Env) -> None:
    b = env.approved("t\n1\n")
    alice = env.actor("alice")
    with pytest.raises(NotFoundError):
        rollback(env.ws, alice, "train", without=[b])
    release(env.ws, alice, "train", [b])
    with pytest.raises(InputError, match="exactly one"):
        rollback(env.ws, alice, "train")
    with pytest.raises(InputError, match="exactly one"):
        rollback(env.ws, alice, "train", to=1, without=[b])
    with pytest.raises(ConflictError, match="latest"):
        rollback(env.ws, alice, "train", to=1)
    with pytest.raises(ConflictError, match="nothing"):
        rollback(env.ws, alice, "train", without=["web"])
    with pytest.raises(NotFoundError, match="neither"):
        rollback(env.ws, alice, "train", without=["nonesuch"])
    with pytest.raises(AuthorizationError):
        rollback(env.ws, env.actor("tom"), "train", without=[b])
    assert get_version(env.ws, "train@latest").number == 1
    assert get_batch(env.ws, b).state == "released"


def test_cli_rollback_and_blast_radius(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    clean, bad = env.approved("t\nok\n"), env.approved("t\nbad\n", source="web")
    release(env.ws, env.actor("alice"), "train", [clean, bad])
    release(env.ws, env.actor("alice"), "eval", [bad])
    capsys.readouterr()
    assert env.cli("blast-radius", bad, "--json") == 0
    br = json.loads(capsys.readouterr().out)
    assert sorted(v["version"] for v in br["versions"]) == ["eval@1", "train@1"]
    assert env.cli("rollback", "train", "--without", bad, "--reason", "poison", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "train@2" and out["revoked"] == [bad]
    # the batch is revoked everywhere: eval@1 holds it too and no longer reads
    assert env.cli("export", "eval@1", str(env.path / "e"), principal="tom") == 3


def test_a_batch_revoked_through_another_dataset_blocks_the_next_release_until_dropped(env: Env) -> None:
    shared, other = env.approved("t\nshared\n"), env.approved("t\nother\n")
    alice = env.actor("alice")
    release(env.ws, alice, "a", [shared])
    release(env.ws, alice, "b", [shared])
    rollback(env.ws, alice, "b", without=[shared])
    with pytest.raises(ConflictError, match="is revoked") as exc:
        release(env.ws, alice, "a", [other])
    assert "rollback --without" in exc.value.advice
    v, revoked = rollback(env.ws, alice, "a", without=[shared])
    assert revoked == [] and v.batches == ()  # already revoked: dropped, not revoked twice
    assert release(env.ws, alice, "a", [other]).batches == (other,)
