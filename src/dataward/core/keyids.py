"""Ed25519 key IDs: the raw public key bytes and the IDs dataward names keys by. Pure.

Their own module because both :mod:`dataward.core.signer` (a signer knows its key ID) and
:mod:`dataward.core.dsse` (envelopes name their signers' key IDs) need them, and the envelope module
builds on the signer.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dataward.core.canonical import canonical_json

__all__ = ["key_id", "legacy_key_id", "public_key_bytes"]


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The key ID dataward uses everywhere: securesystemslib's default key ID for an Ed25519 key.

    That is the hex SHA-256 of the canonical JSON ``{"keytype":"ed25519","keyval":{"public":HEX},
    "scheme":"ed25519"}`` (securesystemslib ``compute_default_keyid``).
    """
    desc = {"keytype": "ed25519", "keyval": {"public": public_key_bytes(key).hex()}, "scheme": "ed25519"}
    return hashlib.sha256(canonical_json(desc)).hexdigest()


def legacy_key_id(key: Ed25519PublicKey) -> str:
    """The key ID of dataward before 0.2 (hex SHA-256 of the raw key): still accepted as a signature hint."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()
