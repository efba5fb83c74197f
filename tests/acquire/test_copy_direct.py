"""The object writer's streaming copy: around the page cache (O_DIRECT) and through it, the same bytes and
digest at every size around the alignment and chunk edges; O_DIRECT really on for the whole blocks and off
for the tail; a file system or device that refuses it gets ordinary writes; the commit still fsyncs."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
from pathlib import Path

import pytest

from dataward.acquire import acquire as acq
from dataward.acquire.inputs import InputFile
from dataward.store import objects
from dataward.store.objects import ALIGN, DIRECT_CHUNK, ObjectStore

needs_direct = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform")
SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, DIRECT_CHUNK - 1, DIRECT_CHUNK, DIRECT_CHUNK + 1, 2 * DIRECT_CHUNK + 12345]


def _copy(store: ObjectStore, path: Path, direct: bool) -> tuple[str, int, list[int]]:
    w = store.open_writer()
    chunks: list[int] = []
    with path.open("rb") as f:
        w.copy_from(f, direct=direct, on_chunk=chunks.append)
    return w.commit("quarantine"), w.size, chunks


@pytest.mark.parametrize("direct", [False, True])
def test_copy_from_every_edge_size(tmp_path: Path, direct: bool) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    for size in SIZES:
        data = os.urandom(size)
        src = tmp_path / f"in-{size}"
        src.write_bytes(data)
        digest, n, chunks = _copy(store, src, direct)
        assert digest == hashlib.sha256(data).hexdigest()
        assert n == size == sum(chunks)
        assert Path(store.path("quarantine", digest)).read_bytes() == data
        store.remove("quarantine", digest)


@needs_direct
def test_direct_whole_blocks_tail_buffered_and_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    data = os.urandom(DIRECT_CHUNK + ALIGN + 100)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    writes: list[tuple[int, bool]] = []
    synced: list[int] = []
    real_write, real_fsync = os.write, os.fsync

    def spy_write(fd: int, b: memoryview) -> int:
        writes.append((len(b), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)))
        return real_write(fd, b)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "write", spy_write)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    digest, _n, _chunks = _copy(store, src, True)
    assert digest == hashlib.sha256(data).hexdigest()
    # the first chunk whole blocks, around the page cache; the tail (not a whole block) through it
    assert writes == [(DIRECT_CHUNK, True), (ALIGN + 100, False)]
    assert len(synced) == 1  # durability is the commit's fsync, as before


@needs_direct
def test_direct_refused_by_the_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    data = os.urandom(2 * DIRECT_CHUNK)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    real = objects._direct

    def refuse(fd: int, flags: int, on: bool) -> bool:
        if on:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return real(fd, flags, on)

    monkeypatch.setattr(objects, "_direct", refuse)
    assert _copy(store, src, True)[0] == hashlib.sha256(data).hexdigest()


@needs_direct
def test_direct_write_refused_by_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a device whose logical block is larger than ALIGN refuses the write with EINVAL: the chunk is written
    # again through the page cache, once, and so is the rest
    store = ObjectStore(str(tmp_path / "objects"))
    data = os.urandom(2 * DIRECT_CHUNK + 7)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    real_write = os.write
    refused: list[int] = []

    def picky(fd: int, b: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(b))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, b)

    monkeypatch.setattr(os, "write", picky)
    digest, n, _chunks = _copy(store, src, True)
    assert (digest, n) == (hashlib.sha256(data).hexdigest(), len(data))
    assert refused == [DIRECT_CHUNK]
    assert Path(store.path("quarantine", digest)).read_bytes() == data


def test_write_error_is_a_storage_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.errors import StorageError

    store = ObjectStore(str(tmp_path / "objects"))
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(DIRECT_CHUNK + 1))

    def full(fd: int, b: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError):  # not the delivery's fault: not an InputError "read failed"
        acq._copy_unsynced(store, InputFile("in.bin", src), None, True)
    assert not any((tmp_path / "objects" / "incoming").iterdir())


def test_read_error_is_the_input_s(tmp_path: Path) -> None:
    from dataward.errors import InputError

    class Failing(io.RawIOBase):
        def readinto(self, b: object) -> int:
            raise OSError(errno.EIO, "Input/output error")

    store = ObjectStore(str(tmp_path / "objects"))
    w = store.open_writer()
    with pytest.raises(OSError):
        w.copy_from(Failing(), direct=True)  # type: ignore[arg-type]
    w.abort()
    # through the acquire path it is the delivery's fault, worded as such (a directory cannot be read)
    with pytest.raises(InputError):
        acq.copy_into_quarantine(store, InputFile("d", tmp_path))


def test_acquire_writes_opaque_files_direct_and_record_files_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    (tmp_path / "a.bin").write_bytes(os.urandom(3 * ALIGN))
    (tmp_path / "b.csv").write_bytes(b"x,y\n" + b"1,2\n" * 3000)
    seen: dict[str, bool] = {}
    real = acq._copy_unsynced

    def spy(store: ObjectStore, item: InputFile, progress: object, direct: bool = False) -> object:
        seen[item.name] = direct
        return real(store, item, None, direct)

    monkeypatch.setattr(acq, "_copy_unsynced", spy)
    items = [InputFile("a.bin", tmp_path / "a.bin"), InputFile("b.csv", tmp_path / "b.csv")]
    stored = acq._copy_all(store, items, 2, None)
    assert seen == {"a.bin": True, "b.csv": False}
    for s, item in zip(stored, items, strict=True):
        assert s.sha256 == hashlib.sha256(item.path.read_bytes()).hexdigest()
    # a format given for the whole delivery decides for every file
    seen.clear()
    acq._copy_all(store, items, 2, None, fmt="text")
    assert seen == {"a.bin": False, "b.csv": False}


def test_copy_threads_do_not_follow_the_cpus_for_files_written_around_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # on 2 CPUs a copy around the page cache would keep only 2 writes in flight: the device's wait, not the CPU
    monkeypatch.setattr(acq, "usable_cpus", lambda: 2)
    opaque = [InputFile("a.bin", tmp_path / "a.bin"), InputFile("b.csv", tmp_path / "b.csv")]
    records = [InputFile("b.csv", tmp_path / "b.csv"), InputFile("c.jsonl", tmp_path / "c.jsonl")]
    assert acq._copy_threads(opaque, None) == acq.COPY_THREADS
    assert acq._copy_threads(records, None) == 2
    assert acq._copy_threads(records, "file") == acq.COPY_THREADS  # --format file: every file is opaque
    monkeypatch.setattr(acq, "usable_cpus", lambda: 64)
    assert acq._copy_threads(records, None) == acq.COPY_THREADS
