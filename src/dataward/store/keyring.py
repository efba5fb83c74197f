"""A person's own keyring: the private keys they act with, on their machine, never in a workspace.

The default keyring is the platformdirs user data dir (``~/.local/share/dataward/keyring`` on Linux);
``DATAWARD_KEYRING=DIR`` overrides it. The directory is 0700, each key a PKCS#8 PEM file of mode 0600
named ``KEYID.NAME.pem``, passphrase-encrypted unless generated for a service (``--no-passphrase``).
Loading refuses a key file or directory that others can read or write.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from dataward.core.dsse import key_id, legacy_key_id
from dataward.core.signer import Signer
from dataward.errors import AuthorizationError, InputError, SignatureError, storage_error
from dataward.model.keys import PublicKey

KEYRING_ENV = "DATAWARD_KEYRING"
PASSPHRASE_ENV = "DATAWARD_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
_HEX = frozenset("0123456789abcdef")


def default_keyring_path() -> Path:
    """``$DATAWARD_KEYRING`` if set, else the user data dir's ``keyring``."""
    env = os.environ.get(KEYRING_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("dataward")) / "keyring"


class PassphraseNeeded(SignatureError):
    """The key is encrypted and no passphrase was given (the CLI prompts on a terminal and retries)."""


@dataclass(frozen=True)
class KeyringEntry:
    """One private key in a keyring: its owner's name, key ID and file."""

    name: str
    keyid: str
    path: Path
    encrypted: bool


class FileSigner(Signer):
    """A Signer over a key loaded from a keyring file."""

    def __init__(self, key: Ed25519PrivateKey, name: str) -> None:
        self._key = key
        self._keyid = key_id(key.public_key())
        self.name = name

    @property
    def keyid(self) -> str:
        """The key ID of the key this signer signs with."""
        return self._keyid

    def public_key(self) -> Ed25519PublicKey:
        """The public half of the key."""
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the key read from the keyring file."""
        from dataward.core import ed25519  # libsodium when installed: same bytes, ~1.5x faster (ADR 0030)

        return ed25519.sign(self._key, data)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Signatures over each of ``messages``, the key prepared once for the batch."""
        from dataward.core import ed25519

        return ed25519.sign_many(self._key, messages)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), mode 0600, never over another file.

    A storage failure (read-only, permissions, disk full) is a StorageError naming the file; no temp is left."""
    tmp = path.with_name(f".{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise storage_error(str(path), exc, "write the private key file") from None
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails if path exists: a key is never silently replaced
    except FileExistsError:
        raise InputError(f"{path} already exists", advice="Keys are never overwritten; remove it first.") from None
    except OSError as exc:
        raise storage_error(str(path), exc, "write the private key file") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


class FileKeyring:
    """Private keys in a directory owned by one person (or one service)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_keyring_path()

    def __repr__(self) -> str:
        return f"FileKeyring({str(self.path)!r})"

    # writing ------------------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
        except OSError as exc:
            raise storage_error(str(self.path), exc, "create the keyring directory") from None

    def add(self, name: str, key: Ed25519PrivateKey, passphrase: bytes | None = None) -> KeyringEntry:
        """Store ``key`` for principal ``name`` (encrypted with ``passphrase`` when given)."""
        _check_name(name)
        self._ensure_dir()
        enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
        kid = key_id(key.public_key())
        f = self.path / f"{kid}.{name}.pem"
        write_private_file(f, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc))
        return KeyringEntry(name, kid, f, passphrase is not None)

    def generate(self, name: str, passphrase: bytes | None = None) -> tuple[KeyringEntry, PublicKey]:
        """A new Ed25519 key for ``name``; returns the entry and the public key to hand to an admin."""
        key = Ed25519PrivateKey.generate()
        return self.add(name, key, passphrase), PublicKey.of(key.public_key())

    def add_pem(self, name: str, pem: bytes, keyid: str) -> KeyringEntry:
        """Store an existing PKCS#8 PEM of key ``keyid`` as it is (still encrypted if it was): ``key migrate``."""
        _check_name(name)
        if b"PRIVATE KEY" not in pem:
            raise InputError(f"the key of {name} is not a PEM private key")
        if len(keyid) != 64 or not set(keyid) <= _HEX:
            raise InputError(f"{keyid[:70]!r} is not a key ID")
        self._ensure_dir()
        f = self.path / f"{keyid}.{name}.pem"
        write_private_file(f, pem)
        return KeyringEntry(name, keyid, f, b"ENCRYPTED" in pem)

    def remove(self, keyid: str) -> None:
        """Delete the key ``keyid`` (after rotation, once nothing needs to sign with it)."""
        for e in self.entries():
            if e.keyid == keyid:
                e.path.unlink()

    # reading ------------------------------------------------------------------------------------
    def entries(self, name: str | None = None) -> list[KeyringEntry]:
        """The keys in this keyring (of ``name`` only, when given), ordered by name then file age."""
        try:
            files = list(self.path.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:  # unreadable (permissions) or not a directory: say so, not "no key"
            raise storage_error(str(self.path), exc, "read the keyring directory") from None
        out = []
        for f in files:
            n = f.name
            if len(n) < 70 or not n.endswith(".pem") or n[64] != "." or not set(n[:64]) <= _HEX:
                continue
            owner = n[65:-4]
            if name is None or owner == name:
                try:
                    encrypted = b"ENCRYPTED" in f.read_bytes()
                except FileNotFoundError:  # removed meanwhile
                    continue
                except OSError as exc:  # an unreadable key is named, never silently "not in your keyring"
                    raise storage_error(str(f), exc, "read the private key file") from None
                out.append(KeyringEntry(owner, n[:64], f, encrypted))
        return sorted(out, key=lambda e: (e.name, e.path.stat().st_mtime_ns))

    def has(self, keyid: str) -> bool:
        """Whether this keyring holds the private key ``keyid``."""
        return any(e.keyid == keyid for e in self.entries())

    def signer(self, name: str, keyid: str | None = None, *, passphrase: bytes | None = None) -> FileSigner:
        """The Signer of ``name`` (its key ``keyid``, or its only/newest key). Raises if it is not here."""
        mine = [e for e in self.entries(name) if keyid is None or e.keyid == keyid]
        if not mine:
            held = [e for e in self.entries() if keyid is not None and e.keyid == keyid]
            what = f"the key {keyid[:16]} of {name!r}" if keyid else f"a key of {name!r}"
            extra = f" (it is filed under {held[0].name!r})" if held else ""
            raise NotInKeyringError(
                f"{what} is not in your keyring {self.path}{extra}",
                advice=f"Act as a principal whose key you hold (--as), or set {KEYRING_ENV} to the keyring that "
                "holds it; a new person runs `dataward key generate NAME` and hands the public key to an admin.",
            )
        entry = mine[-1]
        return FileSigner(self._load(entry, passphrase), entry.name)

    def _load(self, entry: KeyringEntry, passphrase: bytes | None) -> Ed25519PrivateKey:
        _check_private(self.path, is_dir=True)
        _check_private(entry.path, is_dir=False)
        try:
            pem = entry.path.read_bytes()
        except OSError as exc:
            raise storage_error(str(entry.path), exc, "read the private key file") from None
        if b"ENCRYPTED" in pem and passphrase is None:
            env = os.environ.get(PASSPHRASE_ENV)
            if env is None:
                raise PassphraseNeeded(
                    f"the key {entry.keyid[:16]} of {entry.name} is encrypted and no passphrase was given",
                    advice=f"Set {PASSPHRASE_ENV}, or run the command on a terminal to be asked.",
                )
            passphrase = env.encode()
        try:
            key = load_pem_private_key(pem, password=passphrase if b"ENCRYPTED" in pem else None)
        except (ValueError, TypeError):
            raise SignatureError(
                f"cannot decrypt the key {entry.keyid[:16]} of {entry.name}: wrong passphrase or damaged file",
                advice=f"Check {PASSPHRASE_ENV} or the passphrase you typed.",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"key file {entry.path} does not hold an Ed25519 key")
        if entry.keyid not in (key_id(key.public_key()), legacy_key_id(key.public_key())):
            raise SignatureError(f"key file {entry.path} holds another key than its name says")
        return key


class NotInKeyringError(AuthorizationError):
    """The caller's keyring does not hold the private key of the principal they want to act as (exit 4)."""


def _check_private(path: Path, *, is_dir: bool) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        what = "read the keyring directory" if is_dir else "read the private key file"
        raise storage_error(str(path), exc, what) from None
    if mode & 0o077:
        what = "keyring directory" if is_dir else "private key file"
        want = "700" if is_dir else "600"
        raise SignatureError(f"{what} {path} is open to others (mode {mode:o})", advice=f"Run: chmod {want} {path}")


def _check_name(name: str) -> None:
    if not name or len(name) > 128 or "/" in name or name.startswith(".") or not name.isprintable():
        raise InputError(f"principal name {name!r} cannot name a key file")
