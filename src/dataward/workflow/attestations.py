"""Helpers shared by the workflow modules: early authorization, reading signed attestations back."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import dsse
from dataward.errors import SignatureError
from dataward.identity import Actor
from dataward.store import keys_repo
from dataward.workspace import Workspace


def authorize(ws: Workspace, actor: Actor, action: str, subject: str, source: str | None) -> None:
    """Check ``actor`` may take ``action`` before expensive work starts (denials are logged)."""
    ws.authorize(actor.name, action, subject, source)


def trusted_keys(ws: Workspace) -> dict[str, Ed25519PublicKey]:
    """keyid -> Ed25519 public key for every key that is not revoked."""
    with ws.engine.connect() as conn:
        keys = keys_repo.key_records(conn)
    return {kid: dsse.public_key_from_hex(k.public_key) for kid, k in keys.items() if k.status != "revoked"}


def key_owner(ws: Workspace, keyid: str) -> str | None:
    """The principal key ``keyid`` is registered to (who signed with it), or None."""
    with ws.engine.connect() as conn:
        return keys_repo.key_owner(conn, keyid)


def read_attestation(ws: Workspace, digest: str, predicate_type: str) -> tuple[dsse.Statement, str]:
    """Load, verify (signature by a registered, unrevoked key) and parse a stored attestation."""
    env = dsse.Envelope.from_bytes(ws.objects.read_bytes("meta", digest))
    good = dsse.verify_envelope(env, trusted_keys(ws))
    st = dsse.parse_statement(env)
    if st.predicate_type != predicate_type:
        raise SignatureError(f"attestation {digest[:16]} is a {st.predicate_type}, expected {predicate_type}")
    return st, good[0]


def read_json_object(ws: Workspace, digest: str) -> Any:
    """The JSON document stored as the meta object ``digest`` (re-hashed against its name on read)."""
    return json.loads(ws.objects.read_bytes("meta", digest))
