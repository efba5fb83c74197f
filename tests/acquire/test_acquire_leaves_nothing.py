"""A refused or failed acquire leaves the object store exactly as it was (issue 14, "nothing left behind").

Objects are content-addressed and shared between batches, so the clean-up removes only what the failed
attempt created and no batch names; every earlier batch still verifies afterwards.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from dataward.acquire import acquire as acquire_mod
from dataward.acquire.acquire import acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.core import dsse
from dataward.errors import Error, InputError, IntegrityError
from dataward.log.verify import verify_log


def _store_files(env: Any) -> set[str]:
    """Every file under the object store's root (quarantine, released, meta, incoming), relative."""
    root = Path(env.ws.objects.root)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _refused_deliveries(env: Any, n: int) -> list[tuple[list[Path], dict[str, Any], type[Error]]]:
    """``n`` deliveries refused in different ways, each with its own fresh (never stored) content."""
    out: list[tuple[list[Path], dict[str, Any], type[Error]]] = []
    for i in range(n):
        d = env.path / f"delivery{i}"
        d.mkdir()
        good = d / "good.csv"
        good.write_bytes(f"a,b\n{i},fresh-{i}\n".encode())
        kind = i % 3
        if kind == 0:  # a bad record after a good file: the good file was already copied
            bad = d / "zbad.csv"
            bad.write_bytes(f"a,b\n{i},2\n3,4,5\n".encode())
            out.append(([good, bad], {}, InputError))
        elif kind == 1:  # the supplier's checksum does not match
            sums = d / "SHA256SUMS"
            sums.write_text(f"{'0' * 64}  good.csv\n")
            out.append(([good], {"expect": sums}, IntegrityError))
        else:  # invalid UTF-8 in a text file next to a good CSV
            bad = d / "bad.txt"
            bad.write_bytes(f"ok {i}\n".encode() + b"broken \xff\n")
            out.append(([good, bad], {}, InputError))
    return out


@pytest.mark.slow
def test_many_refused_deliveries_leave_the_store_as_it_was(env: Any) -> None:
    kept = env.path / "kept.csv"
    kept.write_bytes(b"a,b\n1,2\n")
    earlier = acquire(env.ws, env.ingester, "vendor", [kept])
    before = _store_files(env)
    refused = _refused_deliveries(env, 30)
    for paths, kw, exc in refused:
        with pytest.raises(exc):
            acquire(env.ws, env.ingester, "vendor", paths, **kw)
    assert _store_files(env) == before
    assert [b.id for b in list_batches(env.ws)] == [earlier.id]
    assert verify_batch(env.ws, earlier.id).ok
    assert verify_log(env.ws).ok


def test_a_refused_delivery_keeps_an_object_another_batch_shares(env: Any) -> None:
    shared = env.path / "shared.csv"
    shared.write_bytes(b"a,b\n1,2\n")
    earlier = acquire(env.ws, env.ingester, "vendor", [shared])
    bad = env.path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3,4,5\n")
    before = _store_files(env)
    with pytest.raises(InputError, match=r"bad\.csv"):
        acquire(env.ws, env.ingester, "vendor", [shared, bad])
    assert _store_files(env) == before
    digest = hashlib.sha256(shared.read_bytes()).hexdigest()
    assert env.ws.objects.exists("quarantine", digest)
    assert verify_batch(env.ws, earlier.id).ok


def test_a_failure_after_copying_removes_the_new_objects(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only refusals: any error before the catalog commits (here: signing the manifest) cleans up too."""
    before = _store_files(env)
    p = env.path / "a.csv"
    p.write_bytes(b"a,b\n7,8\n")

    def broken(*_a: object, **_k: object) -> object:
        raise RuntimeError("signer unavailable")

    monkeypatch.setattr(dsse, "sign_envelope", broken)
    with pytest.raises(RuntimeError, match="signer unavailable"):
        acquire(env.ws, env.ingester, "vendor", [p])
    assert _store_files(env) == before  # the record-digest list (meta) written before signing is gone too
    assert not list_batches(env.ws)


def test_an_object_removed_by_a_concurrent_failed_attempt_is_a_conflict_not_a_broken_batch(env: Any) -> None:
    """The catalog transaction re-checks its objects: a batch never names an object that is gone."""
    before = _store_files(env)
    p = env.path / "a.csv"
    p.write_bytes(b"a,b\n1,2\n")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    real_copy_all = acquire_mod._copy_all

    def copy_then_lose(*args: Any, **kwargs: Any) -> Any:
        stored = real_copy_all(*args, **kwargs)
        env.ws.objects.remove("quarantine", digest)  # what a concurrent attempt's clean-up would do
        return stored

    mp = pytest.MonkeyPatch()
    mp.setattr(acquire_mod, "_copy_all", copy_then_lose)
    mp.setattr(acquire_mod, "_record_digests_all", lambda ws, stored, *a: _digests_from_file(p, stored))
    try:
        with pytest.raises(Error, match="concurrent failed acquire") as info:
            acquire(env.ws, env.ingester, "vendor", [p])
        assert info.value.exit_code == 6
    finally:
        mp.undo()
    assert not list_batches(env.ws)
    assert _store_files(env) == before  # its manifest and record-digest list were removed as well
    assert verify_log(env.ws).ok
    assert os.path.exists(p)


def _digests_from_file(p: Path, stored: Any) -> Any:
    from dataward.records.leaves import record_digests

    return [record_digests(lambda: open(p, "rb"), p.name, "csv", file_sha256=stored[0].sha256, strict=True)]
