"""Benchmark of dataward.core.merkle against named peers, in one run.

What it measures, on N leaves (default 1M, the acquisition scale):
- ``leaf_hashes`` and ``root_from_leaf_hashes`` (the acquisition hot path), ``MerkleFrontier.extend`` (the audit
  log's append path, emitting every node to persist) and ``MerkleTree`` construction;
- inclusion and consistency proofs through a dict-backed ``get_node`` (a node table keyed by (level, index),
  as the audit log stores it), and their verification.

Peers:
- ``naive-recursive``: the RFC 9162 section 2.1.1 recursion written directly (in this file);
- ``pymerkle`` (InmemoryTree, RFC 9162 hashing) when installed: ``make bench-env`` builds
  ``.venv-bench-merkle`` from ``benchmarks/requirements-merkle.txt``. Its roots and proofs are also
  cross-checked against ours.

Run: ``.venv-bench-merkle/bin/python benchmarks/merkle.py [--leaves N] [--peer-leaves M] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from dataward.core import merkle as m


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Minimum wall time over ``repeat`` runs (seconds) and the last result."""
    times = []
    result: object = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _naive_root(leaves: list[bytes]) -> bytes:
    def mth(lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 1:
            return leaves[lo]
        k = 1 << ((n - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()

    return mth(0, len(leaves)) if leaves else m.EMPTY_ROOT


def _pymerkle_peer(records: list[bytes], leaves: list[bytes], repeat: int) -> dict[str, Any] | None:
    try:
        import pymerkle  # optional peer, only in the benchmark venv
    except ImportError:
        return None
    n = len(records)

    def build() -> Any:
        tree = pymerkle.InmemoryTree(algorithm="sha256")
        for r in records:
            tree.append_entry(r)
        return tree

    t_build, tree = _best(build, 1)
    peer_root = tree.get_root() if hasattr(tree, "get_root") else tree.get_state()
    ours = m.MerkleTree(leaves)
    idx = random.Random(7).sample(range(n), min(200, n))
    t0 = time.perf_counter()
    peer_proofs = [tree.prove_inclusion(i + 1) for i in idx]
    t_proof = (time.perf_counter() - t0) / len(idx)
    # pymerkle's path is [leaf hash, *RFC 9162 audit path]
    same = sum(
        [bytes.fromhex(h) for h in p.serialize()["path"][1:]] == ours.inclusion_proof(i)
        for i, p in zip(idx, peer_proofs, strict=True)
    )
    return {
        "proofs_equal_ours": f"{same}/{len(idx)}",
        "version": getattr(pymerkle, "__version__", "?"),
        "leaves": n,
        "build_s": t_build,
        "inclusion_proof_us": t_proof * 1e6,
        "root_matches_ours": peer_root == ours.root(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=1 << 20, help="tree size (default 1048576)")
    ap.add_argument("--peer-leaves", type=int, default=100_000, help="tree size for the slower peers")
    ap.add_argument("--proofs", type=int, default=20_000, help="number of proofs to time")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the JSON report only")
    args = ap.parse_args(argv)
    n, pn, repeat = args.leaves, min(args.peer_leaves, args.leaves), args.repeat
    rng = random.Random(1)
    records = [b"record-%d" % i for i in range(n)]

    res: dict[str, Any] = {"leaves": n, "peer_leaves": pn, "python": sys.version.split()[0]}
    t, leaves_obj = _best(lambda: m.leaf_hashes(records), repeat)
    leaves: list[bytes] = leaves_obj  # type: ignore[assignment]
    res["leaf_hashes_s"] = t
    t, root = _best(lambda: m.root_from_leaf_hashes(leaves), repeat)
    res["root_from_leaf_hashes_s"] = t
    res["root_leaves_per_s"] = n / t

    def frontier() -> list[tuple[int, int, bytes]]:
        return m.MerkleFrontier().extend(leaves)

    t, nodes = _best(frontier, 1)
    res["frontier_extend_s"] = t
    res["frontier_nodes"] = len(nodes)  # type: ignore[arg-type]
    t, tree_obj = _best(lambda: m.MerkleTree(leaves), 1)
    tree: m.MerkleTree = tree_obj  # type: ignore[assignment]
    res["memory_tree_build_s"] = t
    assert tree.root() == root

    table = {(lv, ix): h for lv, ix, h in tree.nodes()}
    get_node = table.__getitem__

    def get(level: int, index: int) -> bytes:
        return get_node((level, index))

    idx = [rng.randrange(n) for _ in range(args.proofs)]
    t0 = time.perf_counter()
    proofs = [m.inclusion_proof(i, n, get) for i in idx]
    t_incl = (time.perf_counter() - t0) / len(idx)
    t0 = time.perf_counter()
    for i, p in zip(idx, proofs, strict=True):
        m.verify_inclusion(leaves[i], i, n, p, root)
    t_vincl = (time.perf_counter() - t0) / len(idx)
    sizes = [rng.randrange(1, n) for _ in range(max(1, args.proofs // 4))]
    t0 = time.perf_counter()
    cproofs = [m.consistency_proof(s, n, get) for s in sizes]
    t_cons = (time.perf_counter() - t0) / len(sizes)
    res.update(
        inclusion_proof_us=t_incl * 1e6,
        inclusion_verify_us=t_vincl * 1e6,
        consistency_proof_us=t_cons * 1e6,
        mean_inclusion_proof_len=statistics.fmean(len(p) for p in proofs),
        mean_consistency_proof_len=statistics.fmean(len(p) for p in cproofs),
    )

    # peers, at the peer size
    peer_leaves = leaves[:pn]
    t_ours_small, root_small = _best(lambda: m.root_from_leaf_hashes(peer_leaves), repeat)
    t_naive, naive_root = _best(lambda: _naive_root(peer_leaves), 1)
    peers: dict[str, Any] = {
        "naive-recursive": {
            "leaves": pn,
            "root_s": t_naive,
            "ratio_vs_ours": t_naive / t_ours_small,
            "root_matches_ours": naive_root == root_small,
        }
    }
    pm = _pymerkle_peer(records[:pn], peer_leaves, repeat)
    if pm is None:
        peers["pymerkle"] = {"skipped": "not installed (run `make bench-env`, then use .venv-bench-merkle)"}
    else:
        pm["build_ratio_vs_our_frontier"] = pm["build_s"] / (res["frontier_extend_s"] * pn / n)
        pm["build_ratio_vs_our_leaf_and_root"] = pm["build_s"] / (t_ours_small + res["leaf_hashes_s"] * pn / n)
        peers["pymerkle"] = pm
    res["ours_root_at_peer_size_s"] = t_ours_small
    res["peers"] = peers

    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    w = print
    w(f"dataward.core.merkle on {n:,} leaves (Python {res['python']}, best of {repeat})")
    w(f"  leaf_hashes            {res['leaf_hashes_s']:.3f} s")
    rate = res["root_leaves_per_s"] / 1e6
    w(f"  root_from_leaf_hashes  {res['root_from_leaf_hashes_s']:.3f} s  ({rate:.2f} M leaves/s)")
    w(f"  MerkleFrontier.extend  {res['frontier_extend_s']:.3f} s  ({res['frontier_nodes']:,} nodes to persist)")
    w(f"  MerkleTree build       {res['memory_tree_build_s']:.3f} s")
    plen, clen = res["mean_inclusion_proof_len"], res["mean_consistency_proof_len"]
    w(f"  inclusion proof        {res['inclusion_proof_us']:.1f} us  (dict get_node, {plen:.1f} hashes)")
    w(f"  inclusion verify       {res['inclusion_verify_us']:.1f} us")
    w(f"  consistency proof      {res['consistency_proof_us']:.1f} us  ({clen:.1f} hashes)")
    w(f"peers on {pn:,} leaves (ours: root {t_ours_small:.3f} s)")
    nv = peers["naive-recursive"]
    w(f"  naive-recursive  root {nv['root_s']:.3f} s = {nv['ratio_vs_ours']:.2f}x ours")
    w(f"                   same root as ours: {nv['root_matches_ours']}")
    if pm is None:
        w(f"  pymerkle         skipped: {peers['pymerkle']['skipped']}")
    else:
        w(f"  pymerkle {pm['version']}  build {pm['build_s']:.3f} s")
        w(f"                 = {pm['build_ratio_vs_our_frontier']:.1f}x our frontier append")
        w(f"                 = {pm['build_ratio_vs_our_leaf_and_root']:.1f}x our leaf_hashes + root_from_leaf_hashes")
        ratio = pm["inclusion_proof_us"] / res["inclusion_proof_us"]
        w(f"                 inclusion proof {pm['inclusion_proof_us']:.1f} us = {ratio:.1f}x ours")
        w(f"                 same root as ours: {pm['root_matches_ours']}, same proofs: {pm['proofs_equal_ours']}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
