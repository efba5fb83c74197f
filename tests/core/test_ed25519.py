"""The fast Ed25519 path (libsodium through PyNaCl) against cryptography (OpenSSL) as the oracle."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.core import ed25519

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes_raw()


@settings(max_examples=100, deadline=None)
@given(message=st.binary(max_size=600))
def test_signatures_identical_to_cryptography(message: bytes) -> None:
    sig = ed25519.sign(KEY, message)
    assert sig == KEY.sign(message)  # Ed25519 is deterministic: same key and message, same bytes
    assert ed25519.verifier(PUBLIC)(sig, message)


@settings(max_examples=100, deadline=None)
@given(message=st.binary(min_size=1, max_size=300), where=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_tampering_refused_like_openssl(message: bytes, where: int, bit: int) -> None:
    sig = KEY.sign(message)
    fast, oracle = ed25519.verifier(PUBLIC), ed25519.openssl_verifier(PUBLIC)
    bad_sig = bytearray(sig)
    bad_sig[where % 64] ^= 1 << bit
    bad_msg = bytearray(message)
    bad_msg[where % len(message)] ^= 1 << bit
    for s, m in ((bytes(bad_sig), message), (sig, bytes(bad_msg)), (sig[:63], message), (sig + b"\0", message)):
        assert not fast(s, m)
        assert not oracle(s, m)


def test_other_key_refused_and_bad_key_length() -> None:
    other = Ed25519PrivateKey.generate()
    sig = other.sign(b"entry")
    assert not ed25519.verifier(PUBLIC)(sig, b"entry")
    with pytest.raises(ValueError):
        ed25519.verifier(PUBLIC[:31])
    # 32 bytes that are no curve point (or a small-order one) never verify a signature
    for junk in (b"\xff" * 32, b"\x01" + b"\x00" * 31, os.urandom(32)):
        assert not ed25519.verifier(junk)(sig, b"entry")


def test_backend_is_libsodium_when_pynacl_installed() -> None:
    try:
        import nacl  # noqa: F401
    except ImportError:
        assert ed25519.BACKEND == "openssl"
    else:
        assert ed25519.BACKEND == "libsodium"


@pytest.mark.parametrize("n", [0, 1, 5, 300])
def test_sign_many_identical_and_in_order(n: int) -> None:
    # one prepared key for the batch: the same bytes as one-by-one signing, in order, each checked by OpenSSL
    messages = [os.urandom(i % 50) + i.to_bytes(4, "big") for i in range(n)]
    sigs = ed25519.sign_many(KEY, messages)
    assert sigs == [KEY.sign(m) for m in messages]
    oracle = ed25519.openssl_verifier(PUBLIC)
    assert all(oracle(s, m) for s, m in zip(sigs, messages, strict=True))


def test_signers_sign_many_like_sign() -> None:
    from dataward.core.signer import PrivateKeySigner
    from dataward.identity import Actor

    actor = Actor.of("p", PrivateKeySigner(KEY))
    messages = [b"m%d" % i for i in range(300)]
    assert actor.sign_many(messages) == [actor.sign(m) for m in messages]
