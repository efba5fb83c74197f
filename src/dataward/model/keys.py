"""Public keys and registered keys.

A :class:`PublicKey` is an Ed25519 public key read from any of the forms people hand over: PEM
(SubjectPublicKeyInfo), an OpenSSH ``ssh-ed25519 AAAA... comment`` line, or 64 hex characters (the raw
32 bytes). Its key ID is securesystemslib's default key ID for the key, so envelopes dataward writes
verify with securesystemslib's default key handling (docs/adr/0012-keyrings-and-signers.md).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
    load_ssh_public_key,
)

from dataward.core.dsse import key_id
from dataward.errors import InputError

_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (the raw 32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise InputError(f"an Ed25519 public key has 32 bytes, not {len(self.raw)}")

    @classmethod
    def parse(cls, text: str | bytes, *, what: str = "public key") -> PublicKey:
        """Read PEM, OpenSSH (``ssh-ed25519 ...``) or 64 hex characters; ``what`` names the input in errors."""
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise InputError(f"{what} is not text (expected PEM, OpenSSH or hex)") from None
        s = text.strip()
        if "PRIVATE KEY" in s:
            raise InputError(
                f"{what} is a PRIVATE key",
                advice="Hand over only the public key (`dataward key export NAME` or the output of `key generate`).",
            )
        try:
            if s.startswith("-----BEGIN"):
                loaded = load_pem_public_key(s.encode("ascii"))
            elif s.startswith("ssh-"):
                loaded = load_ssh_public_key(s.encode("ascii"))
            elif len(s) == 64 and set(s) <= _HEX:
                return cls(bytes.fromhex(s))
            else:
                raise InputError(
                    f"{what} is neither PEM, an OpenSSH `ssh-ed25519` line, nor 64 hex characters",
                    advice="Pass the public key printed by `dataward key generate` or `dataward key export`.",
                )
        except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
            why = str(exc).splitlines()[0] if str(exc) else "malformed"
            raise InputError(f"{what} cannot be read: {why}") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise InputError(f"{what} is a {type(loaded).__name__.removeprefix('_')}, dataward uses Ed25519 keys")
        return cls.of(loaded)

    @classmethod
    def of(cls, key: Ed25519PublicKey) -> PublicKey:
        """Wrap a pyca/cryptography public key."""
        return cls(key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def keyid(self) -> str:
        """dataward's key ID (securesystemslib's default key ID)."""
        return key_id(self.crypto())

    def crypto(self) -> Ed25519PublicKey:
        """The pyca/cryptography key object."""
        return Ed25519PublicKey.from_public_bytes(self.raw)

    def hex(self) -> str:
        """The raw key as 64 hex characters (the catalog's form)."""
        return self.raw.hex()

    def pem(self) -> str:
        """SubjectPublicKeyInfo PEM."""
        return self.crypto().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def openssh(self, comment: str = "") -> str:
        """An ``ssh-ed25519 AAAA...`` line."""
        line = self.crypto().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
        return f"{line} {comment}".rstrip()


@dataclass(frozen=True)
class Key:
    """A key registered to a principal, with its validity over time."""

    keyid: str
    principal: str
    public_key: PublicKey
    status: str  # active | retired | revoked
    created_at: str
    expires_at: str | None = None
    retired_at: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True)
class KeyRecord:
    """A registered key as the catalog stores it, unchecked: ``public_key`` is the stored hex, which a
    tampered catalog may have replaced, so verifiers check it against ``keyid`` (:meth:`key` parses it)."""

    keyid: str
    principal: str
    public_key: str
    status: str  # active | retired | revoked
    created_at: str
    expires_at: str | None = None
    retired_at: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None

    def key(self) -> Key:
        """The key as a :class:`Key` (a stored public key that is not 32 bytes of hex raises)."""
        return Key(**{**vars(self), "public_key": PublicKey(bytes.fromhex(self.public_key))})
