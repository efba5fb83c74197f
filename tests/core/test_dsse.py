"""DSSE envelopes made by dataward must verify with the reference implementation (securesystemslib)."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from dataward.core import dsse
from dataward.errors import SignatureError


def _sslib_key(priv: Ed25519PrivateKey) -> SSlibKey:
    pub = priv.public_key()
    return SSlibKey(dsse.key_id(pub), "ed25519", "ed25519", {"public": dsse.public_key_bytes(pub).hex()})


def _envelope(priv: Ed25519PrivateKey) -> dsse.Envelope:
    stmt = dsse.make_statement([("a.csv", "00" * 32)], dsse.PREDICATE_MANIFEST, {"records": 3})
    return dsse.sign_envelope(stmt, priv)


def test_dataward_envelope_verifies_with_securesystemslib() -> None:
    priv = Ed25519PrivateKey.generate()
    env = _envelope(priv)
    ref = SslibEnvelope.from_dict(json.loads(env.to_bytes()))
    verified = ref.verify([_sslib_key(priv)], 1)
    assert list(verified) == [dsse.key_id(priv.public_key())]


def test_modified_payload_fails_with_securesystemslib_and_dataward() -> None:
    priv = Ed25519PrivateKey.generate()
    env = _envelope(priv)
    d = json.loads(env.to_bytes())
    payload = base64.b64decode(d["payload"]).replace(b'"records":3', b'"records":4')
    d["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(copy.deepcopy(d)).verify([_sslib_key(priv)], 1)
    with pytest.raises(SignatureError, match="does not verify"):
        dsse.verify_envelope(dsse.Envelope.from_dict(d), {dsse.key_id(priv.public_key()): priv.public_key()})


def test_securesystemslib_envelope_verifies_with_dataward() -> None:
    from securesystemslib.signer import CryptoSigner

    priv = Ed25519PrivateKey.generate()
    signer = CryptoSigner(priv, _sslib_key(priv))
    ref = SslibEnvelope(b'{"x":1}', dsse.INTOTO_PAYLOAD_TYPE, {})
    ref.sign(signer)
    env = dsse.Envelope.from_dict(ref.to_dict())
    assert dsse.verify_envelope(env, {dsse.key_id(priv.public_key()): priv.public_key()}) == [
        dsse.key_id(priv.public_key())
    ]


def test_untrusted_key_and_non_canonical_base64_are_refused() -> None:
    priv, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    env = _envelope(priv)
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        dsse.verify_envelope(env, {dsse.key_id(other.public_key()): other.public_key()})
    d = env.to_dict()
    sig = d["signatures"][0]["sig"]
    # flip the padding bits of the last base64 character: lenient decoders return the same bytes
    last = sig[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    d["signatures"][0]["sig"] = sig[:-3] + alphabet[alphabet.index(last) ^ 1] + sig[-2:]
    with pytest.raises(SignatureError):
        dsse.verify_envelope(dsse.Envelope.from_dict(d), {dsse.key_id(priv.public_key()): priv.public_key()})


def test_statement_round_trip() -> None:
    priv = Ed25519PrivateKey.generate()
    st = dsse.parse_statement(_envelope(priv))
    assert st.subjects == (("a.csv", "00" * 32),)
    assert st.predicate_type == dsse.PREDICATE_MANIFEST
    assert st.predicate == {"records": 3}
