"""CSV partitions cut at record boundaries found in parallel (quote parity), byte-identical to one process.

A cut that falls inside a quoted field (newlines, delimiters and doubled quotes in it) must move to the
next record boundary; quoting that parity cannot follow (a stray quote in an unquoted field, a lone CR)
must leave the decision to the single-process code, which names the same line on bad input.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataward.errors import Error
from dataward.records.leaves import record_digests
from dataward.scale import records as scale_records
from dataward.scale._local import LocalExecutor
from dataward.scale.processes import ProcessExecutor
from dataward.scale.records import FileRef, partitioned_record_digests, plan_csv_cuts
from dataward.store.objects import ObjectStore

_ROOT = tempfile.TemporaryDirectory(prefix="dw-csv-cuts-")


def _put(data: bytes, fmt: str = "csv") -> tuple[ObjectStore, FileRef]:
    # a file store: tasks open the object concurrently, and forked workers read it by path
    store = ObjectStore(str(Path(_ROOT.name) / "objects"))
    digest = store.put_bytes("quarantine", data)
    return store, FileRef(f"d.{fmt}", digest, len(data), fmt)


def _single(store: ObjectStore, ref: FileRef) -> Any:
    try:
        return record_digests(lambda: store.open("quarantine", ref.sha256), ref.name, ref.fmt, file_sha256=ref.sha256)
    except Error as exc:
        return (type(exc), exc.message)


def _parted(store: ObjectStore, ref: FileRef, target: int, executor: Any = None) -> Any:
    try:
        return partitioned_record_digests(executor or LocalExecutor(), store, [ref], partition_bytes=target)[0]
    except Error as exc:
        return (type(exc), exc.message)


def _no_serial_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the driver fell back to reading the whole file")

    monkeypatch.setattr(scale_records, "record_digests", refuse)


QUOTED = (
    b"text,label,note\r\n"
    b"plain,0,x\n"
    b'"multi\nline\nvalue",1,"a, b"\n'
    b'"he said ""hi""\nthen left",0,\n'
    b"\n"
    b'"",1,"x\r\ny"\r\n'
    b'last,0,"""quoted"""\n'
)


@pytest.mark.parametrize("target", range(1, len(QUOTED) + 2))
def test_every_cut_of_a_quoted_csv_gives_the_single_process_digests(
    target: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ref = _put(QUOTED)
    expected = _single(store, ref)
    assert expected.encoding == "csv-records" and expected.count == 5
    _no_serial_fallback(monkeypatch)
    got = _parted(store, ref, target)
    assert got == expected
    for a, b in plan_csv_cuts(LocalExecutor(), store, "quarantine", ref, target):
        assert QUOTED[:a].count(b'"') % 2 == 0 and (a == 0 or QUOTED[a - 1 : a] == b"\n"), (a, b)


def test_cut_inside_a_long_quoted_field_moves_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"".join(b'%d,"%s"\n' % (i, b"line\n" * (i % 7) + b"x,y") for i in range(300))
    data = b"id,text\n" + body
    store, ref = _put(data)
    cuts = plan_csv_cuts(LocalExecutor(), store, "quarantine", ref, 97)
    assert len(cuts) > 20 and cuts[0][0] == 0 and cuts[-1][1] == len(data)
    _no_serial_fallback(monkeypatch)
    assert _parted(store, ref, 97) == _single(store, ref)
    assert _parted(store, ref, 97).count == 300


def test_lines_csv_stays_lines_and_matches_on_a_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"a,b,c\n" + b"".join(b'%d,"v, %d",%d\r\n' % (i, i * 7, i % 3) for i in range(2000))
    store, ref = _put(data)
    expected = _single(store, ref)
    assert expected.encoding == "lines" and expected.count == 2000
    _no_serial_fallback(monkeypatch)
    # every partition holds an even number of quotes: the newline cuts stand, no quote scan is needed
    monkeypatch.setattr(scale_records, "scan_task", None)
    assert _parted(store, ref, 1000) == expected
    with ProcessExecutor(2) as pool:
        assert _parted(store, ref, 1000, pool) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,5 inch"\n2,"x\ny"\n3,z\n' * 5,  # a stray quote in an unquoted field: parity is off
        b'a,b\n1,"x"y\n2,"p\nq"\n' * 5,  # text after a closing quote
        b"a,b\n1,2\r3,4\n5,6\n" * 5,  # a lone CR (Arrow ends a record there)
        b'a,b\n1,2\n3\n4,5,6\n"7\n8",9\n' * 5,  # wrong field counts: bad input
        b'a,b\n1,"never closed\n2,3\n4,5\n',
    ],
)
def test_quoting_parity_cannot_follow_defers_to_the_single_process(data: bytes) -> None:
    store, ref = _put(data)
    expected = _single(store, ref)
    for target in (1, 5, 13, 40):
        assert _parted(store, ref, target) == expected


FIELDS = st.sampled_from(
    ["", "a", "x y", '"q"', '"multi\nline"', '"a,b"', '"he said ""no"""', '""', "é", '"\r\n"', "1.5"]
)
ROWS = st.lists(st.lists(FIELDS, min_size=1, max_size=3), max_size=25)
ENDS = st.sampled_from(["\n", "\r\n"])


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, ends=st.lists(ENDS, min_size=1, max_size=4), target=st.integers(1, 60), stray=st.booleans())
def test_fuzzed_csv_partitions_match_the_single_process(
    rows: list[list[str]], ends: list[str], target: int, stray: bool
) -> None:
    """Random CSVs (quoted newlines, doubled quotes, CRLF, ragged rows, blank lines, a stray quote)."""
    text = "h1,h2,h3" + ends[0]
    for i, row in enumerate(rows):
        text += ",".join(row) + ends[i % len(ends)]
    if stray and rows:
        mid = len(text) // 2
        text = text[:mid] + '"' + text[mid:]
    data = text.encode("utf-8")
    store, ref = _put(data)
    expected = _single(store, ref)
    with pytest.MonkeyPatch.context() as mp:
        if not stray and not isinstance(expected, tuple):
            _no_serial_fallback(mp)  # RFC 4180 quoting: the partitions settle it themselves
        assert _parted(store, ref, target) == expected


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.sampled_from(["a\tb", "", "x\t", '"q"\t1', "é\t2"]), max_size=20), target=st.integers(1, 30))
def test_fuzzed_tsv_partitions_match_the_single_process(rows: list[str], target: int) -> None:
    data = ("h1\th2\n" + "\n".join(rows) + "\n").encode()
    store, ref = _put(data, "tsv")
    assert _parted(store, ref, target) == _single(store, ref)


PLAIN_THEN_QUOTED = b"text,label\n" + b"".join(b"row %d,%d\n" % (i, i % 2) for i in range(40)) + (
    b'"quoted\nnewline",1\n"a ""b""",0\n' + b"".join(b"tail %d,1\n" % i for i in range(20))
)


@pytest.mark.parametrize("target", [16, 64, 200, 1 << 20])
def test_plain_and_quoted_partitions_mix_exactly(monkeypatch: pytest.MonkeyPatch, target: int) -> None:
    store, ref = _put(PLAIN_THEN_QUOTED)
    expected = _single(store, ref)
    assert expected.encoding == "csv-records" and expected.count == 62
    _no_serial_fallback(monkeypatch)
    assert _parted(store, ref, target) == expected


def test_plain_partitions_skip_the_csv_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"\n\ntext,label,score\r\n" + b"".join(b"w%d w%d,%d,0.%d\r\n" % (i, i * 7, i % 3, i) for i in range(300))
    data += b"\nlast,1,2"  # a blank line and no final newline
    store, ref = _put(data)
    expected = _single(store, ref)
    assert expected.encoding == "lines" and expected.count == 301
    _no_serial_fallback(monkeypatch)

    def no_parser(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a plain partition went through Arrow's CSV parser")

    monkeypatch.setattr(scale_records, "csv_row_count", no_parser)
    for target in (30, 50, 999, 1 << 20):  # the header in the first partition
        assert _parted(store, ref, target) == expected
    monkeypatch.undo()
    bad = data.replace(b"w5 w35,2,0.5", b"w5 w35,2")  # a short row: the single process names its line
    store, ref = _put(bad)
    assert _parted(store, ref, 100) == _single(store, ref)
    assert "expected 3 columns, got 2" in _single(store, ref)[1]
