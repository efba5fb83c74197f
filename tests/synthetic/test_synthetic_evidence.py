"""The `regenerable` rule and the federated coordinator read signed entries through the evidence replay:
a log row forged by SQL (no valid signature) fails the gate at gate time, not only at `log verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataward import principals
from dataward.errors import PolicyError
from dataward.log.verify import verify_log
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.store.catalog import write_transaction
from dataward.synthetic import regenerate, synthesize
from dataward.workspace import Workspace

GENERATOR = """
import numpy as np

def make_rows(*, seed, params, inputs):
    rng = np.random.default_rng(seed)
    return [{"x": float(rng.normal()), "label": ["a", "b"][int(rng.integers(2))], "i": i} for i in range(40)]
"""


def forge_entry(ws: Workspace, principal: str, action: str, subject: str, details: dict[str, Any]) -> int:
    """An insider with write access to the catalog appends a log row with everything consistent (tree
    nodes, checkpoint, the principal's real key ID) except the signature, which the principal never made:
    it is made with a stranger's key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dataward.core.signer import PrivateKeySigner
    from dataward.identity import Actor
    from dataward.log import auditlog

    with ws.engine.connect() as conn:
        keyid = ws.active_key_row(conn, principal).keyid
    forger = Actor(principal, PrivateKeySigner(Ed25519PrivateKey.generate()), keyid)
    with write_transaction(ws.engine) as conn:
        [entry] = auditlog.append(
            conn, [auditlog.PendingEntry(forger, action, subject, details)], log_key=ws.log_actor(), origin=ws.origin
        )
    return entry.seq


@pytest.fixture
def synth(env, tmp_path: Path):  # type: ignore[no-untyped-def]
    admin = env.ws.actor("admin")
    add_source(env.ws, admin, "gen", kind="synthetic", origin="generator:genmod")
    code = tmp_path / "gencode"
    code.mkdir()
    (code / "genmod.py").write_text(GENERATOR, encoding="utf-8")
    return env, code


def _regenerable(ws: Workspace, batch_id: str) -> Any:
    from dataward.workflow.gate import evaluate

    todo = [evaluate(ws, batch_id).result]
    while todo:
        r = todo.pop()
        if r.rule == "regenerable":
            return r
        todo.extend(r.children)
    return None


def test_forged_regenerated_row_does_not_pass_the_approval_gate(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    ingrid = env.actor("ingrid")
    batch, _ = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=5, search_path=str(code))
    seq = forge_entry(env.ws, "ingrid", "batch.verify", f"batch:{batch.id}", {"regenerated": True, "problems": []})
    rule = _regenerable(env.ws, batch.id)
    assert rule is not None and not rule.passed, rule
    with pytest.raises(PolicyError):
        env.approve(batch.id)
    # log verify names the row too
    assert any(p.seq == seq for p in verify_log(env.ws, max_problems=1000).problems)


def test_a_signed_regeneration_passes_the_rule(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    ingrid = env.actor("ingrid")
    batch, _ = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=6, search_path=str(code))
    assert not _regenerable(env.ws, batch.id).passed
    assert regenerate(env.ws, ingrid, batch.id, search_path=str(code)).ok
    env.ws.record(ingrid, "batch.verify", f"batch:{batch.id}", {"regenerated": True, "problems": []})
    assert _regenerable(env.ws, batch.id).passed


def test_forged_generation_statement_makes_no_batch_synthetic_proof(synth) -> None:  # type: ignore[no-untyped-def]
    from dataward.synthetic.api import regeneration_evidence

    env, _ = synth
    other = env.acquire("a,b\n1,2\n", source="gen")
    forge_entry(env.ws, "ingrid", "batch.generation", f"batch:{other}", {"batch": other, "source": "gen"})
    forge_entry(env.ws, "ingrid", "batch.verify", f"batch:{other}", {"regenerated": True})
    generated, verified = regeneration_evidence(env.ws, "gen")
    assert other not in generated and other not in verified


def test_coordinator_ignores_a_node_registered_by_sql(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dataward.core import dsse
    from dataward.federated.coordinator import Coordinator

    ws = Workspace.init(tmp_path / "coord", admin="coord")
    admin = ws.actor("coord")
    principals.grant_roles(ws, admin, "coord", [Grant(Role.TRAINER)])
    coord = Coordinator(ws, admin)
    pub = dsse.public_key_bytes(Ed25519PrivateKey.generate().public_key()).hex()
    details = {"name": "evil", "origin": "evil.example/log", "public_key": pub}
    forge_entry(ws, "coord", "federation.node.add", "node:evil", details)
    assert "evil" not in coord.nodes()
    ws.engine.dispose()
