"""RFC 6962 Merkle roots of long leaf lists, with aligned chunks hashed as tasks.

With chunks of ``C = 2**m`` leaves, every split point of the RFC 6962 tree over ``n > C`` leaves (the
largest power of two below the range's size) falls on a chunk boundary, so the root over ``n`` leaves is
the RFC 6962 fold of the chunks' roots taken as level-``m`` nodes: ``root_from_leaf_hashes(chunk_roots)``
(the last chunk may be short; its root is that of its own leaves). Identical to the single pass.
"""

from __future__ import annotations

from dataward.core import leafhash, merkle
from dataward.scale.interface import Executor

CHUNK_LEAVES = 1 << 18  # 262,144 leaves = 8 MiB per task


def chunk_root(blob: bytes) -> bytes:
    """The RFC 6962 root over the concatenated 32-byte leaf hashes in ``blob``."""
    return leafhash.merkle_root(blob)


def merkle_root(executor: Executor | None, leaves: bytes, *, chunk_leaves: int = CHUNK_LEAVES) -> bytes:
    """``merkle.root_from_leaf_hashes`` of the leaves concatenated in ``leaves``, chunks on ``executor``."""
    if chunk_leaves <= 0 or chunk_leaves & (chunk_leaves - 1):
        raise ValueError(f"chunk_leaves must be a power of two, not {chunk_leaves}")
    n = len(leaves) // 32
    if executor is None or n <= chunk_leaves or leafhash.NATIVE:
        # the native root uses every core in-process; shipping the leaves to workers would cost more
        return chunk_root(leaves)
    step = 32 * chunk_leaves
    roots = executor.map(chunk_root, [leaves[i : i + step] for i in range(0, len(leaves), step)])
    return merkle.root_from_leaf_hashes(roots)
