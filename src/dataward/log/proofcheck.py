"""Standalone checks of the proofs ``dataward log prove --json`` and ``log consistency --json`` print.

Needs only the proof JSON, the checkpoint(s) in it (or one the verifier kept) and the log's verifier key
(``dataward log key``): no workspace, no catalog. Uses only core.checkpoint's
``verify_inclusion_against_checkpoint`` and ``verify_consistency_between``, plus the leaf encoding of
:func:`dataward.log.auditlog.leaf_data` so that the entry in the proof is what the leaf commits to.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from dataward.core import merkle
from dataward.core.checkpoint import (
    Checkpoint,
    parse_verifier_key,
    verify_consistency_between,
    verify_inclusion_against_checkpoint,
)
from dataward.core.dsse import key_id, public_key_from_hex
from dataward.errors import InputError, SignatureError
from dataward.log.auditlog import leaf_data


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"proof field {what!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"proof field {what!r} is not valid base64") from None


def _note(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise InputError(f"proof field {what!r} must hold a signed checkpoint note")
    return value.encode("utf-8")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"proof field {what!r} must be a non-negative integer")
    return int(value)


def _hashes(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise InputError("proof field 'proof' must be a list of base64 hashes")
    return [_b64(h, "proof") for h in value]


def verify_proof(
    proof: Mapping[str, Any],
    log_key: str,
    *,
    old_checkpoint: bytes | None = None,
    signer_key: str | None = None,
) -> dict[str, Any]:
    """Verify an inclusion or consistency proof; returns what was proven, raises on any failure.

    ``log_key``: the log's verifier key string. ``old_checkpoint``: for a consistency proof, the checkpoint
    the verifier kept (default: the one in the proof). ``signer_key``: hex Ed25519 public key of the
    entry's principal, to check the entry's own signature too.
    """
    verifier = parse_verifier_key(log_key)
    if "index" in proof:
        index = _int(proof.get("index"), "index")
        note = _note(proof.get("checkpoint"), "checkpoint")
        leaf = _b64(proof.get("leaf_hash"), "leaf_hash")
        entry_text = proof.get("entry")
        result: dict[str, Any] = {"kind": "inclusion", "index": index}
        if entry_text:
            if not isinstance(entry_text, str):
                raise InputError("proof field 'entry' must be the entry's JSON text")
            entry = entry_text.encode("utf-8")
            sig = _b64(proof.get("signature"), "signature")
            computed = merkle.leaf_hash(leaf_data(entry, sig))
            if not hmac.compare_digest(computed, leaf):
                raise merkle.InvalidProofError("the entry and signature in the proof do not hash to its leaf hash")
            try:
                body = json.loads(entry)
            except json.JSONDecodeError:
                raise InputError("proof field 'entry' is not JSON") from None
            if not isinstance(body, dict) or body.get("seq") != index:
                raise merkle.InvalidProofError(f"the entry in the proof is not entry {index}")
            result["entry"] = body
            if signer_key:
                pub = public_key_from_hex(signer_key)
                if key_id(pub) != body.get("keyid"):
                    raise SignatureError(f"entry {index} was signed by key {str(body.get('keyid'))[:16]}, not this one")
                try:
                    pub.verify(sig, entry)
                except InvalidSignature:
                    raise SignatureError(f"entry {index}: the principal's signature does not verify") from None
                result["entry_signature"] = "verified"
        cp = verify_inclusion_against_checkpoint(note, verifier, leaf, index, _hashes(proof.get("proof")))
        result.update({"tree_size": cp.size, "root": cp.root_hash.hex(), "origin": cp.origin})
        return result
    if "size1" in proof:
        new = proof.get("new_checkpoint") or proof.get("checkpoint")
        old = old_checkpoint if old_checkpoint is not None else _note(proof.get("old_checkpoint"), "old_checkpoint")
        old_cp, new_cp = verify_consistency_between(
            old, _note(new, "new_checkpoint"), verifier, _hashes(proof.get("proof"))
        )
        _same_sizes(proof, old_cp, new_cp)
        return {
            "kind": "consistency",
            "origin": old_cp.origin,
            "size1": old_cp.size,
            "size2": new_cp.size,
            "root1": old_cp.root_hash.hex(),
            "root2": new_cp.root_hash.hex(),
        }
    raise InputError("not a dataward log proof: it has neither 'index' (inclusion) nor 'size1' (consistency)")


def _same_sizes(proof: Mapping[str, Any], old: Checkpoint, new: Checkpoint) -> None:
    s1, s2 = proof.get("size1"), proof.get("size2")
    if (s1 is not None and s1 != old.size) or (s2 is not None and s2 != new.size):
        raise InputError(
            f"the proof is for sizes {s1} -> {s2} but the checkpoints are of sizes {old.size} -> {new.size}",
            advice="Give the checkpoint you kept for the old size (--old-checkpoint), or a proof from that size.",
        )
