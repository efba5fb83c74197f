"""The bulk leaf hasher: native extension (both SHA-256 back ends) and pure-Python twin give the same bytes
as hashlib and as the reference Merkle code in core/merkle.py."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.core import leafhash, merkle
from dataward.records import leaves as records

try:
    from dataward.core import _leafhash as native  # type: ignore[attr-defined]
except ImportError:  # not built: only the pure-Python twin is tested here
    native = None

needs_native = pytest.mark.skipif(native is None, reason="native extension not built")
BACKENDS = ["portable", "sha-ni"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with each SHA-256 compression function of the extension (skip sha-ni on CPUs without it)."""
    if native is None:
        pytest.skip("native extension not built")
    try:
        previous = native.set_backend(request.param)
    except ValueError:
        pytest.skip(f"{request.param} not available on this CPU")
    yield request.param
    native.set_backend(previous)


def _ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def test_native_is_built_in_ci() -> None:
    # CI installs with a compiler: a silently missing extension would hide a 10x regression
    if os.environ.get("CI") == "true":
        assert leafhash.NATIVE, "dataward.core._leafhash was not built"


@needs_native
def test_every_length_across_block_boundaries(backend: str) -> None:
    # lengths around the 55/56/63/64-byte padding edges of one and two blocks, and multi-block records
    data = os.urandom(5000)
    recs = [data[:n] for n in [*range(0, 260), 1000, 4095, 4096, 4097, 5000]]
    assert leafhash.leaf_hashes_concat(recs) == b"".join(_ref_leaf(r) for r in recs)
    # a NIST vector through the node path: SHA-256(0x01 || 64 bytes) against hashlib
    left, right = os.urandom(32), os.urandom(32)
    assert leafhash.merkle_root(left + right) == hashlib.sha256(b"\x01" + left + right).digest()


@needs_native
@settings(max_examples=60, deadline=None)
@given(recs=st.lists(st.binary(max_size=300), max_size=200), threads=st.integers(1, 4))
def test_offsets_match_hashlib(recs: list[bytes], threads: int) -> None:
    want = b"".join(_ref_leaf(r) for r in recs)
    assert leafhash.leaf_hashes_concat(recs, threads=threads) == want
    assert leafhash.py_leaf_hashes_offsets(b"".join(recs), _offsets(recs)) == want


def _offsets(recs: list[bytes]) -> list[int]:
    out = [0]
    for r in recs:
        out.append(out[-1] + len(r))
    return out


def test_offsets_out_of_range_are_refused() -> None:
    for offs in ([0, 5], [3, 2], [-1, 0], []):
        with pytest.raises(ValueError):
            leafhash.leaf_hashes_offsets(b"abcd", offs)
        with pytest.raises(ValueError):
            leafhash.py_leaf_hashes_offsets(b"abcd", offs)


lines_text = st.lists(
    st.one_of(st.sampled_from([b"", b"\r", b"a,b", b"x\r", b"\r\r", b" ", b"h\xc3\xa9"]), st.binary(max_size=40)),
    max_size=60,
).map(lambda parts: b"\n".join(p.replace(b"\n", b"") for p in parts))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(block=lines_text, skip=st.booleans(), threads=st.integers(1, 3))
def test_line_leaves_native_equals_python(block: bytes, skip: bool, threads: int) -> None:
    want = leafhash.py_line_leaves(block, skip_header=skip)
    # the definition, written out: split at LF, drop one trailing CR, blank lines are not records
    lines = [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]
    lines = [line for line in lines if line]
    header = skip and bool(lines)
    if header:
        lines = lines[1:]
    assert want == (b"".join(map(_ref_leaf, lines)), len(lines), header)
    if native is not None:
        assert leafhash.line_leaves(block, skip_header=skip, threads=threads) == want


@needs_native
def test_line_leaves_split_over_threads(backend: str) -> None:
    # over 1 MiB so the work is split; cut points land inside CRLF pairs and blank runs
    rng = random.Random(7)
    parts = [rng.choice([b"", b"\r", b"row,%d" % i, b"q\r", b"x" * rng.randrange(200)]) for i in range(60000)]
    block = b"\n".join(parts) + b"\r"
    assert len(block) > 1 << 20
    want = leafhash.py_line_leaves(block, skip_header=True)
    for threads in (1, 2, 3, 7):
        assert leafhash.line_leaves(block, skip_header=True, threads=threads) == want


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 4095, 4096, 4097, 8191, 8192, 8193, 12289, 3 * 4096 + 1000])
def test_merkle_root_matches_reference(n: int) -> None:
    leaves = merkle.leaf_hashes(i.to_bytes(4, "big") for i in range(n))
    want = merkle.root_from_leaf_hashes(leaves)
    blob = b"".join(leaves)
    assert leafhash.py_merkle_root(blob) == want
    for threads in (1, 2, 5):
        assert leafhash.merkle_root(blob, threads=threads) == want


@needs_native
def test_merkle_root_both_backends(backend: str) -> None:
    leaves = merkle.leaf_hashes(os.urandom(8) for _ in range(20000))
    assert leafhash.merkle_root(b"".join(leaves), threads=2) == merkle.root_from_leaf_hashes(leaves)


def test_merkle_root_refuses_partial_hash() -> None:
    with pytest.raises(ValueError):
        leafhash.merkle_root(b"x" * 33)
    with pytest.raises(ValueError):
        leafhash.py_merkle_root(b"x" * 33)


def _old_line_leaves(data: bytes, skip_header: bool) -> tuple[bytes, int]:
    """The record reader's algorithm before the batch hasher (one hashlib call per line), as the oracle."""
    out: list[bytes] = []
    header_seen = not skip_header
    for _first, lines in records.iter_lines(io.BytesIO(data)):
        if not header_seen:
            for j, line in enumerate(lines):
                if line:
                    lines = lines[j + 1 :]
                    header_seen = True
                    break
            else:
                continue
        out.extend(_ref_leaf(line) for line in lines if line)
    return b"".join(out), len(out)


@settings(max_examples=80, deadline=None)
@given(block=lines_text, skip=st.booleans(), chunk=st.integers(1, 64))
def test_record_reader_digests_unchanged(block: bytes, skip: bool, chunk: int) -> None:
    # tiny read chunks put block boundaries everywhere, inside CRLF pairs included
    with mock.patch.object(records, "CHUNK", chunk):
        want = _old_line_leaves(block, skip)
        got = records.line_leaves(io.BytesIO(block), "f.csv", skip_header=skip, strict=False)
    assert got == want


def test_fallback_selected_by_environment() -> None:
    code = (
        "from dataward.core import leafhash as l, merkle as m;"
        "assert not l.NATIVE;"
        "print(l.line_leaves(b'h\\r\\na\\n\\nb', skip_header=True)[0] == b''.join(m.leaf_hashes([b'a', b'b'])))"
    )
    env = {**os.environ, "DATAWARD_NATIVE_HASH": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ------------------------------------------------------------------------------ audit log entry leaves


def _entry_leaf(body: bytes, sig: bytes) -> bytes:
    from dataward.log.auditlog import entry_leaf_hash

    return entry_leaf_hash(body, sig)


@needs_native
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=70)), max_size=30))
def test_entry_leaves_native_equals_python_and_the_log(pairs: list[tuple[bytes, bytes]]) -> None:
    bodies, sigs = [b for b, _s in pairs], [s for _b, s in pairs]
    want = b"".join(_entry_leaf(b, s) for b, s in pairs)
    assert leafhash.py_entry_leaves(bodies, sigs) == want
    assert native.entry_leaves(bodies, sigs) == want


@needs_native
def test_entry_leaves_every_length_both_backends(backend: str) -> None:
    # record lengths across the one- and two-block paddings and several blocks; every base64 padding
    bodies = [bytes(range(n % 256)) * (1 + n // 256) for n in range(0, 400)]
    sigs = [bytes([n % 251]) * (n % 67) for n in range(0, 400)]
    want = b"".join(_entry_leaf(b, s) for b, s in zip(bodies, sigs, strict=True))
    assert native.entry_leaves(bodies, sigs) == want


@pytest.mark.parametrize("impl", ["native", "python"])
def test_entry_leaves_refuse_what_is_not_bytes(impl: str) -> None:
    if impl == "native" and native is None:
        pytest.skip("native extension not built")
    f = native.entry_leaves if impl == "native" else leafhash.py_entry_leaves
    with pytest.raises(TypeError):
        f([b"{}", "text"], [b"s", b"s"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        f([b"{}"], [bytearray(b"s")])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        f([b"{}", b"{}"], [b"s"])
    assert f([], []) == b""
