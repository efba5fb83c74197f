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
