"""Federated provenance: peers catch a rewound or forked node log; the coordinator accepts only signed,
witnessed rounds; the trace ranks the poisoned node first in a small simulation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dataward import principals
from dataward.errors import IntegrityError, SignatureError
from dataward.federated import Coordinator, ForkError, Node, RewindError
from dataward.federated.coordinator import encode_update
from dataward.federated.simulation import Scenario, run
from dataward.model.roles import Grant, Role
from dataward.workspace import Workspace


def _node(tmp: Path, i: int) -> Node:
    return Node(Workspace.init(tmp / f"node{i}", admin=f"op{i}"), f"node{i}")


def _round(node: Node, r: int, base: str = "0" * 64) -> tuple[object, bytes, bytes]:
    update = encode_update(np.full((3, 2), float(r)))
    env = node.sign_update(r, update, base, {"local@1": "ab" * 32})
    return env, node.checkpoint(), update


def _restore(node: Node, saved: Path) -> None:
    """What an operator who rewinds a node's log does: put an old catalog file back."""
    node.ws.engine.dispose()
    db = node.ws.path / "catalog.db"
    for extra in (db.with_name("catalog.db-wal"), db.with_name("catalog.db-shm")):
        extra.unlink(missing_ok=True)
    shutil.copy(saved, db)


def test_peer_catches_a_rewound_log(tmp_path: Path) -> None:
    a, b = _node(tmp_path, 0), _node(tmp_path, 1)
    _round(b, 0)
    a.witness_peer(b)
    b.ws.engine.dispose()
    saved = tmp_path / "b-round0.db"
    shutil.copy(b.ws.path / "catalog.db", saved)
    _round(b, 1)
    a.witness_peer(b)  # an honest extension is cosigned
    _restore(b, saved)
    with pytest.raises(RewindError, match="node node1: log rewound"):
        a.witness_peer(b)


def test_peer_catches_a_forked_log(tmp_path: Path) -> None:
    a, b = _node(tmp_path, 0), _node(tmp_path, 1)
    _round(b, 0)
    a.witness_peer(b)
    b.ws.engine.dispose()
    saved = tmp_path / "b.db"
    shutil.copy(b.ws.path / "catalog.db", saved)
    _round(b, 1)
    a.witness_peer(b)
    _restore(b, saved)
    for r in (7, 8, 9):  # another history, now longer than what the peer saw
        _round(b, r)
    with pytest.raises(ForkError, match="does not extend"):
        a.witness_peer(b)


@pytest.fixture
def federation(tmp_path: Path):  # type: ignore[no-untyped-def]
    ws = Workspace.init(tmp_path / "coord", admin="coord")
    admin = ws.actor("coord")
    principals.grant_roles(ws, admin, "coord", [Grant(Role.TRAINER)])
    coord = Coordinator(ws, admin, witness_threshold=1)
    nodes = [_node(tmp_path, i) for i in range(3)]
    for n in nodes:
        coord.register(n.identity)
    yield coord, nodes
    ws.engine.dispose()


def test_coordinator_accepts_a_signed_witnessed_round(federation) -> None:  # type: ignore[no-untyped-def]
    coord, nodes = federation
    contributions = []
    for i, n in enumerate(nodes):
        env, note, update = _round(n, 0)
        note = nodes[(i + 1) % 3].witness_peer(n, note)
        contributions.append((env, note, update))
    rec = coord.record_round(0, contributions, base_model_sha256="0" * 64, model=b"model")
    assert [c.node for c in rec.contributions] == ["node0", "node1", "node2"]
    assert [c.witnesses for c in rec.contributions] == [("node1",), ("node2",), ("node0",)]
    assert coord.rounds() == [rec]  # read back from the coordinator's signed log entries


def test_coordinator_refuses_unwitnessed_forged_or_mismatched(federation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    coord, nodes = federation
    env, note, update = _round(nodes[0], 0)
    with pytest.raises(IntegrityError, match="cosigned by 0 peer"):
        coord.record_round(0, [(env, note, update)], base_model_sha256="0" * 64, model=b"m")
    note = nodes[1].witness_peer(nodes[0], note)
    with pytest.raises(IntegrityError, match="does not match the digest"):
        coord.record_round(0, [(env, note, update + b"x")], base_model_sha256="0" * 64, model=b"m")
    with pytest.raises(IntegrityError, match="round 0 on another base"):
        coord.record_round(0, [(env, note, update)], base_model_sha256="1" * 64, model=b"m")
    stranger = _node(tmp_path, 9)  # not registered: its signature counts for nothing
    s_env, s_note, s_update = _round(stranger, 0)
    with pytest.raises(SignatureError, match="no registered node"):
        coord.record_round(0, [(s_env, s_note, s_update)], base_model_sha256="0" * 64, model=b"m")
    assert coord.rounds() == []  # nothing recorded by a refused round


def test_simulation_ranks_the_poisoned_node_first() -> None:
    out = run(Scenario(dataset="digits", n_nodes=4, rounds=2, seed=3))
    assert out.attack_took and out.rank_of_poisoned == 1 and out.poisoned_batch_first
