"""Acquisition by byte ranges (dataward.scale.ingest): the stored object, its SHA-256, the leaf count, the
leaf list and the RFC 6962 root must be those of the serial path, whatever the cuts."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dataward.core import leafhash, merkle
from dataward.errors import InputError
from dataward.records.leaves import record_digests
from dataward.scale._local import LocalExecutor
from dataward.scale.ingest import ingest_file, range_nodes_of, root_from_nodes
from dataward.scale.interface import Executor
from dataward.store.objects import ObjectStore


def _csv(rows: int, seed: int, *, crlf: bool = False, blank_every: int = 0, delimiter: str = ",") -> bytes:
    rng = random.Random(seed)
    nl = "\r\n" if crlf else "\n"
    out = [f"text{delimiter}label{delimiter}score{nl}"]
    for i in range(rows):
        words = " ".join(rng.choice(["a", "bb", "ccc", "naïve", "dddd"]) for _ in range(rng.randint(1, 6)))
        out.append(f"{words}{delimiter}{i % 3}{delimiter}{rng.random():.3f}{nl}")
        if blank_every and i % blank_every == 0:
            out.append(nl)
    return "".join(out).encode()


def _serial(path: Path, fmt: str) -> Any:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return record_digests(lambda: open(path, "rb"), path.name, fmt, file_sha256=sha)


def _check(ex: Executor, tmp_path: Path, data: bytes, fmt: str, partition_bytes: int, *, plain: bool = True) -> None:
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    store = ObjectStore(str(tmp_path / f"objects-{partition_bytes}"))
    got = ingest_file(ex, store, path, path.name, fmt, partition_bytes=partition_bytes)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.size == len(data)
    assert store.read_bytes("quarantine", got.sha256) == data  # every byte range landed at its offset
    if not plain:
        assert got.digests is None  # the partitioned / single-process code decides (and names bad input)
        return
    rd = _serial(path, fmt)
    assert got.digests is not None
    d = got.digests
    assert (d.count, d.root, d.encoding) == (rd.count, rd.root(), rd.encoding)
    assert store.read_bytes("meta", d.records_digest) == rd.leaves
    assert not os.listdir(tmp_path / f"objects-{partition_bytes}" / "incoming")  # scratch files removed


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 7, 64, 257, 1000])
@pytest.mark.parametrize("partition_bytes", [1, 37, 256, 4096])
def test_csv_matches_serial_path(tmp_path: Path, rows: int, partition_bytes: int) -> None:
    _check(LocalExecutor(threads=2), tmp_path, _csv(rows, rows), "csv", partition_bytes)


@pytest.mark.parametrize("partition_bytes", [1, 23, 512])
def test_crlf_blank_lines_tsv_and_no_final_newline(tmp_path: Path, partition_bytes: int) -> None:
    ex = LocalExecutor(threads=2)
    _check(ex, tmp_path, _csv(300, 1, crlf=True), "csv", partition_bytes)
    _check(ex, tmp_path, _csv(300, 2, blank_every=7), "csv", partition_bytes)
    _check(ex, tmp_path, _csv(300, 3, delimiter="\t"), "tsv", partition_bytes)
    _check(ex, tmp_path, _csv(300, 4).rstrip(b"\n"), "csv", partition_bytes)
    # blank lines before the header (the header must lie in the first range, else the partitioned code decides)
    _check(ex, tmp_path, b"\n\n" + _csv(50, 5), "csv", max(partition_bytes, 64))
    _check(ex, tmp_path, b"\n\n" + _csv(50, 5), "csv", 1, plain=False)


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_every_cut_position(tmp_path: Path) -> None:
    """Cuts at every byte of a small file: each record boundary falls at a range edge at some size."""
    data = _csv(40, 9, blank_every=5)
    ex = LocalExecutor(threads=2)
    for pb in range(1, 90, 3):
        _check(ex, tmp_path, data, "csv", pb)


@pytest.mark.parametrize("partition_bytes", [16, 200])
def test_not_plain_is_copied_but_left_to_the_partitioned_code(tmp_path: Path, partition_bytes: int) -> None:
    ex = LocalExecutor(threads=2)
    quoted = b'text,label\n"a\nb",1\n"c ""d""",0\nplain,1\n' * 20  # quoted newlines and doubled quotes
    _check(ex, tmp_path, quoted, "csv", partition_bytes, plain=False)
    lone_cr = b"a,b\n1,2\r3,4\n" * 30
    _check(ex, tmp_path, lone_cr, "csv", partition_bytes, plain=False)
    bad_shape = b"a,b\n1,2\n1,2,3\n" * 30
    _check(ex, tmp_path, bad_shape, "csv", partition_bytes, plain=False)
    bad_utf8 = b"a,b\n1,\xff\n" * 30
    _check(ex, tmp_path, bad_utf8, "csv", partition_bytes, plain=False)
    jsonl = b'{"a": 1}\n{"a": 2}\n' * 40  # not CSV: copied only
    _check(ex, tmp_path, jsonl, "jsonl", partition_bytes, plain=False)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_concurrent_tasks_match_serial_path(tmp_path: Path, threads: int) -> None:
    # tasks of both phases running at once (threads share the leaf files and write the leaf list side by side):
    # the object, its SHA-256, the count, the root and the leaf list must still be the serial path's
    ex = LocalExecutor(threads)
    for rows, partition_bytes in ((0, 64), (5, 16), (1000, 300), (3000, 997)):
        _check(ex, tmp_path, _csv(rows, rows + threads), "csv", partition_bytes)
        _check(ex, tmp_path, _csv(rows, 7, crlf=True, blank_every=11), "csv", partition_bytes)


def test_dask_workers_match_serial_path(tmp_path: Path, dask_executor: Any) -> None:
    _check(dask_executor, tmp_path, _csv(5000, 11), "csv", 20_000)
    _check(dask_executor, tmp_path, b'a,b\n"x\ny",1\n' * 500, "csv", 2000, plain=False)


def test_refuses_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    with pytest.raises(InputError, match="cannot read"):
        ingest_file(LocalExecutor(threads=2), store, tmp_path / "nope.csv", "nope.csv", "csv")
    with pytest.raises(InputError, match="cannot read"):
        ingest_file(LocalExecutor(threads=2), store, tmp_path, "dir.csv", "csv")  # a directory


def test_refuses_a_file_that_changes_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataward.scale.ingest as ingest

    path = tmp_path / "in.csv"
    path.write_bytes(_csv(200, 3))
    store = ObjectStore(str(tmp_path / "objects"))
    real = ingest.ingest_task

    def grow_then_copy(t: ingest.IngestTask) -> ingest.IngestPart:
        if t.start == 0:
            with open(path, "ab") as f:
                f.write(b"late,1,0.5\n")
        return real(t)

    monkeypatch.setattr(ingest, "ingest_task", grow_then_copy)
    with pytest.raises(InputError, match="changed while it was read"):
        ingest_file(LocalExecutor(), store, path, path.name, "csv", partition_bytes=500)
    assert not list((tmp_path / "objects").rglob("quarantine/*/*"))  # nothing published
    assert not os.listdir(tmp_path / "objects" / "incoming")


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 8, 13, 100, 1023, 1024, 1025])
def test_root_from_range_nodes_of_any_cuts(size: int) -> None:
    rng = random.Random(size)
    leaves = bytes(rng.getrandbits(8) for _ in range(32 * size))
    want = leafhash.merkle_root(leaves)
    assert want == merkle.root_from_leaf_hashes([leaves[i : i + 32] for i in range(0, len(leaves), 32)])
    for _ in range(10):
        cuts = sorted({0, size, *(rng.randint(0, size) for _ in range(rng.randint(0, 6)))})
        nodes = [n for a, b in itertools.pairwise(cuts) for n in range_nodes_of(leaves[32 * a : 32 * b], a)]
        assert root_from_nodes(size, nodes) == want
    if size:
        with pytest.raises(ValueError, match="cover"):
            root_from_nodes(size + 1, range_nodes_of(leaves, 0))


def test_workers_that_cannot_reach_the_file_leave_it_to_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataward.scale.ingest as ingest

    path = tmp_path / "in.csv"
    path.write_bytes(_csv(100, 5))
    store = ObjectStore(str(tmp_path / "objects"))
    real = ingest.ingest_task
    # a worker on another machine: the path names nothing there
    monkeypatch.setattr(ingest, "ingest_task", lambda t: real(replace(t, source=str(tmp_path / "elsewhere.csv"))))
    assert ingest_file(LocalExecutor(threads=2), store, path, path.name, "csv", partition_bytes=300) is None
    assert not os.listdir(tmp_path / "objects" / "incoming")


@pytest.mark.parametrize("how", ["mapped", "no-fallocate", "no-mmap", "no-populate"])
def test_every_write_path_stores_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The ranges are written through shared mappings; a file system without fallocate or mmap (and a kernel
    without MADV_POPULATE_WRITE) gets pwrite or faults per page instead: the stored bytes, the leaf list and
    the root are the same on every path, at cuts that are not page-aligned."""
    import dataward.scale.ingest as ing

    calls: list[str] = []
    real_mmap = ing.mmap.mmap

    def no_fallocate(fd: int, offset: int, length: int) -> None:
        calls.append("fallocate")
        raise OSError(95, "Operation not supported")  # EOPNOTSUPP

    def no_mmap(*a: Any, **kw: Any) -> Any:
        calls.append("mmap")
        raise OSError(19, "No such device")  # ENODEV: the file system cannot map files

    def counted_mmap(*a: Any, **kw: Any) -> Any:
        calls.append("mmap")
        return real_mmap(*a, **kw)

    if how == "no-fallocate":
        monkeypatch.setattr(ing.os, "posix_fallocate", no_fallocate)
    elif how == "no-mmap":
        monkeypatch.setattr(ing.mmap, "mmap", no_mmap)
    else:
        monkeypatch.setattr(ing.mmap, "mmap", counted_mmap)
        if how == "no-populate":
            monkeypatch.setattr(ing, "MADV_POPULATE_WRITE", 0)
    data = _csv(3000, 21)
    for pb in (4093, 10_000):
        _check(LocalExecutor(threads=2), tmp_path, data, "csv", pb)
    assert calls and set(calls) == {"fallocate" if how == "no-fallocate" else "mmap"}


def test_a_full_disk_is_a_storage_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are allocated before a range is mapped, so a full disk is refused as a storage error (a write to
    a mapping on a full disk would be a SIGBUS), and the temporary objects are removed."""
    import dataward.scale.ingest as ing
    from dataward.errors import Error

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")  # ENOSPC

    monkeypatch.setattr(ing.os, "posix_fallocate", full)
    path = tmp_path / "in.csv"
    path.write_bytes(_csv(500, 3))
    store = ObjectStore(str(tmp_path / "objects"))
    with pytest.raises(Error, match="object store"):
        ingest_file(LocalExecutor(threads=2), store, path, path.name, "csv", partition_bytes=2000)
    assert not os.listdir(tmp_path / "objects" / "incoming")
