"""The coordinator: registers nodes by their log keys, accepts witnessed rounds, traces incidents.

Everything the coordinator knows is in its own log (``federation.node.add`` and ``federation.round``
entries, read back from the signed entry bytes, not from a table) and in content-addressed objects the log
entries name by digest: node update statements, cosigned checkpoints, the updates themselves. It never
holds node data: an incident is traced through the updates, and a node that cooperates traces further
to its own batches (:func:`trace_batches`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dataward.core import dsse
from dataward.errors import InputError, IntegrityError, NotFoundError, SignatureError
from dataward.federated._model import local_update
from dataward.federated._protocol import NodeIdentity, UpdateStatement, witnesses_of
from dataward.identity import Actor
from dataward.workspace import Workspace

Array = npt.NDArray[np.float64]


def encode_update(update: Array) -> bytes:
    """A model update as .npy bytes (never pickled; read back with allow_pickle=False)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(update, dtype=np.float64), allow_pickle=False)
    return buf.getvalue()


def decode_update(data: bytes) -> Array:
    arr: Array = np.load(io.BytesIO(data), allow_pickle=False)
    return arr


@dataclass(frozen=True)
class Contribution:
    node: str
    update_sha256: str
    statement_sha256: str  # the node's signed update statement (object digest)
    checkpoint_sha256: str  # the node's checkpoint note with its peers' cosignatures (object digest)
    witnesses: tuple[str, ...]


@dataclass(frozen=True)
class RoundRecord:
    round: int
    model_sha256: str  # the aggregated model after this round
    base_model_sha256: str
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class NodeRank:
    node: str
    score: float  # how far the node's updates pushed the model toward the reported misbehaviour
    rounds: tuple[tuple[int, float], ...]  # per round: (round, score)


class Coordinator:
    """A coordinator over its own workspace; ``actor`` registers nodes (admin) and records rounds (trainer)."""

    def __init__(self, ws: Workspace, actor: Actor, *, witness_threshold: int = 1) -> None:
        if witness_threshold < 0:
            raise InputError("the witness threshold cannot be negative")
        self.ws = ws
        self.actor = actor
        self.witness_threshold = witness_threshold

    # registry, from the log ---------------------------------------------------------------------
    def _entries(self, action: str) -> list[dict[str, Any]]:
        """The valid signed entries of ``action``, through the evidence replay: each entry's signature, key
        validity at its time and its signer's role are checked now, so a row forged into the log table by
        SQL registers no node and records no round (not only at `log verify`)."""
        from dataward.evidence.load import trusted_state

        return [e for e in trusted_state(self.ws).entries if e["action"] == action]

    def register(self, node: NodeIdentity) -> None:
        """Register a node by its log origin and public key (logged; a name or origin is registered once)."""
        have = self.nodes()
        if node.name in have or any(n.origin == node.origin for n in have.values()):
            raise IntegrityError(f"node {node.name} (or its log {node.origin}) is already registered")
        with self.ws.change(self.actor, "federation.node.add", f"node:{node.name}") as ch:
            ch.details.update(
                {"name": node.name, "origin": node.origin, "public_key": dsse.public_key_bytes(node.log_key).hex()}
            )

    def nodes(self) -> dict[str, NodeIdentity]:
        out: dict[str, NodeIdentity] = {}
        for e in self._entries("federation.node.add"):
            d = e["details"]
            out[d["name"]] = NodeIdentity(d["name"], d["origin"], dsse.public_key_from_hex(d["public_key"]))
        return out

    # rounds ---------------------------------------------------------------------------------------
    def record_round(
        self,
        round_: int,
        contributions: Sequence[tuple[dsse.Envelope, bytes, bytes]],
        *,
        base_model_sha256: str,
        model: bytes,
    ) -> RoundRecord:
        """Accept a round: per node (signed update statement, cosigned checkpoint note, update bytes).

        Each statement must verify against its node's registered log key and be for this round and base;
        the update's digest must match; the checkpoint must be the one the statement names, signed by the
        node and cosigned by at least ``witness_threshold`` other registered nodes. Anything else refuses
        the whole round, naming the node.
        """
        nodes = self.nodes()
        accepted: list[Contribution] = []
        seen: set[str] = set()
        for env, note, update in contributions:
            signer = next((n for n in nodes.values() if any(s.keyid == n.keyid for s in env.signatures)), None)
            if signer is None:
                raise SignatureError(f"round {round_}: an update is signed by no registered node")
            st = UpdateStatement.from_envelope(env, signer)
            if st.node in seen:
                raise IntegrityError(f"round {round_}: node {st.node} contributed twice")
            seen.add(st.node)
            if st.round != round_ or st.base_model_sha256 != base_model_sha256:
                raise IntegrityError(f"node {st.node}: its statement is for round {st.round} on another base model")
            if hashlib.sha256(update).hexdigest() != st.update_sha256:
                raise IntegrityError(f"node {st.node}: the update does not match the digest it signed")
            signer.checkpoint(note)  # signed by the node itself
            if _note_text(note) != _note_text(st.checkpoint.encode("utf-8")):
                raise IntegrityError(f"node {st.node}: the witnessed checkpoint is not the one its statement names")
            witnesses = witnesses_of(note, signer, nodes)
            if len(witnesses) < self.witness_threshold:
                raise IntegrityError(
                    f"node {st.node}: checkpoint cosigned by {len(witnesses)} peer(s), "
                    f"the federation needs {self.witness_threshold}"
                )
            accepted.append(
                Contribution(
                    st.node,
                    st.update_sha256,
                    self.ws.objects.put_bytes("meta", env.to_bytes()),
                    self.ws.objects.put_bytes("meta", note),
                    tuple(witnesses),
                )
            )
            self.ws.objects.put_bytes("meta", update)
        model_sha = self.ws.objects.put_bytes("meta", model)
        rec = RoundRecord(round_, model_sha, base_model_sha256, tuple(accepted))
        with self.ws.change(self.actor, "federation.round", f"round:{round_}") as ch:
            ch.details.update(_round_json(rec))
        return rec

    def rounds(self) -> list[RoundRecord]:
        return [_round_from_json(e["details"]) for e in self._entries("federation.round")]

    # incidents ------------------------------------------------------------------------------------
    def trace(self, model_sha256: str, examples: Array, bad_labels: Sequence[int]) -> list[NodeRank]:
        """Rank nodes by how far their updates, over every round up to ``model_sha256``, pushed the
        reported ``examples`` toward the misbehaving labels (a linear model's logits: x . update)."""
        rounds = self.rounds()
        upto = next((i for i, r in enumerate(rounds) if r.model_sha256 == model_sha256), None)
        if upto is None:
            raise NotFoundError(f"no recorded round produced model {model_sha256[:16]}")
        x = np.asarray(examples, dtype=np.float64)
        y = np.asarray(bad_labels, dtype=np.int64)
        per_node: dict[str, list[tuple[int, float]]] = {}
        for r in rounds[: upto + 1]:
            for c in r.contributions:
                u = decode_update(self.ws.objects.read_bytes("meta", c.update_sha256))
                per_node.setdefault(c.node, []).append((r.round, push_toward(u, x, y)))
        ranks = [NodeRank(n, float(sum(s for _, s in v)), tuple(v)) for n, v in per_node.items()]
        return sorted(ranks, key=lambda r: (-r.score, r.node))


def push_toward(update: Array, x: Array, bad: npt.NDArray[np.int64]) -> float:
    """Mean margin an update (d+1, k: weights and bias) adds to the bad label over the other labels."""
    w = update[:-1]
    logits = x @ w + update[-1]
    own = logits[np.arange(len(bad)), bad]
    others = (logits.sum(axis=1) - own) / max(1, logits.shape[1] - 1)
    return float(np.mean(own - others))


def trace_batches(
    base: Array,
    batches: Mapping[str, tuple[Array, npt.NDArray[np.int64]]],
    examples: Array,
    bad: Sequence[int],
    *,
    lr: float = 0.5,
    epochs: int = 5,
) -> list[tuple[str, float]]:
    """Node side, when it cooperates: rank its own batches the same way, by the update each alone makes."""
    y = np.asarray(bad, dtype=np.int64)
    out = [
        (b, push_toward(local_update(base, xb, yb, lr=lr, epochs=epochs), examples, y))
        for b, (xb, yb) in batches.items()
    ]
    return sorted(out, key=lambda t: -t[1])


def _note_text(note: bytes) -> bytes:
    return note.split(b"\n\n", 1)[0]


def _round_json(r: RoundRecord) -> dict[str, Any]:
    return {
        "round": r.round,
        "model_sha256": r.model_sha256,
        "base_model_sha256": r.base_model_sha256,
        "contributions": [c.__dict__ | {"witnesses": list(c.witnesses)} for c in r.contributions],
    }


def _round_from_json(d: Mapping[str, Any]) -> RoundRecord:
    return RoundRecord(
        int(d["round"]),
        str(d["model_sha256"]),
        str(d["base_model_sha256"]),
        tuple(Contribution(**(c | {"witnesses": tuple(c["witnesses"])})) for c in d["contributions"]),
    )
