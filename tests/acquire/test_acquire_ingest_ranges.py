"""Acquisition by byte ranges on an executor of several workers gives the manifest of the streamed path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataward.acquire import acquire as acq
from dataward.acquire.verify import batch_manifest, verify_batch
from dataward.errors import InputError
from dataward.scale import ingest
from dataward.scale._local import LocalExecutor


def _delivery(d: Path) -> list[Path]:
    d.mkdir()
    files = {
        "plain.csv": b"a,b,text\n" + b"".join(f"{i},{i * 7 % 13},tok{i % 17}\n".encode() for i in range(3000)),
        "crlf.csv": b"a,b\r\n" + b"".join(f"{i},x{i}\r\n".encode() for i in range(2000)) + b"\r\n\r\n9,end",
        "rows.tsv": b"a\tb\n" + b"".join(f"{i}\tna\xc3\xafve {i}\n".encode() for i in range(1500)),
        "quoted.csv": b"id,text\n" + b"".join(f'{i},"two\nlines {i}"\n'.encode() for i in range(800)),
        "docs.jsonl": b"".join(f'{{"i": {i}}}\n'.encode() for i in range(1200)),
        "blob.bin": bytes(range(256)) * 64,
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return [d / n for n in files]


def _view(env: Any, batch_id: str) -> dict[str, Any]:
    m = batch_manifest(env.ws, batch_id)
    keep = ("name", "sha256", "size", "format", "encoding", "records", "records_digest", "merkle_root")
    return {"files": [{k: f[k] for k in keep} for f in m["files"]], "root": m["merkle_root"], "n": m["record_count"]}


def _ranges_on(mp: pytest.MonkeyPatch) -> list[str]:
    """Every line file through ``ingest_file`` in ranges of ~2 KiB; returns the names it ingested."""
    seen: list[str] = []
    real = ingest.ingest_file

    def spy(executor: Any, store: Any, path: Any, name: str, fmt: str, **kw: Any) -> Any:
        seen.append(name)
        return real(executor, store, path, name, fmt, partition_bytes=2048)

    mp.setattr(acq, "INGEST_MIN_BYTES", 0)
    mp.setattr(ingest, "ingest_file", spy)
    return seen


@pytest.mark.parametrize("which", [None, "plain.csv", "crlf.csv", "quoted.csv"])
def test_ranges_give_the_streamed_manifest(env: Any, monkeypatch: pytest.MonkeyPatch, which: str | None) -> None:
    paths = _delivery(env.path / f"d-{which}")
    if which is not None:
        paths = [p for p in paths if p.name == which]  # a one-file batch: its root is the file's
    streamed = acq.acquire(env.ws, env.ingester, "vendor", paths)
    with monkeypatch.context() as mp:
        seen = _ranges_on(mp)
        ranged = acq.acquire(env.ws, env.ingester, "vendor", paths, executor=LocalExecutor(threads=2))
    lines = [p.name for p in paths if p.suffix != ".bin"]
    assert sorted(seen) == sorted(lines)
    assert _view(env, streamed.id) == _view(env, ranged.id)
    assert verify_batch(env.ws, ranged.id).ok
    incoming = Path(env.ws.objects.root) / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []


def test_one_worker_streams_as_before(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _delivery(env.path / "d")
    with monkeypatch.context() as mp:
        seen = _ranges_on(mp)
        acq.acquire(env.ws, env.ingester, "vendor", paths, executor=LocalExecutor(threads=1))
    assert seen == []


def test_bad_input_still_names_the_line_and_leaves_nothing(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    d = env.path / "bad"
    d.mkdir()
    lines = [b"a,b"] + [f"{i},x".encode() for i in range(2000)]
    lines[1234] = b"1,\xff\xfe"
    (d / "bad.csv").write_bytes(b"\n".join(lines) + b"\n")
    with monkeypatch.context() as mp:
        seen = _ranges_on(mp)
        with pytest.raises(InputError) as e:
            acq.acquire(env.ws, env.ingester, "vendor", [d / "bad.csv"], executor=LocalExecutor(threads=2))
    assert seen == ["bad.csv"]
    assert e.value.message == "bad.csv line 1235: invalid UTF-8 at byte 2"
    root = Path(env.ws.objects.root)
    assert not [p for p in (root / "quarantine").rglob("*") if p.is_file()]  # the copied object was removed
    assert not (root / "incoming").exists() or list((root / "incoming").iterdir()) == []
