"""C2SP signed notes with Ed25519 keys, and C2SP tlog-checkpoints inside them.

Signed note (https://c2sp.org/signed-note): UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> <base64(4-byte key ID || signature)>``. The signature covers the text
including its final newline. Ed25519 key ID = first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public
key)``; a verifier key is written ``<name>+<8 hex key ID>+<base64(0x01 || public key)>``, as Go's
``golang.org/x/mod/sumdb/note`` does. Signatures by unknown keys are ignored; a note is accepted when at
least one known key's signature verifies and no known key's signature fails.

Checkpoint (https://c2sp.org/tlog-checkpoint): the note text is the log origin, the tree size in decimal
(no leading zeros), the base64 RFC 6962 root hash, then optional non-empty extension lines.

Every function here is pure: notes come in and go out as bytes. Malformed input raises
:class:`MalformedNoteError` / :class:`CheckpointFormatError` (``InputError``); signature problems raise
:class:`NoteSignatureError` (``SignatureError``); proof failures raise
:class:`~dataward.core.merkle.InvalidProofError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dataward.core.merkle import EMPTY_ROOT, HASH_SIZE, InvalidProofError, verify_consistency, verify_inclusion
from dataward.core.signer import SigningKey
from dataward.errors import InputError, IntegrityError, SignatureError

__all__ = [
    "ALG_ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "CheckpointFormatError",
    "MalformedNoteError",
    "Note",
    "NoteSignature",
    "NoteSignatureError",
    "NoteVerifier",
    "Verifiers",
    "cosign_note",
    "ed25519_key_id",
    "open_note",
    "parse_note",
    "parse_signed_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key_string",
    "verify_consistency_between",
    "verify_inclusion_against_checkpoint",
]

#: signature type identifier byte of Ed25519 in the signed-note spec
ALG_ED25519 = 0x01
#: largest note accepted, in bytes
MAX_NOTE_SIZE = 1 << 20
#: most signature lines accepted in one note (the spec requires at least 16; Go's note package allows 100)
MAX_SIGNATURES = 100
#: largest tree size a checkpoint may carry (int64, as the Go tlog parsers)
MAX_TREE_SIZE = (1 << 63) - 1

_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_PUBLIC_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_KEY_ID_SIZE = 4
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class MalformedNoteError(InputError):
    """A signed note is not well-formed (size, encoding, layout, signature lines, key text)."""

    default_advice = "Fetch the note again from its source; a note must be produced by a conforming signer."


class CheckpointFormatError(InputError):
    """A checkpoint body (origin, tree size, root hash, extension lines) is not well-formed."""

    default_advice = "Fetch the checkpoint again; its text must follow c2sp.org/tlog-checkpoint."


class NoteSignatureError(SignatureError):
    """A note has no valid signature by a known key, or a known key's signature on it fails."""


# ------------------------------------------------------------------------------------------ keys


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise InputError("note key name is empty: name the key, e.g. example.com/log")
    if "+" in name or any(ch.isspace() for ch in name) or _CONTROL.search(name):
        raise InputError(f"note key name {name!r} contains a space, '+' or control character")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_key_id(name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    raw = public_key if isinstance(public_key, bytes) else _raw_public(public_key)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + raw).digest()[:_KEY_ID_SIZE]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name and raw 32-byte public key."""

    name: str
    public_key_bytes: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if not isinstance(self.public_key_bytes, bytes) or len(self.public_key_bytes) != _ED25519_PUBLIC_SIZE:
            raise InputError(f"note key {self.name!r}: an Ed25519 public key is {_ED25519_PUBLIC_SIZE} bytes")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key_bytes)
        except ValueError as exc:
            raise InputError(f"note key {self.name!r}: not an Ed25519 public key ({exc})") from None
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key_bytes))
        object.__setattr__(self, "_key", key)

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        """Verifier for ``name`` from an Ed25519 public key; the key id is derived from name and key."""
        return cls(name, _raw_public(public_key))

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Verifier from its ``name+keyid+base64key`` text form; raises :class:`MalformedNoteError` if the text is
        malformed or the key id does not match.
        """
        return parse_verifier_key(text)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The Ed25519 public key this verifier checks against."""
        return self._key

    @property
    def label(self) -> str:
        """``name+hexid``, how errors name the key."""
        return f"{self.name}+{self.key_id.hex()}"

    def key_string(self) -> str:
        """The verifier key text ``name+hexid+base64(0x01 || public key)``."""
        material = base64.b64encode(bytes([ALG_ED25519]) + self.public_key_bytes).decode("ascii")
        return f"{self.label}+{material}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message``; a wrong length or bad signature gives
        False, never an exception.
        """
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def verifier_key_string(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key text for ``public_key`` under ``name`` (Go note format)."""
    return NoteVerifier.from_public_key(name, public_key).key_string()


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse ``name+hexid+base64(0x01 || public key)``; the key ID must match the name and key."""
    if not isinstance(text, str):
        raise MalformedNoteError("verifier key must be text of the form name+keyid+base64key")
    shown = text if len(text) <= 120 else text[:117] + "..."
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedNoteError(f"verifier key {shown!r} is not of the form name+keyid+base64key")
    name, hex_id, material = parts
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise MalformedNoteError(f"verifier key {shown!r}: key ID {hex_id!r} is not 8 hex digits")
    try:
        raw = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedNoteError(f"verifier key {shown!r}: key material is not valid base64") from None
    if not raw or raw[0] != ALG_ED25519:
        raise MalformedNoteError(f"verifier key {shown!r}: unsupported key type (only Ed25519, 0x01)")
    if len(raw) != 1 + _ED25519_PUBLIC_SIZE:
        raise MalformedNoteError(f"verifier key {shown!r}: Ed25519 key material has the wrong length")
    try:
        verifier = NoteVerifier(name, raw[1:])
    except InputError as exc:
        raise MalformedNoteError(f"verifier key {shown!r}: {exc}") from None
    if verifier.key_id != bytes.fromhex(hex_id):
        raise MalformedNoteError(f"verifier key {shown!r}: key ID does not match the name and public key")
    return verifier


#: what the verifying functions accept as trusted keys: one verifier, several, verifier key strings, or a
#: mapping of key name to Ed25519 public key
Verifiers = NoteVerifier | str | Iterable[NoteVerifier | str] | Mapping[str, Ed25519PublicKey]


def _verifier_index(verifiers: Verifiers) -> dict[tuple[str, bytes], NoteVerifier]:
    items: list[NoteVerifier]
    if isinstance(verifiers, NoteVerifier):
        items = [verifiers]
    elif isinstance(verifiers, str):
        items = [parse_verifier_key(verifiers)]
    elif isinstance(verifiers, Mapping):
        items = [NoteVerifier.from_public_key(name, key) for name, key in verifiers.items()]
    else:
        items = [parse_verifier_key(v) if isinstance(v, str) else v for v in verifiers]
    index: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in items:
        if not isinstance(v, NoteVerifier):
            raise InputError(f"trusted note keys must be NoteVerifier objects or key strings, got {type(v).__name__}")
        prior = index.setdefault((v.name, v.key_id), v)
        if prior != v:
            raise InputError(f"two different trusted keys share the name and key ID {v.label}: remove one")
    return index


# ----------------------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the raw signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def label(self) -> str:
        """``name+keyid-hex``, the form that names this signature's key in messages."""
        return f"{self.name}+{self.key_id.hex()}"

    def line(self) -> str:
        """The signature line of a signed note: em-dash prefix, key name, base64 of key id plus signature, newline."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note: its text, every signature line, and the keys that verified (after open_note)."""

    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[str, ...] = ()

    def text_bytes(self) -> bytes:
        """The note text as UTF-8, the exact bytes the signatures cover."""
        return self.text.encode("utf-8")


def _check_note_text(text: str, what: str) -> None:
    m = _CONTROL.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise MalformedNoteError(f"{what}: line {line} contains control character U+{ord(m.group()):04X}")


def _decode_note(note: bytes) -> str:
    if not isinstance(note, bytes | bytearray | memoryview):
        raise MalformedNoteError(f"a signed note must be bytes, got {type(note).__name__}")
    if len(note) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"signed note is {len(note)} bytes, over the {MAX_NOTE_SIZE}-byte limit")
    try:
        text = bytes(note).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNoteError(f"signed note is not valid UTF-8 (byte {exc.start})") from None
    _check_note_text(text, "signed note")
    return text


def _parse_signature_line(number: int, line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(f"signed note: signature line {number} does not start with an em dash and a space")
    parts = line[len(_SIG_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise MalformedNoteError(f"signed note: signature line {number} is not '— <key name> <base64 signature>'")
    name, blob = parts
    try:
        _check_key_name(name)
    except InputError as exc:
        raise MalformedNoteError(f"signed note: signature line {number}: {exc}") from None
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedNoteError(f"signed note: signature line {number} is not valid base64") from None
    if len(raw) <= _KEY_ID_SIZE:
        raise MalformedNoteError(f"signed note: signature line {number} is too short to hold a key ID and signature")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def parse_note(note: bytes) -> Note:
    """Split a signed note into text and signature lines, checking syntax only (no signature is verified)."""
    text = _decode_note(note)
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("signed note has no blank line between its text and its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise MalformedNoteError("signed note has no signature lines")
    if not block.endswith("\n"):
        raise MalformedNoteError("signed note does not end with a newline after its last signature")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"signed note has {len(lines)} signatures, over the limit of {MAX_SIGNATURES}")
    return Note(body, tuple(_parse_signature_line(i, line) for i, line in enumerate(lines, 1)))


def open_note(note: bytes, verifiers: Verifiers) -> Note:
    """Parse ``note`` and verify it against the trusted ``verifiers``.

    Unknown keys are ignored; a failing signature by a known key rejects the note; at least one known key
    must verify. Returns the note with ``verified_by`` listing the verifying keys as ``name+hexid``.
    """
    parsed = parse_note(note)
    index = _verifier_index(verifiers)
    message = parsed.text_bytes()
    verified: list[str] = []
    for sig in parsed.signatures:
        verifier = index.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(message, sig.signature):
            raise NoteSignatureError(f"signed note: the signature by known key {verifier.label} does not verify")
        if verifier.label not in verified:
            verified.append(verifier.label)
    if not verified:
        signers = ", ".join(sorted({s.label for s in parsed.signatures}))
        known = ", ".join(sorted(v.label for v in index.values())) or "none"
        raise NoteSignatureError(
            f"signed note has no signature by a trusted key (signed by {signers}; trusted: {known})"
        )
    return Note(parsed.text, parsed.signatures, tuple(verified))


def _to_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        return _decode_note(text)
    if not isinstance(text, str):
        raise MalformedNoteError(f"note text must be str or bytes, got {type(text).__name__}")
    return text


def _signature(text: str, name: str, private_key: SigningKey) -> NoteSignature:
    _check_key_name(name)
    key_id = ed25519_key_id(name, private_key.public_key())
    return NoteSignature(name, key_id, private_key.sign(text.encode("utf-8")))


def sign_note(text: str | bytes, name: str, private_key: SigningKey) -> bytes:
    """Sign ``text`` (which must end in a newline) with the Ed25519 key named ``name``; return the note."""
    body = _to_text(text)
    _check_note_text(body, "note text")
    if not body.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    note = (body + "\n" + _signature(body, name, private_key).line()).encode("utf-8")
    if len(note) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"signed note would be {len(note)} bytes, over the {MAX_NOTE_SIZE}-byte limit")
    return note


def cosign_note(note: bytes, name: str, private_key: SigningKey) -> bytes:
    """Add a signature by ``name`` to an existing signed note (e.g. a witness cosignature), keeping the others.

    An existing signature line with the same key name and ID is replaced. The existing signatures are not
    verified here: verify the note first with :func:`open_note`.
    """
    parsed = parse_note(note)
    new = _signature(parsed.text, name, private_key)
    kept = [s for s in parsed.signatures if (s.name, s.key_id) != (new.name, new.key_id)]
    if len(kept) + 1 > MAX_SIGNATURES:
        raise MalformedNoteError(f"signed note already has {len(kept)} signatures, the limit is {MAX_SIGNATURES}")
    out = (parsed.text + "\n" + "".join(s.line() for s in [*kept, new])).encode("utf-8")
    if len(out) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"signed note would be {len(out)} bytes, over the {MAX_NOTE_SIZE}-byte limit")
    return out


# ------------------------------------------------------------------------------------ checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A transparency log checkpoint: origin, tree size, RFC 6962 root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointFormatError("checkpoint origin is empty: name the log, e.g. example.com/log")
        if "\n" in self.origin or _CONTROL.search(self.origin):
            raise CheckpointFormatError(f"checkpoint origin {self.origin!r} contains a newline or control character")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointFormatError(f"checkpoint tree size {self.size!r} is not an integer in [0, 2**63)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        if isinstance(self.extensions, str):
            raise CheckpointFormatError("checkpoint extensions must be a sequence of lines, not one string")
        extensions = tuple(self.extensions)
        for line in extensions:
            if not isinstance(line, str) or not line or "\n" in line or _CONTROL.search(line):
                raise CheckpointFormatError(f"checkpoint extension line {line!r} is empty or has a newline")
        object.__setattr__(self, "extensions", extensions)

    def text(self) -> str:
        """The checkpoint body as signed: origin, size and base64 root hash, then any extension lines, each ending in a
        newline.
        """
        root = base64.b64encode(self.root_hash).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))

    def body(self) -> bytes:
        """The note text: origin, size, base64 root and extension lines, each ending in a newline."""
        return self.text().encode("utf-8")

    @classmethod
    def from_text(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint body strictly (canonical decimal size and canonical base64 root)."""
        body = _to_text(text)
        if not body.endswith("\n"):
            raise CheckpointFormatError("checkpoint text does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(f"checkpoint has {len(lines)} lines, needs origin, tree size and root hash")
        for number, line in enumerate(lines, 1):
            if not line:
                raise CheckpointFormatError(f"checkpoint line {number} is empty")
        origin, size_text, root_text, *extensions = lines
        if len(size_text) > 19 or not _DECIMAL.fullmatch(size_text):
            raise CheckpointFormatError(
                f"checkpoint tree size {size_text[:40]!r} is not a decimal number without leading zeros"
            )
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise CheckpointFormatError(f"checkpoint tree size {size_text} is over 2**63 - 1")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointFormatError(f"checkpoint root hash {root_text[:60]!r} is not valid base64") from None
        if len(root) != HASH_SIZE:
            raise CheckpointFormatError(f"checkpoint root hash is {len(root)} bytes, expected {HASH_SIZE}")
        if base64.b64encode(root).decode("ascii") != root_text:
            raise CheckpointFormatError("checkpoint root hash is not canonical base64")
        return cls(origin, size, root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: SigningKey) -> bytes:
    """The signed note text of ``checkpoint``, signed by the Ed25519 key named ``name``."""
    return sign_note(checkpoint.text(), name, private_key)


def parse_signed_checkpoint(note: bytes, verifiers: Verifiers, *, origin: str | None = None) -> Checkpoint:
    """Verify the signed note ``note`` against ``verifiers`` and parse its checkpoint body.

    With ``origin`` given, the checkpoint must be for that log.
    """
    opened = open_note(note, verifiers)
    checkpoint = Checkpoint.from_text(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise IntegrityError(
            f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}",
            advice="Check that the checkpoint comes from the log you meant to verify.",
        )
    return checkpoint


def verify_inclusion_against_checkpoint(
    note: bytes, verifier: Verifiers, leaf_hash: bytes, index: int, proof: Sequence[bytes]
) -> Checkpoint:
    """Standalone check that leaf ``index`` with ``leaf_hash`` is in the log a signed checkpoint commits to.

    Needs only the checkpoint note, the log's public key(s) and the inclusion proof. Returns the checkpoint.
    """
    checkpoint = parse_signed_checkpoint(note, verifier)
    verify_inclusion(leaf_hash, index, checkpoint.size, proof, checkpoint.root_hash)
    return checkpoint


def verify_consistency_between(
    old_note: bytes, new_note: bytes, verifier: Verifiers, proof: Sequence[bytes]
) -> tuple[Checkpoint, Checkpoint]:
    """Standalone check that the log of ``new_note`` extends the log of ``old_note`` (append-only).

    Both checkpoints must verify and name the same origin. A checkpoint of the empty tree is consistent with
    every later one (with an empty proof). Returns ``(old, new)``.
    """
    old = parse_signed_checkpoint(old_note, verifier)
    new = parse_signed_checkpoint(new_note, verifier, origin=old.origin)
    if new.size < old.size:
        raise InvalidProofError(
            f"log {old.origin!r} rolled back: new checkpoint size {new.size} is below the old size {old.size}"
        )
    if old.size == 0:
        if not hmac.compare_digest(old.root_hash, EMPTY_ROOT):
            raise InvalidProofError(f"log {old.origin!r}: checkpoint of size 0 does not carry the empty-tree root")
        if proof:
            raise InvalidProofError("consistency proof from the empty tree must be empty")
        return old, new
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    return old, new
