"""Ed25519 signing and verification through the fastest well-kept library installed (ADR 0030).

libsodium (through PyNaCl) verifies about 1.8x and signs about 1.5x faster than OpenSSL (through
cryptography) on this project's machines (benchmarks/speed.py measures both in one run). Keys stay
``cryptography`` objects everywhere else; only the two hot calls come here. Without PyNaCl both fall back
to cryptography (as does ``DATAWARD_ED25519=openssl``). Ed25519 is deterministic, so both libraries make
the same signature bytes, and every signature one accepts from an honest signer the other accepts too;
libsodium is the stricter of the two on crafted inputs (it refuses small-order public keys and
non-canonical encodings), which only refuses more forgeries. Pure: no I/O.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from types import ModuleType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["BACKEND", "sign", "sign_many", "verifier"]

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32


def _load_sodium() -> ModuleType | None:
    if os.environ.get("DATAWARD_ED25519") == "openssl":  # benchmarks compare both libraries in one run
        return None
    try:
        import nacl.bindings
        import nacl.exceptions  # crypto_sign_open raises its BadSignatureError
    except ImportError:
        return None
    return nacl.bindings


_sodium = _load_sodium()
#: the library in use: "libsodium" or "openssl"
BACKEND = "libsodium" if _sodium is not None else "openssl"

Verifier = Callable[[bytes, bytes], bool]


@functools.lru_cache(maxsize=64)
def _sodium_secret(seed: bytes) -> bytes:
    # libsodium's secret key is seed || public key; deriving the public key costs about one signature, so it
    # is done once per key (the cache lives in this process's memory, as the key object itself does)
    _public, secret = _sodium.crypto_sign_seed_keypair(seed)  # type: ignore[union-attr]
    return bytes(secret)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """The Ed25519 signature of ``message`` by ``key`` (64 bytes; identical whichever library makes it)."""
    if _sodium is None:
        return key.sign(message)
    signed = _sodium.crypto_sign(message, _sodium_secret(key.private_bytes_raw()))
    return bytes(signed[:SIGNATURE_SIZE])


def sign_many(key: Ed25519PrivateKey, messages: Sequence[bytes]) -> list[bytes]:
    """``[sign(key, m) for m in messages]`` with the key prepared once for the whole batch (deriving
    libsodium's secret key costs about one signature). Same bytes as :func:`sign`."""
    if _sodium is None:
        return [key.sign(m) for m in messages]
    secret = _sodium_secret(key.private_bytes_raw())
    crypto_sign = _sodium.crypto_sign
    return [bytes(crypto_sign(m, secret)[:SIGNATURE_SIZE]) for m in messages]


def verifier(public_key: bytes) -> Verifier:
    """A function ``check(signature, message) -> bool`` for the raw 32-byte Ed25519 ``public_key``.

    Raises ValueError if ``public_key`` is not 32 bytes (as ``Ed25519PublicKey.from_public_bytes`` does).
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    if _sodium is None:
        return _openssl_verifier(Ed25519PublicKey.from_public_bytes(public_key))
    sodium = _sodium
    pk = bytes(public_key)
    from nacl.exceptions import BadSignatureError

    def check(signature: bytes, message: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            sodium.crypto_sign_open(signature + message, pk)
        except BadSignatureError:
            return False
        return True

    return check


def openssl_verifier(public_key: bytes) -> Verifier:
    """The cryptography (OpenSSL) verifier, whatever :data:`BACKEND` is (tests and benchmarks compare both)."""
    return _openssl_verifier(Ed25519PublicKey.from_public_bytes(public_key))


def _openssl_verifier(pub: Ed25519PublicKey) -> Verifier:
    def check(signature: bytes, message: bytes) -> bool:
        try:
            pub.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return check
