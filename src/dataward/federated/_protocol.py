"""The federated protocol's trust logic (pure: no I/O; keys, notes and proofs are passed in)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import dsse
from dataward.core.checkpoint import Checkpoint, open_note, parse_signed_checkpoint
from dataward.core.merkle import InvalidProofError, verify_consistency
from dataward.errors import IntegrityError, SignatureError

UPDATE_PREDICATE = dsse.PREDICATE_PREFIX + "federated-update/v1"


class WitnessError(IntegrityError):
    """A node's log checkpoint does not extend what its peers saw before."""

    default_advice = "The node's log was rewound or forked: stop accepting its updates and investigate it."


class RewindError(WitnessError):
    """A node presented a checkpoint smaller than one it presented before."""


class ForkError(WitnessError):
    """A node presented a checkpoint that is not an append-only extension of one it presented before."""


@dataclass(frozen=True)
class NodeIdentity:
    """A node as the coordinator and its peers know it: its name, its log's origin and public key."""

    name: str
    origin: str
    log_key: Ed25519PublicKey

    @property
    def keyid(self) -> str:
        return dsse.key_id(self.log_key)

    def checkpoint(self, note: bytes) -> Checkpoint:
        """Parse ``note``, which must be signed by this node's log key for this node's origin."""
        return parse_signed_checkpoint(note, {self.origin: self.log_key}, origin=self.origin)


@dataclass(frozen=True)
class PeerView:
    """What one witness last saw of one node's log: size and root hash."""

    origin: str
    size: int
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size, "root": self.root_hash.hex()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PeerView:
        return cls(str(obj["origin"]), int(obj["size"]), bytes.fromhex(str(obj["root"])))


def witness_step(
    node: NodeIdentity, previous: PeerView | None, note: bytes, proof: Sequence[bytes]
) -> PeerView:
    """Check that ``note`` (signed by ``node``) extends ``previous``; return the new view to keep.

    Raises :class:`RewindError` when the log shrank, :class:`ForkError` when it is not an append-only
    extension (the consistency proof fails, or the same size now has another root).
    """
    cp = node.checkpoint(note)
    if previous is None:
        return PeerView(node.origin, cp.size, cp.root_hash)
    if cp.size < previous.size:
        raise RewindError(
            f"node {node.name}: log rewound from size {previous.size} to {cp.size}",
        )
    if cp.size == previous.size:
        if not hmac.compare_digest(cp.root_hash, previous.root_hash):
            raise ForkError(f"node {node.name}: two different logs of size {cp.size} (a fork)")
        return previous
    try:
        verify_consistency(previous.size, cp.size, previous.root_hash, cp.root_hash, proof)
    except InvalidProofError as exc:
        raise ForkError(
            f"node {node.name}: log of size {cp.size} does not extend the log of size {previous.size} it showed "
            f"before (a fork or a rewritten history: {exc.message})"
        ) from None
    return PeerView(node.origin, cp.size, cp.root_hash)


def witnesses_of(note: bytes, node: NodeIdentity, peers: Mapping[str, NodeIdentity]) -> list[str]:
    """Names of the peers (never the node itself) whose valid cosignature ``note`` carries."""
    out: list[str] = []
    for name, peer in sorted(peers.items()):
        if name == node.name or peer.origin == node.origin:
            continue
        try:
            open_note(note, {peer.origin: peer.log_key})
        except (IntegrityError, SignatureError, ValueError):
            continue
        out.append(name)
    return out


@dataclass(frozen=True)
class UpdateStatement:
    """A node's signed claim about one round: what it trained on and which update it sent."""

    round: int
    node: str
    update_sha256: str
    base_model_sha256: str
    trained_on: Mapping[str, str]  # DATASET@N -> Merkle root (in the node's own workspace)
    checkpoint: str  # the node's signed log checkpoint after recording the round (note text)

    def predicate(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "node": self.node,
            "update": {"sha256": self.update_sha256},
            "base_model": {"sha256": self.base_model_sha256},
            "trained_on": dict(sorted(self.trained_on.items())),
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_envelope(cls, env: dsse.Envelope, node: NodeIdentity) -> UpdateStatement:
        """Verify ``env`` against the node's log key and parse it; refuse anything else."""
        dsse.verify_envelope(env, {node.keyid: node.log_key})
        st = dsse.parse_statement(env)
        if st.predicate_type != UPDATE_PREDICATE:
            raise SignatureError(f"update of node {node.name} has predicate type {st.predicate_type!r}")
        p = st.predicate
        try:
            out = cls(
                int(p["round"]),
                str(p["node"]),
                str(p["update"]["sha256"]),
                str(p["base_model"]["sha256"]),
                {str(k): str(v) for k, v in dict(p["trained_on"]).items()},
                str(p["checkpoint"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"update statement of node {node.name} is malformed: {exc!r}") from None
        if out.node != node.name:
            raise SignatureError(f"update signed by node {node.name} claims to be from {out.node}")
        return out
