"""The bulk leaf hasher against published vectors and at SHA-256's padding edges: the native extension (each
SHA-256 back end, one and several threads) and the pure-Python twin give the same leaves and roots.

The RFC 6962 vectors of the transparency-dev ``merkle`` project (``../shared/testvectors/rfc6962``) are proofs
over the reference tree of eight leaves (the inputs below, from that project's tests): each happy-path file
names a leaf hash and the root of the first ``treeSize`` leaves (``size1``/``size2`` for consistency), which
the bulk hasher must reproduce from the leaf inputs alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.core import leafhash, merkle

try:
    from dataward.core import _leafhash as native  # type: ignore[attr-defined]
except ImportError:  # not built: only the pure-Python twin is tested here
    native = None

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "testvectors" / "rfc6962"
needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"test vectors not present at {VECTORS}")
#: the leaf inputs of the reference tree the vectors are computed over
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
#: record lengths at the padding edges: 0x00 || record is 55/56 bytes (one block / two blocks), 63/64 (the
#: prefix pushes a full block over), 118/119 (the native short-record pairing limit), and around 2 blocks
EDGE_LENGTHS = [0, 1, 53, 54, 55, 56, 57, 62, 63, 64, 65, 117, 118, 119, 120, 126, 127, 128, 129, 191, 192]


@pytest.fixture(params=["python", "portable", "sha-ni"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each implementation in turn: the pure-Python twin and each SHA-256 back end of the extension."""
    if request.param == "python":
        yield "python"
        return
    if native is None:
        pytest.skip("native extension not built")
    try:
        previous = native.set_backend(request.param)
    except ValueError:
        pytest.skip(f"{request.param} not available on this CPU")
    yield request.param
    native.set_backend(previous)


def _leaves(impl: str, records: list[bytes], threads: int = 1) -> bytes:
    if impl == "python":
        return b"".join(merkle.leaf_hashes(records))
    return leafhash.leaf_hashes_concat(records, threads=threads)


def _root(impl: str, leaves: bytes, threads: int = 1) -> bytes:
    return leafhash.py_merkle_root(leaves) if impl == "python" else leafhash.merkle_root(leaves, threads=threads)


def _happy_paths() -> list[Path]:
    # the subtree* directories are a later extension over other trees (not RFC 6962)
    kinds = ("inclusion", "consistency")
    return sorted(p for k in kinds for p in (VECTORS / k).glob("*/happy-path.json")) if VECTORS.is_dir() else []


@needs_vectors
def test_reference_tree_vectors(impl: str) -> None:
    files = _happy_paths()
    assert len(files) >= 10, "expected the inclusion and consistency happy paths"
    leaves = _leaves(impl, REFERENCE_LEAVES)
    for path in files:
        v = json.loads(path.read_text(encoding="utf-8"))
        if "treeSize" in v:
            i, n = v["leafIdx"], v["treeSize"]
            assert leaves[32 * i : 32 * i + 32] == base64.b64decode(v["leafHash"]), path
            assert _root(impl, leaves[: 32 * n]) == base64.b64decode(v["root"]), path
        else:
            assert _root(impl, leaves[: 32 * v["size1"]]) == base64.b64decode(v["root1"]), path
            assert _root(impl, leaves[: 32 * v["size2"]]) == base64.b64decode(v["root2"]), path


def test_empty_tree_root(impl: str) -> None:
    assert _root(impl, b"") == hashlib.sha256(b"").digest()


def test_edge_lengths_one_and_many_threads(impl: str) -> None:
    # enough records (> the native code's parallel threshold) that several threads share them, with the
    # edge lengths in every order so that a short record's pairing partner has each other length
    rng = random.Random(56)
    recs = [rng.randbytes(rng.choice(EDGE_LENGTHS)) for _ in range(20_000)]
    want = b"".join(hashlib.sha256(b"\x00" + r).digest() for r in recs)
    for threads in (1, 2, 3):
        leaves = _leaves(impl, recs, threads)
        assert leaves == want
        assert _root(impl, leaves, threads) == merkle.root_from_leaf_hashes(merkle.leaf_hashes(recs))


@settings(max_examples=40, deadline=None)
@given(
    recs=st.lists(st.sampled_from(EDGE_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)), max_size=300),
    threads=st.integers(1, 3),
)
def test_random_records_native_equals_python(recs: list[bytes], threads: int) -> None:
    want = b"".join(merkle.leaf_hashes(recs))
    assert leafhash.leaf_hashes_concat(recs, threads=threads) == want
    assert leafhash.merkle_root(want, threads=threads) == leafhash.py_merkle_root(want)


def test_line_records_at_edge_lengths(impl: str) -> None:
    # the same lengths as lines of a block (no LF or CR inside a line; blank lines are not records)
    rng = random.Random(64)
    alphabet = bytes(b for b in range(256) if b not in (10, 13))
    lines = [bytes(rng.choices(alphabet, k=rng.choice(EDGE_LENGTHS))) for _ in range(40_000)]
    block = b"\n".join(lines)
    records = [line for line in lines if line]
    want = b"".join(hashlib.sha256(b"\x00" + r).digest() for r in records)
    if impl == "python":
        assert leafhash.py_line_leaves(block) == (want, len(records), False)
    else:
        for threads in (1, 2):
            assert leafhash.line_leaves(block, threads=threads) == (want, len(records), False)
