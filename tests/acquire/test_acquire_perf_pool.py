"""The acquisition fast paths give the same manifests as the plain ones: process pool, parallel fsync."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from dataward.acquire import acquire as acq
from dataward.acquire.inputs import InputFile
from dataward.acquire.verify import batch_manifest, verify_batch
from dataward.errors import InputError
from dataward.records.leaves import implied_leaf_list
from dataward.scale import records as scale_records
from dataward.scale.processes import ProcessExecutor, usable_cpus


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def _write_delivery(d: Path) -> list[Path]:
    d.mkdir()
    (d / "rows.csv").write_bytes(
        b"a,b,text\r\n" + b"".join(f"{i},{i * 7 % 13},tok{i % 17}\r\n".encode() for i in range(3000)) + b"\n\n9,9,end"
    )
    (d / "docs.jsonl").write_bytes(b"".join(f'{{"i": {i}, "s": "\\u00e9{i}"}}\n'.encode() for i in range(2500)))
    (d / "notes.txt").write_bytes(b"".join((f"line {i}\n" if i % 5 else b"\n".decode()).encode() for i in range(4000)))
    (d / "blob.bin").write_bytes(bytes(range(256)) * 64)
    return [d / n for n in ("rows.csv", "docs.jsonl", "notes.txt", "blob.bin")]


def _force_pool(monkeypatch: pytest.MonkeyPatch, on: bool) -> list[int]:
    """Pool on (tiny partitions, so every file is split) or off; returns a list that counts pool maps."""
    calls: list[int] = []
    monkeypatch.setattr(acq, "POOL_MIN_BYTES", 0 if on else 1 << 60)
    monkeypatch.setattr(acq, "usable_cpus", lambda: 2)
    monkeypatch.setattr(scale_records, "partition_target", lambda size, pb=None, minimum=0: 4096)
    real_map = ProcessExecutor.map

    def counting_map(self: ProcessExecutor, fn: Any, items: Any) -> Any:
        calls.append(len(items))
        return real_map(self, fn, items)

    monkeypatch.setattr(ProcessExecutor, "map", counting_map)
    return calls


def _manifest_view(env: Any, batch_id: str) -> dict[str, Any]:
    m = batch_manifest(env.ws, batch_id)
    keep = ("name", "sha256", "size", "format", "encoding", "records", "records_digest", "merkle_root")
    return {
        "files": [{k: f[k] for k in keep} for f in m["files"]],
        "root": m["merkle_root"],
        "count": m["record_count"],
        "warnings": m["warnings"],
    }


def test_pool_gives_byte_identical_manifest(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _write_delivery(env.path / "delivery")
    with monkeypatch.context() as mp:
        calls = _force_pool(mp, on=False)
        plain = acq.acquire(env.ws, env.ingester, "vendor", paths)
        assert calls == []
    with monkeypatch.context() as mp:
        calls = _force_pool(mp, on=True)
        pooled = acq.acquire(env.ws, env.ingester, "vendor", paths)
        assert calls and calls[0] > 4  # the line files really were split into partitions on the pool
    a, b = _manifest_view(env, plain.id), _manifest_view(env, pooled.id)
    assert a == b
    enc = {f["name"]: f["encoding"] for f in a["files"]}
    assert enc == {"rows.csv": "lines", "docs.jsonl": "lines", "notes.txt": "lines", "blob.bin": "file"}
    assert a["count"] == 3001 + 2500 + 3200 + 1
    assert verify_batch(env.ws, pooled.id).ok


def test_pool_multiline_csv_falls_back_to_csv_records(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    d = env.path / "q"
    d.mkdir()
    body = b"id,text\n" + b"".join(f'{i},"two\nlines {i}"\n'.encode() for i in range(1500))
    (d / "q.csv").write_bytes(body)
    roots = []
    for on in (False, True):
        with monkeypatch.context() as mp:
            _force_pool(mp, on=on)
            b = acq.acquire(env.ws, env.ingester, "vendor", [d / "q.csv"])
        view = _manifest_view(env, b.id)
        assert view["files"][0]["encoding"] == "csv-records"
        assert view["count"] == 1500
        roots.append(view)
    assert roots[0] == roots[1]


@pytest.mark.parametrize("on", [False, True])
def test_pool_errors_name_file_and_line(env: Any, monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    d = env.path / f"bad-{on}"
    d.mkdir()
    lines = [b"a,b"] + [f"{i},x".encode() for i in range(2000)]
    lines[1234] = b"1,\xff\xfe"
    (d / "bad.csv").write_bytes(b"\n".join(lines) + b"\n")
    (d / "bad.jsonl").write_bytes(b"".join(b'{"i": 1}\n' for _ in range(999)) + b'{"i": \n')
    with monkeypatch.context() as mp:
        _force_pool(mp, on=on)
        with pytest.raises(InputError) as e1:
            acq.acquire(env.ws, env.ingester, "vendor", [d / "bad.csv"])
        with pytest.raises(InputError) as e2:
            acq.acquire(env.ws, env.ingester, "vendor", [d / "bad.jsonl"])
    assert e1.value.message == "bad.csv line 1235: invalid UTF-8 at byte 2"
    assert e2.value.message.startswith("bad.jsonl line 1000: malformed JSON")


def test_no_temporary_objects_left_and_objects_match_their_names(env: Any) -> None:
    paths = _write_delivery(env.path / "d")
    b = acq.acquire(env.ws, env.ingester, "vendor", paths)
    store = env.ws.objects
    incoming = Path(store.root) / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    for f in batch_manifest(env.ws, b.id)["files"]:
        p = Path(store.path("quarantine", f["sha256"]))
        assert hashlib.sha256(p.read_bytes()).hexdigest() == f["sha256"]
        assert not os.access(p, os.W_OK) or os.geteuid() == 0
        # an opaque file's record-digest list is implied by its SHA-256 (ADR 0100); any other is stored
        implied = implied_leaf_list(f["sha256"], f["records_digest"]) is not None
        assert implied == (f["format"] == "file")
        assert store.exists("meta", f["records_digest"]) != implied


def test_copy_refuses_a_file_that_changes_and_leaves_no_temporary(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    src = env.path / "growing.bin"
    src.write_bytes(b"x" * 10_000)
    store = env.ws.objects

    grown: list[int] = []

    def progress(_name: str, _n: int) -> None:
        if not grown:  # the supplier is still writing
            grown.append(1)
            with open(src, "ab") as f:
                f.write(b"more")

    with pytest.raises(InputError, match="changed while it was read"):
        acq.copy_into_quarantine(store, InputFile("growing.bin", src), progress)
    incoming = Path(store.root) / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    ok = acq.copy_into_quarantine(store, InputFile("growing.bin", src))
    assert ok.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert store.read_bytes("quarantine", ok.sha256) == src.read_bytes()


def test_wants_pool_only_for_enough_line_bytes_and_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    big = [acq.StoredFile("a.csv", "0" * 64, acq.POOL_MIN_BYTES)]
    binary = [acq.StoredFile("a.bin", "0" * 64, acq.POOL_MIN_BYTES * 4)]
    monkeypatch.setattr(acq, "usable_cpus", lambda: 2)
    assert acq._wants_pool(big, None)
    assert not acq._wants_pool(binary, None)
    assert acq._wants_pool(binary, "text")  # --format text makes it a line file
    assert not acq._wants_pool([acq.StoredFile("a.csv", "0" * 64, 10)], None)
    monkeypatch.setattr(acq, "usable_cpus", lambda: 1)
    assert not acq._wants_pool(big, None)


def test_process_executor_orders_results_and_reraises() -> None:
    with ProcessExecutor(2) as ex:
        assert ex.workers == 2
        assert ex.map(_square, list(range(20))) == [x * x for x in range(20)]
        with pytest.raises(ValueError, match="three"):
            ex.map(_fail_on_three, [1, 2, 3, 4])
        assert ex.map(_square, [5]) == [25]
    ex.close()  # idempotent
    assert usable_cpus() >= 1


def test_line_error_still_wins_over_a_concurrent_csv_parse_error(env: Any) -> None:
    d = env.path / "both"
    d.mkdir()
    # line 3 has too many columns (Arrow's error), line 5 invalid UTF-8 (the line hasher's error)
    (d / "both.csv").write_bytes(b"a,b\n1,2\n3,4,5,6\n7,8\n\xff,9\n")
    (d / "shape.csv").write_bytes(b"a,b\n1,2\n3,4,5,6\n7,8\n")
    with pytest.raises(InputError) as e1:
        acq.acquire(env.ws, env.ingester, "vendor", [d / "both.csv"])
    assert e1.value.message == "both.csv line 5: invalid UTF-8 at byte 0"
    with pytest.raises(InputError, match=r"^shape\.csv: malformed CSV: ") as e2:
        acq.acquire(env.ws, env.ingester, "vendor", [d / "shape.csv"])
    assert "\n" not in e2.value.message
