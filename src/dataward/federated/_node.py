"""A federated node: a workspace that records its rounds in its own log and witnesses its peers' logs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from dataward.core import dsse
from dataward.core.checkpoint import cosign_note
from dataward.federated._protocol import UPDATE_PREDICATE, NodeIdentity, PeerView, UpdateStatement, witness_step
from dataward.log import auditlog
from dataward.log.query import prove_consistency
from dataward.log.witness import current_checkpoint
from dataward.store.catalog import write_transaction
from dataward.workspace import Workspace


class Node:
    """One federated node over its workspace. Its identity is its log's origin and public key."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.ws = ws
        self.name = name
        self._views_path = ws.path / "federation" / "peers.json"

    @property
    def identity(self) -> NodeIdentity:
        """The node's public identity: name, log origin and log public key."""
        return NodeIdentity(self.name, self.ws.origin, self.ws.log_public_key())

    # the node's own rounds --------------------------------------------------------------------
    def _append(self, action: str, subject: str, details: dict[str, object]) -> None:
        log = self.ws.log_actor()
        with write_transaction(self.ws.engine) as conn:
            auditlog.append(
                conn, [auditlog.PendingEntry(log, action, subject, details)], log_key=log, origin=self.ws.origin
            )

    def checkpoint(self) -> bytes:
        """The node's latest signed log checkpoint (note text)."""
        cur = current_checkpoint(self.ws)
        if cur is None:
            raise LookupError(f"node {self.name} has no log checkpoint yet")
        return cur[1]

    def consistency_from(self, size: int) -> list[bytes]:
        """A consistency proof from ``size`` to the latest checkpoint (what a witness asks for)."""
        cur = current_checkpoint(self.ws)
        if cur is None or size == 0 or size >= cur[0].size:
            return []
        return list(prove_consistency(self.ws, size, cur[0].size).proof)

    def sign_update(
        self, round_: int, update: bytes, base_model_sha256: str, trained_on: Mapping[str, str]
    ) -> dsse.Envelope:
        """Record the round in the node's log, then sign the update statement naming the checkpoint after it."""
        digest = hashlib.sha256(update).hexdigest()
        self._append(
            "federation.train",
            f"round:{round_}",
            {"update_sha256": digest, "base_model_sha256": base_model_sha256, "trained_on": dict(trained_on)},
        )
        st = UpdateStatement(round_, self.name, digest, base_model_sha256, dict(trained_on),
                             self.checkpoint().decode("utf-8"))
        payload = dsse.make_statement([(f"update:{self.name}:{round_}", digest)], UPDATE_PREDICATE, st.predicate())
        return dsse.sign_envelope(payload, self.ws.log_actor().key)

    # witnessing peers ---------------------------------------------------------------------------
    def _views(self) -> dict[str, PeerView]:
        try:
            raw = json.loads(self._views_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {k: PeerView.from_json(v) for k, v in raw.items()}

    def _save_views(self, views: Mapping[str, PeerView]) -> None:
        self._views_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._views_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v.to_json() for k, v in views.items()}, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._views_path)

    def last_seen(self, peer: str) -> PeerView | None:
        """What this node last witnessed of ``peer``'s log, or ``None`` if it never has."""
        return self._views().get(peer)

    def witness(self, peer: NodeIdentity, note: bytes, proof: Sequence[bytes]) -> bytes:
        """Check ``note`` extends what this node saw of ``peer`` (else Rewind/ForkError), cosign it, log it."""
        views = self._views()
        try:
            view = witness_step(peer, views.get(peer.name), note, proof)
        except Exception as exc:
            self._append("federation.witness", f"node:{peer.name}", {"refused": str(exc)})
            raise
        views[peer.name] = view
        self._save_views(views)
        self._append("federation.witness", f"node:{peer.name}", {"size": view.size, "root": view.root_hash.hex()})
        return cosign_note(note, self.ws.origin, self.ws.log_actor().key)

    def witness_peer(self, peer: Node, note: bytes | None = None) -> bytes:
        """Witness ``peer``'s current checkpoint (or ``note``), asking it for the proof it owes."""
        note = note if note is not None else peer.checkpoint()
        seen = self.last_seen(peer.name)
        return self.witness(peer.identity, note, peer.consistency_from(seen.size if seen else 0))


def load_views_path(ws: Workspace) -> Path:
    """File in the workspace where a node keeps its views of its peers' logs."""
    return ws.path / "federation" / "peers.json"
