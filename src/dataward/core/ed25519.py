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
from typing import Any

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


def _load_sodium_lib() -> tuple[Any, Any] | None:
    # PyNaCl's compiled cffi module: calling libsodium's crypto_sign on a reused output buffer skips the
    # wrapper's per-call allocation, checks and copy (about a quarter of a bare signature's CPU time for a
    # 330-byte log entry); any other layout of PyNaCl falls back to its public bindings
    if _sodium is None:
        return None
    try:
        from nacl._sodium import ffi, lib

        lib.crypto_sign  # noqa: B018 (present in every PyNaCl release that has the bindings used above)
    except (ImportError, AttributeError):
        return None
    return ffi, lib


_sodium_lib = _load_sodium_lib()
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
    if _sodium_lib is not None:
        return _sign_direct(_sodium_secret(key.private_bytes_raw()), (message,))[0]
    signed = _sodium.crypto_sign(message, _sodium_secret(key.private_bytes_raw()))
    return bytes(signed[:SIGNATURE_SIZE])


def sign_many(key: Ed25519PrivateKey, messages: Sequence[bytes]) -> list[bytes]:
    """``[sign(key, m) for m in messages]`` with the key prepared once for the whole batch (deriving
    libsodium's secret key costs about one signature). Same bytes as :func:`sign`."""
    if _sodium is None:
        return [key.sign(m) for m in messages]
    secret = _sodium_secret(key.private_bytes_raw())
    if _sodium_lib is None or not messages:
        crypto_sign = _sodium.crypto_sign
        return [bytes(crypto_sign(m, secret)[:SIGNATURE_SIZE]) for m in messages]
    return _sign_direct(secret, messages)


def _sign_direct(secret: bytes, messages: Sequence[bytes]) -> list[bytes]:
    # libsodium's combined mode writes signature || message; one buffer (sized for the longest message)
    # serves the whole batch, and only the 64 signature bytes are copied out of it
    ffi, lib = _sodium_lib  # type: ignore[misc]
    out = ffi.new("unsigned char[]", max(map(len, messages)) + SIGNATURE_SIZE)
    view = ffi.buffer(out)
    crypto_sign, null = lib.crypto_sign, ffi.NULL
    sigs: list[bytes] = []
    append = sigs.append
    for m in messages:
        if type(m) is not bytes:
            m = bytes(m)
        if crypto_sign(out, null, m, len(m), secret) != 0:
            raise RuntimeError("libsodium crypto_sign failed")
        append(view[:SIGNATURE_SIZE])
    return sigs


def verifier(public_key: bytes) -> Verifier:
    """A function ``check(signature, message) -> bool`` for the raw 32-byte Ed25519 ``public_key``.

    Raises ValueError if ``public_key`` is not 32 bytes (as ``Ed25519PublicKey.from_public_bytes`` does).
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    if _sodium is None:
        return _openssl_verifier(Ed25519PublicKey.from_public_bytes(public_key))
    pk = bytes(public_key)
    if _sodium_lib is not None:
        return _open_direct(pk)
    sodium = _sodium
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


#: output buffer size a verifier keeps for crypto_sign_open (log entries are a few hundred bytes; longer
#: messages get a buffer of their own)
_OPEN_BUFFER = 4096


def _open_direct(pk: bytes) -> Verifier:
    # libsodium's crypto_sign_open on a buffer kept by the verifier: PyNaCl's wrapper allocates two cffi
    # objects and copies the message out on every call (about 5% of a bare verification of a log entry).
    # The same libsodium check either way; what it writes to the buffer (the message) is never read, so
    # threads sharing a verifier cannot disturb each other's results.
    ffi, lib = _sodium_lib  # type: ignore[misc]
    out = ffi.new("unsigned char[]", _OPEN_BUFFER)
    out_len = ffi.new("unsigned long long *")
    crypto_sign_open = lib.crypto_sign_open

    def check(signature: bytes, message: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE:
            return False
        signed = bytes(signature) + message
        n = len(signed)
        buf = out if n <= _OPEN_BUFFER else ffi.new("unsigned char[]", n)
        return bool(crypto_sign_open(buf, out_len, signed, n, pk) == 0)

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
