"""The checked line hasher (plain CSV/TSV in one native pass): native against its pure-Python twin, its UTF-8
check against Python's decoder, and the plain-lines reading of a CSV against Arrow's CSV parser."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyarrow import csv as pacsv

from dataward.core import leafhash
from dataward.errors import InputError
from dataward.records import leaves as records

try:
    from dataward.core import _leafhash as native  # type: ignore[attr-defined]
except ImportError:
    native = None

COMMA, QUOTE = ord(","), ord('"')


@pytest.fixture(params=["portable", "sha-ni"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if native is None:
        pytest.skip("native extension not built")
    try:
        previous = native.set_backend(request.param)
    except ValueError:
        pytest.skip(f"{request.param} not available on this CPU")
    yield request.param
    native.set_backend(previous)


@contextlib.contextmanager
def _scan(name: str) -> Iterator[None]:
    """One of the native line scans: the one-pass SSE2 scan (x86) or memchr with a byte loop."""
    if native is None:
        pytest.skip("native extension not built")
    try:
        previous = native.set_line_scan(name)
    except ValueError:
        pytest.skip(f"the {name} line scan is not available on this CPU")
    try:
        yield
    finally:
        native.set_line_scan(previous)


@pytest.fixture(params=["sse2", "bytes"])
def line_scan(request: pytest.FixtureRequest) -> Iterator[str]:
    with _scan(request.param):
        yield request.param


def _native_checked(block: bytes, skip: bool, ndelims: int, quote: int | None, threads: int) -> Any:
    assert native is not None
    leaves, n, skipped, u, s, g, p, nl = native.line_leaves_checked(
        block, skip, threads, COMMA, ndelims, -1 if quote is None else quote
    )
    return leaves, n, skipped, leafhash.LineCheck(u, s, g, p, nl)


pieces = st.sampled_from(
    [
        b"a",
        b"1",
        b",",
        b",,",
        b'"',
        b"\r",
        b"\r\n",
        b"\n",
        b"\n\n",
        b"\t",
        b" ",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
        b"\xf0\x9f\x98\x80",
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xe0\x80\xaf",
        b"\xf4\x90\x80\x80",
        b"x" * 70,
    ]
)
blocks = st.lists(pieces, max_size=80).map(b"".join)


def _compare(block: bytes, skip: bool, ndelims: int, quote: int | None, threads: int) -> None:
    want = leafhash.py_line_leaves_checked(block, skip_header=skip, delimiter=COMMA, ndelims=ndelims, quote=quote)
    got = _native_checked(block, skip, ndelims, quote, threads)
    assert got[3].not_plain == want[3].not_plain
    if want[3].not_plain < 0:  # past a not-plain line the results are partial by contract
        assert got == want
        assert got[3].newlines == block.count(b"\n")


@settings(max_examples=150, deadline=None)
@given(block=blocks, skip=st.booleans(), ndelims=st.integers(0, 3), quoted=st.booleans(), threads=st.integers(1, 3))
@pytest.mark.parametrize("scan", ["sse2", "bytes"])
def test_native_equals_python(scan: str, block: bytes, skip: bool, ndelims: int, quoted: bool, threads: int) -> None:
    with _scan(scan):
        _compare(block, skip, ndelims, QUOTE if quoted else None, threads)


@pytest.mark.slow
def test_native_equals_python_across_threads(backend: str, line_scan: str) -> None:
    # over 1 MiB so that the block is cut between threads; errors planted in the second half
    rng = random.Random(3)
    rows = [b"%d,%d,x%d" % (i, rng.randrange(99), i) for i in range(110_000)]
    rows[90_000] = b"1,2"  # wrong shape
    rows[95_000] = b"1,\xff,3"  # invalid UTF-8
    block = b"a,b,c\n" + b"\r\n".join(rows)
    assert len(block) > 1 << 20
    want = leafhash.py_line_leaves_checked(block, skip_header=True, delimiter=COMMA, ndelims=2, quote=QUOTE)
    assert want[1] == len(rows) and want[3].newlines == block.count(b"\n")
    assert block[want[3].bad_shape :].startswith(b"1,2\r\n") and want[3].shape_got == 1
    assert block[want[3].bad_utf8 :].startswith(b"1,\xff,3")
    for threads in (1, 2, 3):
        assert _native_checked(block, True, 2, QUOTE, threads) == want
    quoted = block + b'\n9,"q",9'
    for threads in (1, 3):
        assert _native_checked(quoted, True, 2, QUOTE, threads)[3].not_plain == len(block) + 1


@pytest.mark.slow
@settings(max_examples=250, deadline=None)
@given(line=st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"").replace(b'"', b"")))
def test_utf8_check_agrees_with_python(line: bytes) -> None:
    try:
        line.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    for fn in (leafhash.line_leaves_checked, leafhash.py_line_leaves_checked):
        chk = fn(b"h\n" + line, skip_header=True, delimiter=COMMA, ndelims=0, quote=QUOTE)[3]
        assert (chk.bad_utf8 < 0) == valid or not line, (fn, line)


# ------------------------------------------------------------------ the records layer against Arrow

cells = st.sampled_from(["", "1", "ab", "x y", "é", "2.5", "-", "\t"])


@st.composite
def plain_csv(draw: st.DrawFn) -> bytes:
    ncols = draw(st.integers(1, 4))
    header = ",".join(f"c{i}" for i in range(ncols))
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        width = ncols if draw(st.integers(0, 9)) else draw(st.integers(1, 5))  # now and then a ragged row
        rows.append(",".join(draw(cells) for _ in range(width)))
        if draw(st.integers(0, 7)) == 0:
            rows.append("")  # a blank line
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return (eol.join([header, *rows]) + draw(st.sampled_from(["", eol]))).encode()


def _arrow_rows(data: bytes) -> int | None:
    """Rows by Arrow (every column a string), None when Arrow finds the CSV malformed."""
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False, check_utf8=True),
        )
        return int(table.num_rows)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):  # a header without a line end
            return 0
        return None


@settings(max_examples=80, deadline=None)
@given(data=plain_csv())
def test_plain_reading_agrees_with_arrow(data: bytes) -> None:
    want_rows = _arrow_rows(data)
    try:
        got = records.plain_line_leaves(lambda: io.BytesIO(data), "t.csv", ",")
    except InputError as exc:
        assert want_rows is None, f"refused a CSV that Arrow reads: {exc.message}"
        assert exc.message.startswith("t.csv: malformed CSV: line ")
        return
    assert got is not None  # no quotes, no lone CR: always plain
    leaves, n = got
    assert want_rows == n, "Arrow reads another number of records (or refuses the file)"
    lines = [ln.rstrip(b"\r") for ln in data.split(b"\n")]
    recs = [ln for ln in lines if ln][1:]
    assert leaves == b"".join(hashlib.sha256(b"\x00" + r).digest() for r in recs)


@settings(max_examples=40, deadline=None)
@given(data=plain_csv())
def test_plain_leaves_to_a_sink_are_the_returned_leaves(data: bytes) -> None:
    """With a sink, the blocks' leaves arrive in order and make up exactly the leaves returned without one."""
    try:
        want = records.plain_line_leaves(lambda: io.BytesIO(data), "t.csv", ",")
    except InputError:
        return
    assert want is not None
    for chunk in (64, 1 << 20):  # many blocks, one block
        parts: list[bytes] = []
        with mock.patch.object(records, "PLAIN_CHUNK", chunk):
            got = records.plain_line_leaves(lambda: io.BytesIO(data), "t.csv", ",", sink=parts.append)
        assert got == (b"", want[1]) and b"".join(parts) == want[0]


def test_not_plain_files_go_to_the_csv_parser(tmp_path: Path) -> None:
    for body in (b'a,b\n1,"x"\n', b"a,b\n1,2\r3,4\n", b'"a",b\n1,2\n', b"\na,b\r\r\n"):
        p = tmp_path / "q.csv"
        p.write_bytes(body)
        assert records.plain_line_leaves(lambda p=p: open(p, "rb"), "q.csv", ",") is None, body
    p = tmp_path / "t.tsv"
    p.write_bytes(b'a\tb\n1\t"x"\n')  # a quote is a literal in TSV
    got = records.plain_line_leaves(lambda: open(p, "rb"), "t.tsv", "\t")
    assert got is not None and got[1] == 1


def test_quoted_csv_still_read_by_records(tmp_path: Path) -> None:
    # a quoted field spanning lines: not plain, so the parser's path segments it by CSV records
    p = tmp_path / "m.csv"
    p.write_bytes(b'a,b\n1,"two\nlines"\n3,4\n')
    rd = records.record_digests(lambda: open(p, "rb"), "m.csv", "csv", file_sha256="")
    assert rd.encoding == "csv-records" and rd.count == 2


def test_shape_error_names_line_and_utf8_wins(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_bytes(b"a,b\n1,2\n\n3,4,5\n")
    with pytest.raises(InputError, match=r"^s\.csv: malformed CSV: line 4: expected 2 columns, got 3$"):
        records.record_digests(lambda: open(p, "rb"), "s.csv", "csv", file_sha256="")
    p.write_bytes(b"a,b\n1,2\n3,4,5\n" + b"6,7\n" * 10 + b"\xc3(,1\n")
    with pytest.raises(InputError, match=r"^s\.csv line 14: invalid UTF-8 at byte 0$"):
        records.record_digests(lambda: open(p, "rb"), "s.csv", "csv", file_sha256="")


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_line_numbers_across_read_blocks(tmp_path: Path, chunk: int) -> None:
    # tiny read blocks: the line named in a shape error counts every line before it, blank ones included
    body = b"a,b\n" + b"".join(b"%d,x\r\n" % i if i % 5 else b"\n" for i in range(200)) + b"1,2,3\n4,5\n"
    p = tmp_path / "n.csv"
    p.write_bytes(body)
    with mock.patch.object(records, "PLAIN_CHUNK", chunk):
        with pytest.raises(InputError, match=r"^n\.csv: malformed CSV: line 202: expected 2 columns, got 3$"):
            records.plain_line_leaves(lambda: open(p, "rb"), "n.csv", ",")
        p.write_bytes(body.replace(b"1,2,3", b"1,\xe9"))
        with pytest.raises(InputError, match=r"^n\.csv line 202: invalid UTF-8 at byte 2$"):
            records.plain_line_leaves(lambda: open(p, "rb"), "n.csv", ",")
        p.write_bytes(body.replace(b"1,2,3\n", b""))
        got = records.plain_line_leaves(lambda: open(p, "rb"), "n.csv", ",")
    assert got is not None and got[1] == 160 + 1


def _outcome(call: Any) -> Any:
    try:
        return call()
    except InputError as exc:
        return ("error", exc.message)


@settings(max_examples=40, deadline=None)
@given(data=plain_csv(), chunk=st.sampled_from([7, 64, 1 << 20]))
def test_mapped_file_gives_the_read_leaves_and_errors(tmp_path_factory: Any, data: bytes, chunk: int) -> None:
    """A regular file is mapped instead of read: the same leaves, counts and errors, whatever the block cuts."""
    p = tmp_path_factory.mktemp("mapped") / "t.csv"
    p.write_bytes(data)
    want = _outcome(lambda: records.plain_line_leaves(lambda: io.BytesIO(data), "t.csv", ","))
    mapped: list[bool] = []
    real = records._BlockReader._mapping

    def spy(self: Any) -> Any:
        got = real(self)
        mapped.append(got is not None)
        return got

    with (
        mock.patch.object(records, "MAPPED_MIN", 0),
        mock.patch.object(records, "CHUNK", chunk),
        mock.patch.object(records._BlockReader, "_mapping", spy),
    ):
        got = _outcome(lambda: records.plain_line_leaves(lambda: open(p, "rb"), "t.csv", ","))
        parts: list[bytes] = []  # with a sink the blocks are CHUNK at most: the cuts between them are tested
        streamed = _outcome(lambda: records.plain_line_leaves(lambda: open(p, "rb"), "t.csv", ",", sink=parts.append))
    assert got == want
    if isinstance(streamed, tuple) and streamed[0] != "error":
        streamed = (b"".join(parts), streamed[1])
    assert streamed == want
    assert all(mapped) or not data  # every reader of a non-empty file mapped it (an empty one cannot be)


@pytest.mark.parametrize("chunk", [7, 64])
@pytest.mark.parametrize("streamed", [False, True])
def test_mapped_line_numbers_and_long_lines(
    tmp_path: Path, chunk: int, streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "n.csv"

    def leaves() -> tuple[bytes, int] | None:
        parts: list[bytes] = []
        got = records.plain_line_leaves(lambda: open(p, "rb"), "n.csv", ",", sink=parts.append if streamed else None)
        return (b"".join(parts), got[1]) if streamed and got is not None else got

    body = b"a,b\n" + b"".join(b"%d,x\r\n" % i if i % 5 else b"\n" for i in range(200)) + b"1,2,3\n4,5"
    p.write_bytes(body)
    with mock.patch.object(records, "MAPPED_MIN", 0), mock.patch.object(records, "CHUNK", chunk):
        with pytest.raises(InputError, match=r"^n\.csv: malformed CSV: line 202: expected 2 columns, got 3$"):
            leaves()
        p.write_bytes(body.replace(b"1,2,3\n", b""))  # no LF at the end: the last line is still a record
        got = leaves()
        assert got is not None and got[1] == 160 + 1
        assert got[0][-32:] == hashlib.sha256(b"\x004,5").digest()
        # a line longer than a block but within the limit is one record; over the limit it is refused by line
        long = b"7," + b"y" * (5 * chunk)
        p.write_bytes(b"a,b\n1,2\n" + long + b"\n3,4\n")
        got = leaves()
        assert got is not None and got[1] == 3 and got[0][32:64] == hashlib.sha256(b"\x00" + long).digest()
        monkeypatch.setenv("DATAWARD_MAX_RECORD_BYTES", str(4 * chunk))
        with pytest.raises(InputError, match=r"^n\.csv line 3: .*a line of over [\d,]+ bytes"):
            leaves()
        p.write_bytes(b"a,b\n1,2\n" + long)  # the last line, without an LF, over the limit
        with pytest.raises(InputError, match=rf"^n\.csv line 3: .*a line of over {4 * chunk:,} bytes"):
            leaves()


def test_mapping_is_closed_also_when_the_file_is_not_plain(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_bytes(b"a,b\n" + b"1,2\n" * 50 + b'3,"x"\n' + b"5,6\n" * 50)
    made: list[Any] = []
    real = records._BlockReader._mapping

    def keep(self: Any) -> Any:
        got = real(self)
        made.append(got)
        return got

    with (
        mock.patch.object(records, "MAPPED_MIN", 0),
        mock.patch.object(records, "CHUNK", 64),
        mock.patch.object(records._BlockReader, "_mapping", keep),
    ):
        assert records.plain_line_leaves(lambda: open(p, "rb"), "q.csv", ",") is None
    assert made and made[0] is not None and made[0].closed


def test_small_files_and_streams_are_read_not_mapped(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_bytes(b"a,b\n1,2\n")
    with open(p, "rb") as f:
        assert records._BlockReader(f, "s.csv")._mapping() is None  # under MAPPED_MIN
    with mock.patch.object(records, "MAPPED_MIN", 0):
        assert records._BlockReader(io.BytesIO(b"a,b\n1,2\n"), "s.csv")._mapping() is None  # no file descriptor
        with open(p, "rb") as f:
            m = records._BlockReader(f, "s.csv")._mapping()
            assert m is not None
            m.close()


def test_a_mapped_object_truncated_while_hashed_kills_the_process_not_the_digests(tmp_path: Path) -> None:
    """A writer of the object store who truncates an object while it is hashed (threat model): the hashing
    process dies with SIGBUS (as in a crash: nothing published); it never returns leaves of other bytes."""
    import signal
    import subprocess
    import sys

    p = tmp_path / "t.csv"
    p.write_bytes(b"a,b\n" + b"1,2\n" * 200_000)
    child = f"""
import os
from unittest import mock
from dataward.records import leaves as records
real = records._BlockReader._mapped_blocks
def cut_after_first(self, mapped):
    for i, view in enumerate(real(self, mapped)):
        yield view
        if i == 0:
            os.truncate({str(p)!r}, 4096)
with mock.patch.object(records, "MAPPED_MIN", 0), mock.patch.object(records, "CHUNK", 64 << 10):
    with mock.patch.object(records._BlockReader, "_mapped_blocks", cut_after_first):
        print(records.plain_line_leaves(lambda: open({str(p)!r}, "rb"), "t.csv", ",", sink=len)[1])
"""
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGBUS, (run.returncode, run.stdout, run.stderr[-500:])
    assert run.stdout == b""
