"""Private keys on disk: PKCS#8 PEM, optionally passphrase-encrypted, files 0600 in a 0700 directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from dataward.core.dsse import key_id
from dataward.errors import InputError, NotFoundError, SignatureError, storage_error

PASSPHRASE_ENV = "DATAWARD_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


class KeyDirectory:
    """A directory of private keys (the workspace log's), one PKCS#8 PEM file per key ID, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, keyid: str) -> Path:
        if len(keyid) != 64 or any(c not in "0123456789abcdef" for c in keyid):
            raise InputError(f"{keyid[:70]!r} is not a key ID")
        return self.path / f"{keyid}.pem"

    def save(self, key: Ed25519PrivateKey, passphrase: bytes | None = None) -> str:
        """Write ``key`` atomically with mode 0600; returns its key ID."""
        enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc)
        kid = key_id(key.public_key())
        tmp = self.path / f".{secrets.token_hex(8)}.tmp"
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._file(kid))
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise storage_error(str(self._file(kid)), exc, "write the private key file") from None
        return kid

    def has(self, keyid: str) -> bool:
        """Whether the directory holds the private key ``keyid``."""
        return self._file(keyid).exists()

    def load(self, keyid: str, passphrase: bytes | None = None) -> Ed25519PrivateKey:
        """The private key ``keyid`` (decrypted with ``passphrase`` when it is encrypted)."""
        f = self._file(keyid)
        try:
            pem = f.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"private key {keyid[:16]} is not in {self.path}",
                advice="Act as a principal whose key is on this machine, or copy the key file here (mode 0600).",
            ) from None
        except OSError as exc:  # permissions on the file or its directory: name the file, not the key
            raise storage_error(str(f), exc, "read the private key file") from None
        try:
            mode = f.stat().st_mode & 0o777
        except OSError as exc:
            raise storage_error(str(f), exc, "read the private key file") from None
        if mode & 0o077:
            raise SignatureError(
                f"private key file {f} is readable by others (mode {mode:o})", advice=f"Run: chmod 600 {f}"
            )
        if passphrase is None and b"ENCRYPTED" in pem:
            env = os.environ.get(PASSPHRASE_ENV)
            if env is None:
                raise SignatureError(
                    f"private key {keyid[:16]} is encrypted and no passphrase was given",
                    advice=f"Set {PASSPHRASE_ENV} or pass --passphrase-prompt.",
                )
            passphrase = env.encode()
        try:
            key = load_pem_private_key(pem, password=passphrase)
        except (ValueError, TypeError):
            raise SignatureError(f"cannot decrypt private key {keyid[:16]}: wrong passphrase or damaged file") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"key file {f} does not hold an Ed25519 key")
        return key

    def remove(self, keyid: str) -> None:
        """Delete the private key ``keyid`` from the directory."""
        self._file(keyid).unlink(missing_ok=True)
