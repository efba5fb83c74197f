"""Who acts: an :class:`Actor` is a principal name plus the :class:`~dataward.core.signer.Signer` it signs with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dataward.core.signer import Signer, SigningKey, as_signer

#: the pseudo-principal whose key signs log checkpoints and records denied attempts
LOG_PRINCIPAL = "@workspace-log"


@dataclass(frozen=True)
class Actor:
    """A principal acting with one of its registered keys (``keyid`` is the catalog's ID of that key)."""

    name: str
    key: Signer
    keyid: str

    @classmethod
    def of(cls, name: str, key: SigningKey) -> Actor:
        """``name`` acting with ``key`` (a Signer, or a private key held in memory)."""
        signer = as_signer(key)
        return cls(name, signer, signer.keyid)

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the actor's Signer."""
        return self.key.sign(data)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign each of ``messages`` with the actor's Signer (in bulk where the Signer can)."""
        return self.key.sign_many(messages)

    def __repr__(self) -> str:  # never print key material
        return f"Actor({self.name!r}, keyid={self.keyid[:16]})"
