"""Acquisition fingerprints every file and record; verify recomputes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import batch_manifest, verify_batch
from dataward.batches import BatchState, list_batches
from dataward.core import merkle
from dataward.log.verify import verify_log
from dataward.records.leaves import file_leaf, implied_leaf_list, record_digests


def _write(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_records_and_merkle_roots_per_format(env: Any) -> None:
    d = env.path / "delivery"
    _write(d / "a.csv", b"x,y\n1,2\n3,4\r\n\n5,6")
    _write(d / "b.tsv", b'label\ttext\nham\tsaid "hi\nspam\tfree\n')
    _write(d / "c.jsonl", b'{"a": 1}\n{"a": [2, "x"]}\n')
    _write(d / "d.txt", "first line\nsecond ✓\n".encode())
    _write(d / "img" / "e.png", b"\x89PNG\r\n\x1a\nnot really")
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}), d / "f.parquet")
    batch = acquire(env.ws, env.ingester, "vendor", [d])
    counts = {f.name: f.record_count for f in batch.files}
    assert counts == {"a.csv": 3, "b.tsv": 2, "c.jsonl": 2, "d.txt": 2, "img/e.png": 1, "f.parquet": 3}
    assert batch.state == BatchState.QUARANTINED
    # a CSV record is its line as delivered (CRLF folded); the leaf is RFC 6962 SHA-256(0x00 || record)
    leaves = env.ws.objects.read_bytes("meta", batch.files[0].records_digest or "")
    assert leaves[32:64] == hashlib.sha256(b"\x003,4").digest()
    # the batch root covers every record of every file, in file order
    all_leaves: list[bytes] = []
    for f in batch.files:
        implied = implied_leaf_list(f.sha256, f.records_digest or "")
        if f.format == "file":  # its list is its SHA-256's leaf, named by the manifest: no object (ADR 0100)
            assert implied == file_leaf(f.sha256)
            assert not env.ws.objects.exists("meta", f.records_digest or "")
            raw = implied
        else:
            assert implied is None
            raw = env.ws.objects.read_bytes("meta", f.records_digest or "")
        all_leaves += [raw[i : i + 32] for i in range(0, len(raw), 32)]
    assert merkle.root_from_leaf_hashes(all_leaves).hex() == batch.merkle_root
    report = verify_batch(env.ws, batch.id)
    assert report.ok, report.problems
    assert report.records_checked == 13
    assert verify_log(env.ws).ok


def test_csv_with_quoted_newlines_is_segmented_by_records(env: Any) -> None:
    p = _write(env.path / "q.csv", b'id,text\n1,"two\nlines"\n2,plain\n')
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    assert batch.files[0].record_count == 2
    assert batch_manifest(env.ws, batch.id)["files"][0]["encoding"] == "csv-records"
    assert verify_batch(env.ws, batch.id).ok


def test_manifest_is_signed_statement_naming_every_file(env: Any) -> None:
    p = _write(env.path / "a.csv", b"x\n1\n")
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    m = batch_manifest(env.ws, batch.id)
    assert m["acquired_by"] == "ingrid"
    assert m["source"] == "vendor"
    assert m["files"][0]["sha256"] == hashlib.sha256(b"x\n1\n").hexdigest()
    assert m["record_count"] == 1
    assert m["merkle_root"] == batch.merkle_root


def test_cli_acquire_and_verify_json(env: Any, capsys: object) -> None:
    p = _write(env.path / "a.jsonl", b'{"t": "hello"}\n')
    assert env.cli("acquire", "vendor", str(p), "--json") == 0
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert out["records"] == 1 and out["state"] == "quarantined"
    assert env.cli("verify", out["id"], "--json") == 0
    rep = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert rep["ok"] is True and rep["records_checked"] == 1
    assert len(list_batches(env.ws)) == 1


def test_record_digests_stream_large_files_in_chunks(tmp_path: Path) -> None:
    # lines crossing the 16 MiB chunk boundary are neither split nor lost
    p = tmp_path / "big.txt"
    line = b"x" * 999 + b"\n"
    p.write_bytes(line * 20_000)
    rd = record_digests(lambda: open(p, "rb"), "big.txt", "text", file_sha256="0" * 64)
    assert rd.count == 20_000
    assert set(rd.leaf_list()) == {hashlib.sha256(b"\x00" + line[:-1]).digest()}


def test_batch_manifest_verifies_with_securesystemslib(env: Any) -> None:
    import copy

    import pytest
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    from dataward.core import dsse

    p = _write(env.path / "a.csv", b"x\n1\n2\n")
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    raw = json.loads(env.ws.objects.read_bytes("meta", batch.manifest_digest))
    pub = env.ingester.key.public_key()
    key = SSlibKey(dsse.key_id(pub), "ed25519", "ed25519", {"public": dsse.public_key_bytes(pub).hex()})
    assert list(SslibEnvelope.from_dict(copy.deepcopy(raw)).verify([key], 1)) == [env.ingester.keyid]
    raw["payload"] = raw["payload"][:-4] + ("AAAA" if raw["payload"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(raw).verify([key], 1)


def test_csv_types_are_not_judged_only_shape(env: Any) -> None:
    # a column that looks numeric in its first Arrow block and holds text later is valid CSV
    rows = "".join(f"{i},ok\n" for i in range(300_000)) + "n/a,still ok\n"
    p = _write(env.path / "mixed.csv", ("id,note\n" + rows).encode())
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    assert batch.record_count == 300_001
    bad = _write(env.path / "ragged.csv", b"id,note\n1,a\n2,b,extra\n")
    import pytest

    from dataward.errors import InputError

    with pytest.raises(InputError, match=r"ragged\.csv: malformed CSV"):
        acquire(env.ws, env.ingester, "vendor", [bad])
