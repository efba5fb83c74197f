"""Helpers shared by the workflow modules: early authorization, reading signed attestations back."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from dataward.access import require
from dataward.core import dsse
from dataward.errors import AuthorizationError, SignatureError
from dataward.identity import Actor
from dataward.store import schema
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


def trusted_keys(ws: Workspace) -> dict[str, Any]:
    """keyid -> Ed25519 public key for every key that is not revoked."""
    with ws.engine.connect() as conn:
        rows = list(conn.execute(select(schema.keys)))
    return {r.keyid: dsse.public_key_from_hex(r.public_key) for r in rows if r.status != "revoked"}


def key_owner(ws: Workspace, keyid: str) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(schema.keys).where(schema.keys.c.keyid == keyid)).first()


def read_attestation(ws: Workspace, digest: str, predicate_type: str) -> tuple[dsse.Statement, str]:
    """Load, verify (signature by a registered, unrevoked key) and parse a stored attestation."""
    env = dsse.Envelope.from_bytes(ws.objects.read_bytes("meta", digest))
    good = dsse.verify_envelope(env, trusted_keys(ws))
    st = dsse.parse_statement(env)
    if st.predicate_type != predicate_type:
        raise SignatureError(f"attestation {digest[:16]} is a {st.predicate_type}, expected {predicate_type}")
    return st, good[0]


def read_json_object(ws: Workspace, digest: str) -> Any:
    return json.loads(ws.objects.read_bytes("meta", digest))
