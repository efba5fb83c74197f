"""Regression tests for the inputs that crashed the old readers, and the documented limits.

Each file under corpus/ is one input that once crashed a reader (segfault, traceback or runaway
allocation); every reader must now give records or a one-line error naming the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataward import records
from dataward.errors import Error, InputError, StorageError, storage_error
from dataward.records.leaves import detect_format, record_digests
from dataward.records.limits import LimitError

CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()))
def test_corpus_reads_or_refuses_in_one_line(name: str) -> None:
    path = CORPUS / name
    for errors in ("strict", "replace"):
        try:
            list(records.read(str(path), errors=errors))
        except Error as exc:
            assert name in exc.message and "\n" not in exc.message and exc.advice


def test_null_only_jsonl_is_one_record() -> None:
    (batch,) = records.read(str(CORPUS / "null-only.jsonl"))
    assert batch.num_rows == 1 and batch.schema.names == ["value"]


def test_cr_only_csv_is_refused_naming_the_line_endings() -> None:
    with pytest.raises(InputError, match="CR only"):
        list(records.read(str(CORPUS / "cr-only.csv")))
    with pytest.raises(InputError, match="CR only"):
        path = CORPUS / "cr-only.csv"
        record_digests(lambda: open(path, "rb"), path.name, "csv", file_sha256="00" * 32)


def test_duplicated_columns_are_refused_in_csv_and_parquet(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="column 'a' appears"):
        list(records.read(str(CORPUS / "duplicated-columns.csv")))
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    p = tmp_path / "dup.parquet"
    pq.write_table(t, p)
    with pytest.raises(InputError, match="column 'a' appears"):
        list(records.read(str(p)))


def test_npy_headers_are_validated_before_any_allocation() -> None:
    assert records.load_npy(str(CORPUS / "zero-d.npy")).shape == (1,)
    with pytest.raises(InputError, match=r"not a valid \.npy file"):
        records.load_npy(str(CORPUS / "bit-flipped-header.npy"))
    with pytest.raises(LimitError, match="max_record_bytes") as info:
        records.load_npy(str(CORPUS / "dtype-U99999999.npy"))
    assert "DATAWARD_MAX_RECORD_BYTES" in info.value.advice


def test_deep_json_is_refused_by_the_depth_limit(tmp_path: Path) -> None:
    p = tmp_path / "deep.jsonl"
    p.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(LimitError, match=r"deep.jsonl line 1: JSON nesting exceeds the limit max_depth"):
        list(records.read(str(p)))
    with pytest.raises(LimitError, match="max_depth"):
        record_digests(lambda: open(p, "rb"), p.name, "jsonl", file_sha256="00" * 32)
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"a": [[["[not nesting]"]]]}) + "\n")  # brackets inside strings do not count
    assert next(records.read(str(ok))).num_rows == 1


@pytest.mark.slow
def test_a_50_mib_quoted_csv_field_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    with open(p, "wb") as f:
        f.write(b'a,b\n1,"' + b"x" * (50 << 20) + b'"\n2,"y"\n')
    rows = sum(b.num_rows for b in records.read(str(p)))
    digests = record_digests(lambda: open(p, "rb"), p.name, "csv", file_sha256="00" * 32)
    assert rows == 2 == digests.count


def test_a_line_over_the_limit_is_refused_naming_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAWARD_MAX_RECORD_BYTES", str(1 << 20))
    p = tmp_path / "long.txt"
    p.write_bytes(b"short\n" + b"y" * (3 << 20) + b"\n")
    with pytest.raises(LimitError, match=r"long.txt line 2: .* exceeds the limit max_record_bytes=1,048,576"):
        list(records.read(str(p)))
    with pytest.raises(LimitError, match="max_record_bytes"):
        record_digests(lambda: open(p, "rb"), p.name, "text", file_sha256="00" * 32)


def test_leaf_encodings_are_unchanged() -> None:
    """Digests pinned from before the records layer (ADR 0002): a line record is SHA-256(0x00 || bytes)."""
    import hashlib

    from dataward.records.leaves import leaf_hashes

    assert leaf_hashes([b"a,b"]) == hashlib.sha256(b"\x00a,b").digest()
    assert detect_format("x.CSV") == "csv" and detect_format("x.json") == "file" and detect_format("a.png") == "file"


def test_storage_errors_name_the_path_and_the_fix() -> None:
    import errno

    full = storage_error("/ws/objects/incoming", OSError(errno.ENOSPC, "No space left on device"), "write to")
    assert isinstance(full, StorageError) and full.exit_code == 7
    assert "disk is full" in full.message and "/ws/objects/incoming" in full.message and "Free space" in full.advice
    ro = storage_error("/ws/catalog.db", OSError(errno.EROFS, "Read-only file system"), "write")
    assert "read-only" in ro.message and "input" not in ro.advice.lower()


@pytest.mark.slow
def test_acquire_over_a_file_size_limit_is_a_storage_error_and_leaves_nothing(tmp_path: Path) -> None:
    """A storage failure injected with RLIMIT_FSIZE (works without root): exit 7, no temp file left."""
    env = {**os.environ, "DATAWARD_WITNESS": str(tmp_path / "w.json"), "DATAWARD_KEYRING": str(tmp_path / "kr")}
    ws = tmp_path / "ws"

    def dw(*args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
        def pre() -> None:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.run(
            [sys.executable, "-c", "from dataward.cli import run; run()", "-w", str(ws), *args],
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=pre,
            check=False,
        )

    assert dw("init", str(ws), "--admin", "admin").returncode == 0
    assert dw("--as", "admin", "source", "add", "v", "--kind", "internal", "--origin", "x").returncode == 0
    made = dw("key", "generate", "ing", "--no-passphrase")
    assert made.returncode == 0, made.stderr
    key = tmp_path / "ing.pem"
    key.write_text(made.stdout)
    got = dw("--as", "admin", "principal", "add", "ing", "--role", "ingester", "--key", str(key))
    assert got.returncode == 0, got.stderr
    data = tmp_path / "d.txt"
    data.write_bytes(b"line\n" * 400_000)  # 2 MB, over the 1 MiB limit below
    got = dw("--as", "ing", "acquire", "v", str(data), limit=1 << 20)
    assert got.returncode == 7, got.stderr
    assert "cannot write to the object store" in got.stderr and "file size limit" in got.stderr
    assert "Traceback" not in got.stderr and "Fix the input" not in got.stderr
    incoming = ws / "objects" / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_check_on_a_null_only_jsonl_no_longer_crashes(capsys: pytest.CaptureFixture[str]) -> None:
    """It segfaulted (exit 139) in Arrow's JSON reader; now it is screened: a gate result, 0 or 1."""
    from dataward.cli import main

    assert main(["check", str(CORPUS / "null-only.jsonl"), "--quiet"]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err
