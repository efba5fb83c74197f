"""Who acts: an :class:`Actor` is a principal name plus the private key it signs with."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.core import ed25519
from dataward.core.dsse import key_id

#: the pseudo-principal whose key signs log checkpoints and records denied attempts
LOG_PRINCIPAL = "@workspace-log"


@dataclass(frozen=True)
class Actor:
    name: str
    key: Ed25519PrivateKey
    keyid: str

    @classmethod
    def of(cls, name: str, key: Ed25519PrivateKey) -> Actor:
        return cls(name, key, key_id(key.public_key()))

    def sign(self, data: bytes) -> bytes:
        return ed25519.sign(self.key, data)

    def __repr__(self) -> str:  # never print key material
        return f"Actor({self.name!r}, keyid={self.keyid[:16]})"
