"""Merkle core against an independent recursive RFC 9162 reference, plus tamper and frontier properties."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataward.core import merkle as m
from dataward.errors import InputError

# ------------------------------------------------------------------ reference (RFC 9162 section 2.1)


def _ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


@lru_cache(maxsize=1 << 16)
def _ref_mth(data: tuple[bytes, ...]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return _ref_leaf(data[0])
    k = _split(n)
    return _ref_node(_ref_mth(data[:k]), _ref_mth(data[k:]))


def _ref_path(index: int, data: tuple[bytes, ...]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*_ref_path(index, data[:k]), _ref_mth(data[k:])]
    return [*_ref_path(index - k, data[k:]), _ref_mth(data[:k])]


def _ref_subproof(size1: int, data: tuple[bytes, ...], whole: bool) -> list[bytes]:
    n = len(data)
    if size1 == n:
        return [] if whole else [_ref_mth(data)]
    k = _split(n)
    if size1 <= k:
        return [*_ref_subproof(size1, data[:k], whole), _ref_mth(data[k:])]
    return [*_ref_subproof(size1 - k, data[k:], False), _ref_mth(data[:k])]


def _records(n: int) -> tuple[bytes, ...]:
    return tuple(f"record-{i}".encode() for i in range(n))


def _tree(n: int) -> m.MerkleTree:
    return m.MerkleTree.from_data(_records(n))


# --------------------------------------------------------------------------------- basic hashing


def test_hashing_constants() -> None:
    assert m.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # RFC 6962 leaf hash of the empty string, a well known constant (the transparency-dev vectors use it)
    assert m.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert m.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert m.leaf_hashes([b"x", b"", b"yz"]) == [m.leaf_hash(b"x"), m.leaf_hash(b""), m.leaf_hash(b"yz")]
    assert m.root_from_leaf_hashes([]) == m.EMPTY_ROOT
    assert m.MerkleTree().root() == m.EMPTY_ROOT


def test_roots_match_reference_for_every_size_up_to_300() -> None:
    data = _records(300)
    leaves = m.leaf_hashes(data)
    frontier = m.MerkleFrontier()
    assert frontier.root() == m.EMPTY_ROOT
    for n in range(1, 301):
        frontier.append(leaves[n - 1])
        want = _ref_mth(data[:n])
        assert m.root_from_leaf_hashes(leaves[:n]) == want, n
        assert frontier.root() == want, n
        assert frontier.size == n


def test_every_proof_matches_reference_up_to_size_40() -> None:
    data = _records(40)
    tree = m.MerkleTree.from_data(data)
    for n in range(1, 41):
        root = tree.root(n)
        assert root == _ref_mth(data[:n])
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == _ref_path(i, data[:n]), (i, n)
            m.verify_inclusion(tree.leaf(i), i, n, proof, root)
        for s1 in range(1, n + 1):
            proof = tree.consistency_proof(s1, n)
            assert proof == _ref_subproof(s1, data[:n], True), (s1, n)
            m.verify_consistency(s1, n, tree.root(s1), root, proof)


# ------------------------------------------------------------------------------ tamper properties


def _flip(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    h = bytearray(out[i])
    h[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(h)
    return out


def _rejects(fn: object, *args: object) -> bool:
    assert callable(fn)
    try:
        fn(*args)
    except m.InvalidProofError as exc:
        assert str(exc) and "\n" not in str(exc)
        return True
    return False


@st.composite
def _inclusion_case(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, 300))
    index = draw(st.integers(0, size - 1))
    bit = draw(st.integers(0, 255))
    return size, index, bit


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inclusion_case())
def test_inclusion_proofs_verify_and_tampering_fails(case: tuple[int, int, int]) -> None:
    size, index, bit = case
    data = _records(size)
    tree = _tree(size)
    root = tree.root()
    leaf = tree.leaf(index)
    proof = tree.inclusion_proof(index)
    assert proof == _ref_path(index, data)
    m.verify_inclusion(leaf, index, size, proof, root)

    verify = m.verify_inclusion
    for i in range(len(proof)):
        assert _rejects(verify, leaf, index, size, _flip(proof, i, bit), root)
    assert _rejects(verify, _flip([leaf], 0, bit)[0], index, size, proof, root)
    assert _rejects(verify, leaf, index, size, proof, _flip([root], 0, bit)[0])
    for other in {0, index - 1, index + 1, size - 1, index ^ 1} - {index}:
        if 0 <= other < size:
            assert _rejects(verify, leaf, other, size, proof, root), f"index {other} accepted"
    assert _rejects(verify, leaf, index, size, [*proof, proof[0] if proof else root], root)
    assert _rejects(verify, leaf, index, size, [root, *proof], root)
    if proof:
        assert _rejects(verify, leaf, index, size, proof[:-1], root)
        assert _rejects(verify, leaf, index, size, proof[1:], root)
    # A tree size is bound to a root by the signed checkpoint, not by the proof: some other sizes have the
    # same proof shape (e.g. leaf 0 of sizes 3 and 4). Sizes whose proof length differs, and the doubled and
    # halved sizes of the transparency-dev vectors, must fail.
    for wrong in {size * 2, size // 2, size + 1, size - 1, index, 0}:
        if wrong == size:
            continue
        shape_differs = wrong <= index or len(_ref_path(index, _records(wrong))) != len(proof)
        if shape_differs or wrong in (size * 2, size // 2):
            assert _rejects(verify, leaf, index, wrong, proof, root), f"size {wrong} accepted"


@st.composite
def _consistency_case(draw: st.DrawFn) -> tuple[int, int, int]:
    size2 = draw(st.integers(1, 300))
    size1 = draw(st.integers(1, size2))
    bit = draw(st.integers(0, 255))
    return size1, size2, bit


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_consistency_case())
def test_consistency_proofs_verify_and_tampering_fails(case: tuple[int, int, int]) -> None:
    size1, size2, bit = case
    data = _records(size2)
    tree = _tree(size2)
    root1, root2 = tree.root(size1), tree.root()
    proof = tree.consistency_proof(size1)
    assert proof == _ref_subproof(size1, data, True)
    m.verify_consistency(size1, size2, root1, root2, proof)

    verify = m.verify_consistency
    for i in range(len(proof)):
        assert _rejects(verify, size1, size2, root1, root2, _flip(proof, i, bit))
    assert _rejects(verify, size1, size2, _flip([root1], 0, bit)[0], root2, proof)
    assert _rejects(verify, size1, size2, root1, _flip([root2], 0, bit)[0], proof)
    assert _rejects(verify, size1, size2, root1, root2, [*proof, root1])
    assert _rejects(verify, size1, size2, root1, root2, [root2, *proof])
    if proof:
        assert _rejects(verify, size1, size2, root1, root2, proof[:-1])
        assert _rejects(verify, size1, size2, root2, root1, proof)  # swapped roots
        assert _rejects(verify, size1, size2, root1, root2, [])
    assert _rejects(verify, size2 + 1, size2, root1, root2, proof)  # time travel
    assert _rejects(verify, 0, size2, root1, root2, proof)
    # Sizes are bound to roots by checkpoints; wrong sizes whose proof length differs must fail.
    for s1, s2 in {(size1 - 1, size2), (size1 + 1, size2), (size1, size2 * 2), (size1, size2 // 2)}:
        if (s1, s2) == (size1, size2) or not 0 < s1 <= s2:
            continue
        if len(_ref_subproof(s1, _records(s2), True)) != len(proof):
            assert _rejects(verify, s1, s2, root1, root2, proof), f"sizes ({s1}, {s2}) accepted"


def test_verifiers_reject_malformed_arguments() -> None:
    tree = _tree(5)
    root, leaf, proof = tree.root(), tree.leaf(2), tree.inclusion_proof(2)
    assert _rejects(m.verify_inclusion, leaf, -1, 5, proof, root)
    assert _rejects(m.verify_inclusion, leaf, 2, -5, proof, root)
    assert _rejects(m.verify_inclusion, leaf[:31], 2, 5, proof, root)
    assert _rejects(m.verify_inclusion, leaf, 2, 5, [proof[0][:31], *proof[1:]], root)
    assert _rejects(m.verify_inclusion, leaf, 0, 0, [], m.EMPTY_ROOT)
    assert _rejects(m.verify_consistency, -1, 5, root, root, [])
    assert _rejects(m.verify_consistency, 3, 5, tree.root(3), root, [b"short"])
    with pytest.raises(m.InvalidProofError, match="has 1 hashes, expected 3"):
        m.verify_inclusion(leaf, 2, 5, proof[:1], root)


# ------------------------------------------------------------------------- get_node and frontier


class CountingNodes:
    """A dict-backed node table (as the audit log keeps it) that counts get_node calls."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes
        self.calls = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.nodes[(level, index)]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_frontier_persisted_nodes_serve_the_same_proofs(size: int, data: st.DataObject) -> None:
    tree = _tree(size)
    frontier = m.CompactRange()
    table: dict[tuple[int, int], bytes] = {}
    for i in range(size):
        new = frontier.append(tree.leaf(i))
        assert new[0] == (0, i, tree.leaf(i))
        for level, index, h in new:
            assert (level, index) not in table, "a perfect node is emitted once"
            table[(level, index)] = h
    assert table == {(lv, ix): h for lv, ix, h in tree.nodes()}
    assert frontier.root() == tree.root() == m.subtree_root(0, size, lambda lv, ix: table[(lv, ix)])

    get = CountingNodes(table)
    index = data.draw(st.integers(0, size - 1))
    size1 = data.draw(st.integers(1, size))
    assert m.inclusion_proof(index, size, get) == tree.inclusion_proof(index)
    assert m.consistency_proof(size1, size, get) == tree.consistency_proof(size1)

    rebuilt = m.MerkleFrontier.from_get_node(size, get)
    assert rebuilt.hashes == frontier.hashes and rebuilt.size == size
    assert [(lv, ix) for lv, ix, _ in rebuilt.nodes()] == m.range_nodes(0, size)
    extra = m.leaf_hash(b"one more")
    assert rebuilt.append(extra) == frontier.append(extra)
    assert rebuilt.root() == frontier.root() == m.MerkleTree([*m.leaf_hashes(_records(size)), extra]).root()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=8))
def test_frontier_extend_in_chunks_equals_append(chunks: list[int]) -> None:
    leaves = m.leaf_hashes(_records(sum(chunks)))
    by_append, by_extend = m.MerkleFrontier(), m.MerkleFrontier()
    appended: dict[tuple[int, int], bytes] = {}
    extended: dict[tuple[int, int], bytes] = {}
    pos = 0
    for k in chunks:
        for h in leaves[pos : pos + k]:
            appended.update(((lv, ix), nh) for lv, ix, nh in by_append.append(h))
        batch = by_extend.extend(leaves[pos : pos + k])
        assert len({(lv, ix) for lv, ix, _ in batch}) == len(batch), "a node is emitted once"
        extended.update(((lv, ix), nh) for lv, ix, nh in batch)
        pos += k
        assert by_extend.size == by_append.size == pos
        assert by_extend.hashes == by_append.hashes
        assert by_extend.root() == m.root_from_leaf_hashes(leaves[:pos])
    assert extended == appended


def test_frontier_extend_and_validation() -> None:
    leaves = m.leaf_hashes(_records(37))
    a, b = m.MerkleFrontier(), m.MerkleFrontier()
    nodes = a.extend(leaves)
    for h in leaves:
        b.append(h)
    assert a.hashes == b.hashes and a.root() == b.root()
    assert len(nodes) == sum(1 for _ in m.MerkleTree(leaves).nodes())
    with pytest.raises(InputError):
        m.MerkleFrontier(3, [leaves[0]])
    with pytest.raises(InputError):
        a.append(b"short")
    with pytest.raises(InputError):
        m.MerkleFrontier(-1)


def test_proofs_need_only_logarithmic_get_node_calls() -> None:
    """On a huge virtual tree every proof asks for O(log n) perfect nodes and never the ragged edge."""
    size = (1 << 40) + 12345

    def synthetic(level: int, index: int) -> bytes:
        assert (index + 1) << level <= size, f"asked for incomplete node ({level}, {index})"
        calls.append((level, index))
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    for index in (0, 1, size // 3, size - 12346, size - 1):
        calls: list[tuple[int, int]] = []
        proof = m.inclusion_proof(index, size, synthetic)
        assert len(calls) <= 2 * 41, (index, len(calls))
        assert len(proof) <= 42
    for size1 in (1, 2, 12345, 1 << 40, size - 1):
        calls = []
        m.consistency_proof(size1, size, synthetic)
        assert len(calls) <= 3 * 41, (size1, len(calls))
    calls = []
    m.subtree_root(0, size, synthetic)
    assert len(calls) == size.bit_count()


def test_range_nodes_and_subtree_rules() -> None:
    assert m.range_nodes(0, 6) == [(2, 0), (1, 2)]
    assert m.range_nodes(3, 9) == [(0, 3), (2, 1), (0, 8)]
    assert m.range_nodes(5, 5) == []
    tree = _tree(13)
    assert m.subtree_root(8, 13, tree.get_node) == _ref_mth(_records(13)[8:13])
    assert m.subtree_root(4, 4, tree.get_node) == m.EMPTY_ROOT
    with pytest.raises(InputError, match="not a Merkle subtree"):
        m.subtree_root(2, 7, tree.get_node)
    with pytest.raises(InputError):
        m.range_nodes(5, 4)
    with pytest.raises(InputError, match="out of range"):
        m.inclusion_proof(13, 13, tree.get_node)
    with pytest.raises(InputError, match="0 < size1"):
        m.consistency_proof(0, 13, tree.get_node)
    with pytest.raises(InputError):
        tree.root(14)
    with pytest.raises(IndexError):
        tree.get_node(2, 3)  # leaves 12..15 are not all there
    assert tree.consistency_proof(13) == []
