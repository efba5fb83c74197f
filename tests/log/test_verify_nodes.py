"""log verify's stored-node check: every edit of the node table is named, none crashes the verification."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from dataward.core import merkle
from dataward.log import verify
from dataward.store import log_entries


def _tree(n: int) -> merkle.MerkleTree:
    return merkle.MerkleTree([hashlib.sha256(b"%d" % i).digest() for i in range(n)])


def _problems(
    rows: list[tuple[Any, Any, Any]], tree: merkle.MerkleTree, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    monkeypatch.setattr(log_entries, "iter_nodes", lambda conn: iter(rows))
    verify._check_nodes(None, tree, lambda *p: found.append(p))  # type: ignore[arg-type]
    return found


def _edits(rows: list[tuple[Any, Any, Any]]) -> list[list[tuple[Any, Any, Any]]]:
    lv, ix, h = rows[-1]
    (a, i, ha), (b, j, hb) = rows[0], rows[1]
    return [
        [*rows[:-1], (lv, ix, bytes(32))],  # a wrong hash
        rows[1:],  # a node deleted
        [*rows[:-1], (lv, ix, h.hex())],  # a hash rewritten as text
        [*rows[:-1], (lv, ix, 7)],  # ... or as a number
        [*rows[:-1], (str(lv), ix, h)],  # a level rewritten as text
        [*rows, (40, 0, bytes(32))],  # a node added
        [(a, i, ha[:31]), (b, j, ha[31:] + hb), *rows[2:]],  # one byte moved between two hashes
        [(a, i, hb), (b, j, ha), *rows[2:]],  # two nodes' hashes swapped
    ]


@pytest.mark.parametrize("n", [2, 3, 13, 100])
def test_every_edit_of_the_nodes_is_named(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _tree(n)
    rows = list(tree.nodes())
    assert _problems(rows, tree, monkeypatch) == []
    for edited in _edits(rows):
        found = _problems(edited, tree, monkeypatch)
        assert found and all(p[1] == "node" for p in found), edited[:3]
