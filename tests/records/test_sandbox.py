"""The sandbox that parses untrusted data: a crashing, a memory-hungry and a networking parser are each a
clean refusal naming the file; the parent process lives on. These run in CI (no skip)."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

import pytest

from dataward.errors import InputError
from dataward.records.sandbox import SandboxError, SandboxLimits, run_sandboxed


def _segfaulting_reader(path: str) -> int:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a buggy native parser would
    return 1


def _unbounded_reader(path: str) -> int:
    hoard = []
    while True:
        hoard.append(bytearray(64 << 20))


def _socket_reader(path: str) -> int:
    with socket.create_connection(("127.0.0.1", 9), timeout=1):
        return 1


def _opens_inherited_fd(fd: int) -> bytes:
    return os.read(fd, 10)


def test_a_segfaulting_reader_is_a_refusal_naming_the_file() -> None:
    with pytest.raises(SandboxError, match=r"evil\.csv: the sandboxed parser crashed with SIGSEGV"):
        run_sandboxed(_segfaulting_reader, "x", where="evil.csv")
    assert run_sandboxed(len, "still alive", where="x") == 11  # the parent and later workers are unharmed


def test_an_unbounded_allocation_hits_the_memory_limit() -> None:
    with pytest.raises(SandboxError, match=r"big\.jsonl: the sandboxed parser ran out of memory \(limit 768 MiB\)"):
        run_sandboxed(_unbounded_reader, "x", where="big.jsonl", limits=SandboxLimits(memory_bytes=768 << 20))


def test_a_reader_that_opens_a_socket_is_refused() -> None:
    with pytest.raises(SandboxError, match=r"net\.parquet: the parser tried to open a network socket"):
        run_sandboxed(_socket_reader, "x", where="net.parquet")
    s = socket.socket()  # the parent's sockets are untouched
    s.close()


def test_the_worker_holds_no_inherited_descriptor(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_bytes(b"private key bytes")
    fd = os.open(secret, os.O_RDONLY)  # stands for an open catalog or key file of the parent
    try:
        with pytest.raises(SandboxError, match="OSError"):
            run_sandboxed(_opens_inherited_fd, fd, where="f")
    finally:
        os.close(fd)


def test_errors_and_results_cross_back_with_their_types() -> None:
    def raises() -> None:
        raise InputError("bad.csv line 3: nope", advice="fix it")

    with pytest.raises(InputError, match=r"bad\.csv line 3: nope") as info:
        run_sandboxed(raises, where="bad.csv")
    assert info.value.advice == "fix it" and not isinstance(info.value, SandboxError)
    import numpy as np

    out = run_sandboxed(lambda: {"a": np.arange(3), "b": (1, 2.5, "x")}, where="f")
    assert out["a"].tolist() == [0, 1, 2] and out["b"] == (1, 2.5, "x")


def test_a_result_that_would_run_code_is_refused() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    with pytest.raises(SandboxError, match="may not come out of the sandbox"):
        run_sandboxed(Evil, where="evil.bin")


# --- the filesystem: a read-only view of the batch's objects and nothing else --------------------------------


def _read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _read_other(data: str, other: str) -> bytes:
    """A reader given ``data`` that also tries to open ``other`` (named in no argument of the worker)."""
    _read_file(data)
    return _read_file(other)


def _write_beside(data: str) -> str:
    out = Path(data).with_suffix(".stolen")
    out.write_bytes(b"x")
    return str(out)


def test_confinement_is_reported_and_present_in_ci() -> None:
    from dataward.records.sandbox import filesystem_confinement

    how = filesystem_confinement()
    print(f"sandbox filesystem confinement: {how}")  # shown in the CI log (-rA / -s)
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        assert how.startswith("landlock ABI"), how
    elif not how.startswith("landlock"):
        pytest.skip(f"Landlock is absent here: {how}")


@pytest.fixture
def confined() -> None:
    from dataward.records.sandbox import filesystem_confinement

    how = filesystem_confinement()
    if not how.startswith("landlock"):
        pytest.skip(f"Landlock is absent: {how}")


def test_a_reader_cannot_read_the_catalog_or_a_keyring_file(confined: None, tmp_path: Path) -> None:
    from dataward.store.keyring import FileKeyring
    from dataward.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", admin="admin")
    ws.engine.dispose()
    data = tmp_path / "batch.csv"
    data.write_text("a,b\n1,2\n")
    (key,) = FileKeyring().entries("admin")
    assert run_sandboxed(_read_file, str(data), where="batch.csv") == b"a,b\n1,2\n"
    for secret in (ws.path / "catalog.db", key.path, ws.path / "dataward.toml"):
        with pytest.raises(SandboxError, match=r"batch\.csv: the sandboxed parser failed \(PermissionError"):
            run_sandboxed(_read_other, str(data), str(secret), where="batch.csv", allow_read=[data])
    assert _read_file(str(ws.path / "catalog.db"))  # the parent still reads them


def test_a_batch_given_as_a_directory_of_links_reads_its_objects_and_no_sibling(confined: None, tmp_path: Path) -> None:
    store = tmp_path / "objects" / "quarantine"
    store.mkdir(parents=True)
    obj, sibling = store / "ab12", store / "cd34"
    obj.write_bytes(b"mine")
    sibling.write_bytes(b"another batch")
    view = tmp_path / "view"
    view.mkdir()
    (view / "part.csv").symlink_to(obj)

    def list_and_read(d: str) -> tuple[list[str], bytes]:
        return sorted(os.listdir(d)), _read_file(os.path.join(d, "part.csv"))

    assert run_sandboxed(list_and_read, str(view), where="view") == (["part.csv"], b"mine")
    with pytest.raises(SandboxError, match="PermissionError"):
        run_sandboxed(lambda d: _read_file(str(sibling)), str(view), where="view")
    with pytest.raises(SandboxError, match="PermissionError"):
        run_sandboxed(lambda d: os.listdir(str(store)), str(view), where="view")


def test_a_reader_cannot_write_outside_its_scratch_directory(confined: None, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    with pytest.raises(SandboxError, match="PermissionError"):
        run_sandboxed(_write_beside, str(data), where="d.csv")
    assert not (tmp_path / "d.stolen").exists()

    def scratch_write(_p: str) -> bool:
        import tempfile

        with tempfile.NamedTemporaryFile() as fh:  # joblib, sklearn and friends may need a temp dir
            fh.write(b"ok")
        return True

    assert run_sandboxed(scratch_write, str(data), where="d.csv") is True


def test_records_and_lazy_imports_work_inside_the_confined_worker(confined: None, tmp_path: Path) -> None:
    from dataward import records

    data = tmp_path / "t.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2, 3]}), data)

    def read(p: str) -> int:
        import email.mime.text  # noqa: F401 - a module not imported yet: the standard library is readable

        return sum(b.num_rows for b in records.read(p))

    assert run_sandboxed(read, str(data), where="t.parquet") == 3


def _warn_on_stderr(text: str) -> int:
    import sys

    print(text, file=sys.stderr)  # what a library's warning does (loky's, when it cannot run lscpu)
    sys.stderr.flush()
    return len(text)


def test_a_worker_writing_to_a_stream_moved_off_its_descriptor_writes_to_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent whose sys.stderr is a file on another descriptor (a test runner capturing output): the worker
    closes that descriptor, and a warning it prints goes to fd 2 instead of crashing it."""
    import sys

    moved = (tmp_path / "moved.txt").open("w")
    monkeypatch.setattr(sys, "stderr", moved)
    assert moved.fileno() > 2
    assert run_sandboxed(_warn_on_stderr, "a warning", where="w.csv") == len("a warning")
    moved.close()
    assert (tmp_path / "moved.txt").read_text() == ""  # the worker could not write there: it was closed
