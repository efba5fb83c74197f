"""DSSE envelopes carrying in-toto Statement v1, signed with Ed25519.

Pure functions over bytes and key objects. The wire format is the one the reference implementation
(securesystemslib.dsse) reads: ``{"payload": b64, "payloadType": ..., "signatures": [{"keyid", "sig"}]}``.
Key IDs are securesystemslib's default key ID (the SHA-256 of the canonical JSON key description), so
its ``SSlibKey.from_crypto(public_key)`` verifies dataward's envelopes as they are. On reading, a keyid is
only a hint, as the DSSE spec says: an empty or unknown keyid is tried against every trusted key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core.canonical import canonical_json
from dataward.core.keyids import key_id as key_id  # re-exported: dsse.key_id is used everywhere
from dataward.core.keyids import legacy_key_id as legacy_key_id
from dataward.core.keyids import public_key_bytes as public_key_bytes
from dataward.core.signer import SigningKey as SigningKey  # re-exported: what signing functions accept
from dataward.core.signer import as_signer
from dataward.errors import InputError, SignatureError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_PREFIX = "https://dataward.dev/"

#: predicate types of dataward's own attestations
PREDICATE_MANIFEST = PREDICATE_PREFIX + "manifest/v1"
PREDICATE_SUPPLIER_MANIFEST = PREDICATE_PREFIX + "supplier-manifest/v1"


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"public key {text[:16]!r}... is not hex") from None
    if len(raw) != 32:
        raise InputError(f"public key {text[:16]!r}... is {len(raw)} bytes, an Ed25519 key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _b64decode_strict(text: str, what: str) -> bytes:
    # Strict and canonical: a byte changed in the encoding must never decode to the same bytes.
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError(f"envelope {what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise SignatureError(f"envelope {what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SignatureError(f"envelope is not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: Any) -> Envelope:
        if not isinstance(obj, dict):
            raise SignatureError("envelope is not a JSON object")
        payload = obj.get("payload")
        payload_type = obj.get("payloadType")
        sigs = obj.get("signatures")
        if not isinstance(payload, str) or not isinstance(payload_type, str) or not isinstance(sigs, list):
            raise SignatureError("envelope lacks payload, payloadType or signatures")
        parsed: list[Signature] = []
        for s in sigs:
            if not isinstance(s, dict) or not isinstance(s.get("sig"), str) or not isinstance(s.get("keyid"), str):
                raise SignatureError("envelope signature entry is malformed")
            parsed.append(Signature(s["keyid"], _b64decode_strict(s["sig"], "signature")))
        return cls(payload_type, _b64decode_strict(payload, "payload"), tuple(parsed))


def sign_envelope(payload: bytes, signer: SigningKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    """A DSSE envelope over ``payload`` signed by ``signer`` (a Signer or a private key)."""
    s = as_signer(signer)
    return Envelope(payload_type, payload, (Signature(s.keyid, s.sign(pae(payload_type, payload))),))


def add_signature(envelope: Envelope, signer: SigningKey) -> Envelope:
    """``envelope`` with one more signature, by ``signer``."""
    s = as_signer(signer)
    sig = s.sign(pae(envelope.payload_type, envelope.payload))
    return Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, Signature(s.keyid, sig)))


def verify_envelope(envelope: Envelope, trusted: Mapping[str, Ed25519PublicKey], *, threshold: int = 1) -> list[str]:
    """Verify ``envelope`` against ``trusted`` keys (keyid -> key); return the trusted key IDs that verified.

    A signature whose keyid names a trusted key (in the current or the legacy form) must verify with it, or
    the envelope was altered. Any other keyid (empty, another tool's form) is a hint only: the signature is
    tried against every trusted key. Raises :class:`SignatureError` unless at least ``threshold`` distinct
    trusted keys verify.
    """
    message = pae(envelope.payload_type, envelope.payload)
    good: list[str] = []
    for s in envelope.signatures:
        named = [kid for kid, pub in trusted.items() if _names(s.keyid, kid, pub)]
        for kid in named or list(trusted):
            if kid in good:
                continue
            try:
                trusted[kid].verify(s.sig, message)
            except InvalidSignature:
                if named:
                    raise SignatureError(
                        f"signature by key {kid[:16]} does not verify: the payload was altered"
                    ) from None
                continue
            good.append(kid)
            break
    if len(good) < threshold:
        if not envelope.signatures:
            raise SignatureError("envelope carries no signature")
        ids = ", ".join(s.keyid[:16] or "(no keyid)" for s in envelope.signatures)
        raise SignatureError(f"envelope is not signed by a trusted key (signed by {ids})")
    return good


def _names(hint: str, kid: str, pub: Ed25519PublicKey) -> bool:
    h = hint.encode()
    return bool(hint) and (hmac.compare_digest(h, kid.encode()) or hmac.compare_digest(h, legacy_key_id(pub).encode()))


def make_statement(subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: Any) -> bytes:
    """in-toto Statement v1 as canonical JSON; ``subjects`` are (name, sha256 hex) pairs."""
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


@dataclass(frozen=True)
class Statement:
    subjects: tuple[tuple[str, str], ...]
    predicate_type: str
    predicate: Any


def parse_statement(envelope: Envelope) -> Statement:
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"envelope payloadType is {envelope.payload_type!r}, expected an in-toto statement")
    try:
        obj = json.loads(envelope.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignatureError("statement is not valid JSON") from None
    if not isinstance(obj, dict) or obj.get("_type") != STATEMENT_TYPE:
        raise SignatureError("payload is not an in-toto Statement v1")
    subjects: list[tuple[str, str]] = []
    raw_subjects = obj.get("subject")
    if raw_subjects is None:
        raw_subjects = []
    if not isinstance(raw_subjects, list):
        raise SignatureError(f"statement subject is a {type(raw_subjects).__name__}, not a list of subjects")
    for s in raw_subjects:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not isinstance(s.get("digest"), dict):
            raise SignatureError("statement subject is malformed")
        digest = s["digest"].get("sha256")
        if not isinstance(digest, str):
            raise SignatureError(f"statement subject {s['name']!r} has no sha256 digest")
        subjects.append((s["name"], digest))
    ptype = obj.get("predicateType")
    if not isinstance(ptype, str):
        raise SignatureError("statement has no predicateType")
    return Statement(tuple(subjects), ptype, obj.get("predicate"))
