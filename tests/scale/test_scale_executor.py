"""Partitioned record leaves on the local and the Dask executors equal the single-process results exactly."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.acquire.acquire import acquire
from dataward.cli import main
from dataward.core import merkle
from dataward.errors import Error, InputError
from dataward.records.leaves import record_digests
from dataward.scale._local import LocalExecutor
from dataward.scale.interface import Executor
from dataward.scale.merkle_parts import merkle_root
from dataward.scale.records import FileRef, newline_cuts, partitioned_record_digests
from dataward.store.objects import ObjectStore

pytest.importorskip("distributed")

import itertools

from dataward.scale.dask import DaskExecutor, SchedulerError, chunks

SAMPLES = {
    "a.jsonl": b'{"t": "one"}\r\n\n{"t": "two"}\n\n\n{"t": "three \\u00e9"}\n{"t": 4}',
    "b.csv": b"text,label\r\nhello,0\n\nworld,1\nagain,0\n",
    "c.tsv": b"\n\ntext\tlabel\nx\t1\ny\t2\n",
    "d.txt": b"line one\nline two\r\n\r\n" + b"word " * 50 + b"\nlast without newline\r",
    "e.csv": b'text,label\nhello,0\n"multi\nline",1\nplain,2\n',
    "f.txt": b"",
    "g.bin": bytes(range(256)),
}
FORMATS = {"jsonl": "jsonl", "csv": "csv", "tsv": "tsv", "txt": "text", "bin": "file"}


def _store(tmp_path: Path, blobs: dict[str, bytes]) -> tuple[ObjectStore, list[FileRef]]:
    store = ObjectStore(str(tmp_path / "objects"))
    refs = []
    for name, data in blobs.items():
        digest = store.put_bytes("quarantine", data)
        refs.append(FileRef(name, digest, len(data), FORMATS[name.rsplit(".", 1)[1]]))
    return store, refs


def _single(store: ObjectStore, refs: list[FileRef]) -> list[Any]:
    return [
        record_digests(lambda r=r: store.open("quarantine", r.sha256), r.name, r.fmt, file_sha256=r.sha256)
        for r in refs
    ]


@pytest.mark.slow
@pytest.mark.parametrize("partition_bytes", [1, 7, 64, 1 << 20])
def test_partitions_match_single_process(tmp_path: Path, dask_executor: Executor, partition_bytes: int) -> None:
    store, refs = _store(tmp_path, SAMPLES)
    expected = _single(store, refs)
    for ex in (LocalExecutor(), LocalExecutor(threads=3), dask_executor):
        got = partitioned_record_digests(ex, store, refs, partition_bytes=partition_bytes)
        assert got == expected, ex.name
    assert [rd.encoding for rd in expected] == ["lines", "lines", "lines", "lines", "csv-records", "lines", "file"]
    assert [rd.count for rd in expected] == [4, 3, 2, 4, 3, 0, 1]


@settings(max_examples=30, deadline=None)
@given(
    lines=st.lists(st.sampled_from(["", "a", "é", "x,y", "\r", " ", "long line " * 5, "{}"]), max_size=30),
    trailing=st.booleans(),
    target=st.integers(1, 40),
)
def test_partitioned_text_matches_any_cut(lines: list[str], trailing: bool, target: int) -> None:
    data = "\n".join(lines).encode() + (b"\n" if trailing else b"")
    cuts = newline_cuts(io.BytesIO(data), len(data), target)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(data)
    assert all(a[1] == b[0] and data[a[1] - 1 : a[1]] == b"\n" for a, b in itertools.pairwise(cuts))
    store = ObjectStore("memory://dw-test-" + str(abs(hash((tuple(lines), trailing, target)))))
    digest = store.put_bytes("quarantine", data)
    ref = FileRef("t.txt", digest, len(data), "text")
    got = partitioned_record_digests(LocalExecutor(), store, [ref], partition_bytes=target)
    assert got == _single(store, [ref])


def test_bad_input_in_a_partition_names_the_same_line(tmp_path: Path, dask_executor: Executor) -> None:
    store, refs = _store(tmp_path, {"bad.jsonl": b'{"a": 1}\n' * 50 + b"{not json}\n" + b'{"a": 2}\n' * 5})
    with pytest.raises(InputError) as single:
        _single(store, refs)
    with pytest.raises(InputError) as parted:
        partitioned_record_digests(dask_executor, store, refs, partition_bytes=64)
    assert parted.value.message == single.value.message and "line 51" in parted.value.message
    store2, refs2 = _store(tmp_path / "2", {"bad.txt": b"ok\n" * 40 + b"\xff\xfe\n"})
    with pytest.raises(InputError, match="line 41: invalid UTF-8"):
        partitioned_record_digests(LocalExecutor(), store2, refs2, partition_bytes=16)


def _workspace(make_workspace: Any, tmp_path: Path) -> Any:
    from dataward.model.roles import Grant, Role
    from dataward.principals import enroll
    from dataward.sources import add_source

    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "feed", kind="internal", origin="tests")
    return ws


@pytest.mark.slow
def test_acquire_on_dask_gives_the_same_manifest_roots(
    make_workspace: Any, tmp_path: Path, dask_executor: Executor, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _workspace(make_workspace, tmp_path)
    d = tmp_path / "delivery"
    d.mkdir()
    for name, data in SAMPLES.items():
        (d / name).write_bytes(data)
    ingrid = ws.actor("ingrid")
    plain = acquire(ws, ingrid, "feed", [d])
    on_dask = acquire(ws, ingrid, "feed", [d], executor=dask_executor)
    assert on_dask.merkle_root == plain.merkle_root and on_dask.record_count == plain.record_count == 17
    assert [f.merkle_root for f in on_dask.files] == [f.merkle_root for f in plain.files]

    capsys.readouterr()
    assert isinstance(dask_executor, DaskExecutor)
    argv = ["-w", str(ws.path), "--as", "ingrid", "acquire", "feed", str(d), "--scheduler", dask_executor.scheduler]
    argv.append("--json")
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["merkle_root"] == plain.merkle_root


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_unreachable_scheduler_is_a_clean_error() -> None:
    with pytest.raises(SchedulerError, match=r"tcp://127\.0\.0\.1:1"):
        DaskExecutor(scheduler="tcp://127.0.0.1:1", timeout=1)
    assert issubclass(SchedulerError, Error)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 70), chunk=st.sampled_from([1, 2, 4, 8, 16]))
def test_chunked_merkle_root_equals_single_pass(n: int, chunk: int) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    expected = merkle.root_from_leaf_hashes(leaves)
    assert merkle_root(LocalExecutor(threads=2), b"".join(leaves), chunk_leaves=chunk) == expected
    assert merkle_root(None, b"".join(leaves)) == expected


def test_chunked_merkle_root_on_dask(dask_executor: Executor) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1000)]
    got = merkle_root(dask_executor, b"".join(leaves), chunk_leaves=64)
    assert got == merkle.root_from_leaf_hashes(leaves)
    with pytest.raises(ValueError):
        merkle_root(dask_executor, b"".join(leaves), chunk_leaves=48)


@pytest.mark.parametrize("address", ["foo", "http://x:1", "tcp://host"])
def test_malformed_scheduler_address_is_refused(
    address: str, make_workspace: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SchedulerError, match="not a Dask scheduler address"):
        DaskExecutor(scheduler=address)
    ws = _workspace(make_workspace, tmp_path)
    (tmp_path / "x.txt").write_text("one\n")
    argv = ["-w", str(ws.path), "--as", "ingrid", "acquire", "feed", str(tmp_path / "x.txt"), "--scheduler", address]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "not a Dask scheduler address" in err and "Traceback" not in err


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 50), k=st.integers(1, 9))
def test_chunks_cover_the_items_in_order(n: int, k: int) -> None:
    runs = chunks(n, k)
    assert [i for r in runs for i in r] == list(range(n))
    assert len(runs) == min(n, k) and all(len(r) for r in runs)
    assert max(map(len, runs), default=0) - min(map(len, runs), default=0) <= 1


def _square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_dask_map_keeps_order_and_raises(dask_executor: Executor) -> None:
    assert dask_executor.workers == 2
    for n in (1, 2, 3, 17):
        assert dask_executor.map(_square_or_fail, list(range(n))) == [i * i for i in range(n)]
    with pytest.raises(ValueError, match="negative -3"):
        dask_executor.map(_square_or_fail, [1, 2, -3, 4])


def test_local_cluster_counts_its_workers_when_the_listing_fails(
    dask_executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acquire() copies by byte ranges only with >= 2 workers: a local cluster whose scheduler listing fails
    once (or omits a busy worker) still counts the workers it started, and its map still runs every task."""
    ex: Any = dask_executor
    assert ex.workers == 2

    def fails(*a: Any, **kw: Any) -> Any:
        raise TimeoutError("scheduler busy")

    monkeypatch.setattr(ex._client, "scheduler_info", fails)
    assert ex.workers == 2
    assert ex.map(abs, [-3, 1, -2]) == [3, 1, 2]
