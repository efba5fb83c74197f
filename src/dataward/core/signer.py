"""Who holds a private key: the :class:`Signer` interface.

All signing for principals goes through a Signer, so the private key can live anywhere its owner keeps
it: a file keyring today (``dataward.store.keyring``); a KMS, an HSM or ssh-agent can implement the same
three members later. Pure: no I/O here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dataward.core.keyids import key_id


class Signer(ABC):
    """An Ed25519 signing key whose private half stays with its holder."""

    @property
    @abstractmethod
    def keyid(self) -> str:
        """The key ID (see :func:`dataward.core.dsse.key_id`)."""

    @abstractmethod
    def public_key(self) -> Ed25519PublicKey:
        """The public half."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature over ``data``."""

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Signatures over each of ``messages``, in order (a holder that can sign in bulk overrides this)."""
        return [self.sign(m) for m in messages]

    def __repr__(self) -> str:  # never print key material
        return f"{type(self).__name__}(keyid={self.keyid[:16]})"


class PrivateKeySigner(Signer):
    """A Signer over a private key already in memory (the log key, offline signing, tests)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._keyid = key_id(key.public_key())

    @property
    def keyid(self) -> str:
        return self._keyid

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        from dataward.core import ed25519  # libsodium when installed: same bytes, ~1.5x faster (ADR 0030)

        return ed25519.sign(self._key, data)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Signatures over each of ``messages``, the key prepared once for the batch."""
        from dataward.core import ed25519

        return ed25519.sign_many(self._key, messages)


#: what signing functions accept: a Signer, or a bare private key (wrapped in a PrivateKeySigner)
SigningKey = Signer | Ed25519PrivateKey


def as_signer(key: SigningKey) -> Signer:
    """``key`` as a Signer."""
    return key if isinstance(key, Signer) else PrivateKeySigner(key)
