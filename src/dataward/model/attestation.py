"""An attestation's index entry: which signed in-toto envelope says what about which subject. Pure (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attestation:
    """The catalog's index of one signed statement: its subject, predicate type, envelope digest and signer."""

    id: int
    batch_id: str | None
    subject: str
    predicate_type: str
    envelope_digest: str  # the envelope object in the meta area
    principal: str
    keyid: str
    created_at: str
