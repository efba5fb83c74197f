"""Helpers shared by the workflow modules: early authorization, reading signed attestations back."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.access import require
from dataward.core import dsse
from dataward.errors import AuthorizationError, SignatureError
from dataward.identity import Actor
from dataward.model.keys import Key
from dataward.store import key_lookup
from dataward.workspace import Workspace


def authorize(ws: Workspace, actor: Actor, action: str, subject: str, source: str | None) -> None:
    """Check ``actor`` may take ``action`` before expensive work starts (denials are logged)."""
    with ws.engine.connect() as conn:
        grants = ws.grants(conn, actor.name)
    try:
        require(actor.name, grants, action, source)
    except AuthorizationError as exc:
        ws.record_denial(actor.name, action, subject, str(exc))
        raise


def trusted_keys(ws: Workspace) -> dict[str, Ed25519PublicKey]:
    """keyid -> Ed25519 public key for every key that is not revoked."""
    with ws.engine.connect() as conn:
        keys = key_lookup.registered_keys(conn)
    return {k.keyid: k.public_key.crypto() for k in keys if k.status != "revoked"}


def key_owner(ws: Workspace, keyid: str) -> Key | None:
    """The registered key ``keyid`` (its ``principal`` is who signed with it), or None."""
    with ws.engine.connect() as conn:
        return key_lookup.find_key(conn, keyid)


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
