"""An opaque file's record-digest list is implied by its SHA-256, not stored (ADR 0100).

Its one leaf is the leaf hash of the file's SHA-256, which the signed manifest names, so the acquire writes
no ``meta`` object for it; every reader derives the list and accepts it only if it hashes to the signed
``records_digest``. Lists of record formats are still stored objects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import batch_manifest, verify_batch
from dataward.records.leaves import file_leaf, implied_leaf_list
from dataward.workflow.audit import locate


def _meta_objects(env: Any) -> set[str]:
    return {p.name for p in (Path(env.ws.objects.root) / "meta").rglob("*") if p.is_file()}


def test_opaque_files_store_no_leaf_list_and_still_verify(env: Any) -> None:
    d = env.path / "delivery"
    d.mkdir()
    for i in range(5):
        (d / f"part-{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    (d / "one.jsonl").write_bytes(b'{"a": 1}\n')  # one record, but of a record format: its list is stored
    before = _meta_objects(env)
    batch = acquire(env.ws, env.ingester, "vendor", [d])
    files = batch_manifest(env.ws, batch.id)["files"]
    opaque = [f for f in files if f["format"] == "file"]
    assert len(opaque) == 5
    for f in opaque:
        assert f["records"] == 1
        assert f["records_digest"] == hashlib.sha256(file_leaf(f["sha256"])).hexdigest()
        assert f["merkle_root"] == file_leaf(f["sha256"]).hex()
    (jsonl,) = (f for f in files if f["format"] == "jsonl")
    assert _meta_objects(env) - before == {batch.manifest_digest, jsonl["records_digest"]}
    report = verify_batch(env.ws, batch.id)
    assert report.ok, report.problems
    assert report.records_checked == 6
    # the audit's record lookup reads the same lists (record 2 is the third file's one leaf)
    assert locate(env.ws, batch, [2])[2] == (2, 0, file_leaf(batch.files[2].sha256).hex())


def test_a_tampered_opaque_file_is_still_found(env: Any) -> None:
    p = env.path / "blob.bin"
    p.write_bytes(b"\x00" * 4096)
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    obj = Path(env.ws.objects.path("quarantine", batch.files[0].sha256))
    obj.chmod(0o644)
    obj.write_bytes(b"\x00" * 4095 + b"\x01")
    report = verify_batch(env.ws, batch.id)
    assert not report.ok
    assert any(pr.kind == "file" and pr.file == "blob.bin" for pr in report.problems)


def test_implied_list_only_for_the_digest_it_hashes_to() -> None:
    sha = hashlib.sha256(b"some file").hexdigest()
    leaf = file_leaf(sha)
    assert implied_leaf_list(sha, hashlib.sha256(leaf).hexdigest()) == leaf
    # another list's digest (a record format's, or a forged one) implies nothing: the stored object is read
    assert implied_leaf_list(sha, hashlib.sha256(leaf + leaf).hexdigest()) is None
    assert implied_leaf_list(sha, "0" * 64) is None
    assert implied_leaf_list("not hex", hashlib.sha256(leaf).hexdigest()) is None
