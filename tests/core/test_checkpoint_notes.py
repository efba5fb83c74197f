"""C2SP signed notes and tlog-checkpoints: published vectors, round trips, tampering and malformed input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.core import checkpoint as c
from dataward.core.merkle import EMPTY_ROOT, InvalidProofError, MerkleTree
from dataward.errors import InputError, IntegrityError, SignatureError

# --- golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen, TestNewVerifier) ----------------------
PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# --- a real checkpoint signed by sum.golang.org, and the verifier key the Go toolchain pins -------------
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n65664258\nWVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=\n\n"
    "\u2014 sum.golang.org "
    "Az3grligJmgX7KGyGPKybykNTh3VgsbLvUuvOwrM5zLVlulmFp2wdvbxOw74/gcNxURShXEpb7RXcs3+BYflYN+w0gQ=\n"
).encode()


def _go_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SIGNER.split("+", 4)[4])
    assert raw[0] == c.ALG_ED25519
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_sign_reproduces_go_note_byte_for_byte() -> None:
    key = _go_private_key()
    assert c.sign_note(GO_TEXT, "PeterNeumann", key) == (GO_TEXT + "\n" + PETER_SIG).encode()
    assert c.verifier_key_string("PeterNeumann", key.public_key()) == PETER_KEY
    assert c.ed25519_key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"


def test_key_id_derivation_follows_the_spec() -> None:
    verifier = c.parse_verifier_key(SUMDB_KEY)
    raw = verifier.public_key_bytes
    assert verifier.key_id == hashlib.sha256(b"sum.golang.org\n\x01" + raw).digest()[:4]
    assert verifier.key_id.hex() == "033de0ae" and verifier.key_string() == SUMDB_KEY
    assert c.parse_verifier_key(ENOCH_KEY).label == "EnochRoot+af0cfe78"


def test_real_sum_golang_org_checkpoint_verifies() -> None:
    cp = c.parse_signed_checkpoint(SUMDB_NOTE, SUMDB_KEY)
    assert cp.origin == "go.sum database tree" and cp.size == 65664258 and cp.extensions == ()
    assert cp.root_hash == base64.b64decode("WVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=")
    assert cp.body() == SUMDB_NOTE.split(b"\n\n")[0] + b"\n"
    for old, new in ((b"65664258", b"65664259"), (b"WVVN", b"WVVM"), (b"go.sum", b"go.sun")):
        with pytest.raises(c.NoteSignatureError, match="does not verify"):
            c.parse_signed_checkpoint(SUMDB_NOTE.replace(old, new), SUMDB_KEY)
    with pytest.raises(c.NoteSignatureError, match="no signature by a trusted key"):
        c.parse_signed_checkpoint(SUMDB_NOTE, PETER_KEY)


def test_open_follows_go_semantics() -> None:
    both = (GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    note = c.open_note(both, PETER_KEY)
    assert note.text == GO_TEXT and note.verified_by == ("PeterNeumann+c74f20a3",)
    assert [s.label for s in note.signatures] == ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    assert c.open_note(both, [PETER_KEY, ENOCH_KEY]).verified_by == ("PeterNeumann+c74f20a3", "EnochRoot+af0cfe78")
    with pytest.raises(c.NoteSignatureError, match="no signature by a trusted key"):
        c.open_note(both, [])
    # a known key whose signature fails rejects the note, even when another known key verifies
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(c.NoteSignatureError, match="PeterNeumann\\+c74f20a3 does not verify"):
        c.open_note((GO_TEXT + "\n" + bad + ENOCH_SIG).encode(), [PETER_KEY, ENOCH_KEY])
    # an unknown key's broken signature is ignored
    enoch_bad = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    dup = (GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + enoch_bad).encode()
    assert c.open_note(dup, PETER_KEY).verified_by == ("PeterNeumann+c74f20a3",)
    with pytest.raises(c.MalformedNoteError, match="over the limit"):
        c.open_note((GO_TEXT + "\n" + PETER_SIG * 101).encode(), PETER_KEY)
    assert len(c.open_note((GO_TEXT + "\n" + PETER_SIG * 16).encode(), PETER_KEY).signatures) == 16


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv=\n",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),
        GO_TEXT + "\n" + "\u2014 PeterNeumann not*base64\n",
        GO_TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",
        GO_TEXT
        + "\n"
        + "\u2014 a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        GO_TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
    ],
)
def test_malformed_notes_are_rejected(message: str) -> None:
    with pytest.raises(c.MalformedNoteError) as info:
        c.open_note(message.encode(), PETER_KEY)
    assert "\n" not in str(info.value)


def test_note_size_and_encoding_limits() -> None:
    with pytest.raises(c.MalformedNoteError, match="not valid UTF-8"):
        c.open_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(), PETER_KEY)
    big = ("x" * 80 + "\n") * (c.MAX_NOTE_SIZE // 81 + 1)
    with pytest.raises(c.MalformedNoteError, match="byte limit"):
        c.open_note((big + "\n" + PETER_SIG).encode(), PETER_KEY)
    with pytest.raises(c.MalformedNoteError, match="control character U\\+0009"):
        c.parse_note(b"tab\there\n\n" + PETER_SIG.encode())
    with pytest.raises(c.MalformedNoteError, match="must be bytes"):
        c.parse_note("text")  # type: ignore[arg-type]


def test_mangled_verifier_keys_are_rejected() -> None:
    """As Go's TestNewVerifier: every proper substring and every single-byte change fails."""
    assert c.parse_verifier_key(PETER_KEY).name == "PeterNeumann"
    b = PETER_KEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(InputError):
                    c.parse_verifier_key(b[i:j].decode())
    for i in range(len(b)):
        mangled = bytearray(b)
        mangled[i] += 1
        with pytest.raises(InputError):
            c.parse_verifier_key(mangled.decode())
    # wrong key length and unknown algorithm, each with an adjusted key ID
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(c.MalformedNoteError):
            c.parse_verifier_key(bad)


# ------------------------------------------------------------------------------------ checkpoints


ORIGIN = "dataward.example/audit"


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _cp(size: int = 5, extensions: tuple[str, ...] = ()) -> c.Checkpoint:
    return c.Checkpoint(ORIGIN, size, MerkleTree.from_data([b"%d" % i for i in range(size)]).root(), extensions)


def test_checkpoint_round_trip(key: Ed25519PrivateKey) -> None:
    cp = _cp(5, ("ext one", "x"))
    root = base64.b64encode(cp.root_hash).decode()
    assert cp.body() == f"{ORIGIN}\n5\n{root}\next one\nx\n".encode()
    note = c.sign_checkpoint(cp, ORIGIN, key)
    assert note.startswith(cp.body() + "\n\u2014 dataward.example/audit ".encode())
    assert note.endswith(b"\n") and note.count(b"\n\n") == 1
    assert c.parse_signed_checkpoint(note, {ORIGIN: key.public_key()}) == cp
    assert c.parse_signed_checkpoint(note, c.NoteVerifier.from_public_key(ORIGIN, key.public_key())) == cp
    assert c.parse_signed_checkpoint(note, c.verifier_key_string(ORIGIN, key.public_key()), origin=ORIGIN) == cp
    with pytest.raises(IntegrityError, match="expected 'other'"):
        c.parse_signed_checkpoint(note, {ORIGIN: key.public_key()}, origin="other")
    empty = c.Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert c.parse_signed_checkpoint(c.sign_checkpoint(empty, ORIGIN, key), {ORIGIN: key.public_key()}) == empty


def test_tampered_checkpoints_fail(key: Ed25519PrivateKey) -> None:
    cp = _cp(5)
    note = c.sign_checkpoint(cp, ORIGIN, key)
    trusted = {ORIGIN: key.public_key()}
    root_b64 = base64.b64encode(cp.root_hash)
    other_root = base64.b64encode(_cp(6).root_hash)
    for old, new in ((b"\n5\n", b"\n6\n"), (root_b64, other_root), (b"dataward.example", b"dataward.exampl3")):
        with pytest.raises(c.NoteSignatureError, match="does not verify"):
            c.parse_signed_checkpoint(note.replace(old, new, 1), trusted)
    sig_line = note.rsplit(b"\n", 2)[1]
    blob = bytearray(base64.b64decode(sig_line.split(b" ")[-1]))
    blob[10] ^= 1
    forged = note.replace(sig_line.split(b" ")[-1], base64.b64encode(bytes(blob)))
    with pytest.raises(c.NoteSignatureError):
        c.parse_signed_checkpoint(forged, trusted)
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(c.NoteSignatureError, match="no signature by a trusted key"):
        c.parse_signed_checkpoint(note, {ORIGIN: stranger.public_key()})
    # same name, other key: a different key ID, so the note's signature is simply unknown
    assert c.NoteVerifier.from_public_key(ORIGIN, stranger.public_key()).key_id != c.ed25519_key_id(
        ORIGIN, key.public_key()
    )
    assert issubclass(c.NoteSignatureError, SignatureError)


def test_cosigned_note_verifies_with_either_key(key: Ed25519PrivateKey) -> None:
    witness = Ed25519PrivateKey.generate()
    note = c.sign_checkpoint(_cp(7), ORIGIN, key)
    cosigned = c.cosign_note(note, "witness.example", witness)
    assert c.cosign_note(cosigned, "witness.example", witness) == cosigned  # replaces, does not repeat
    assert c.parse_signed_checkpoint(cosigned, {"witness.example": witness.public_key()}) == _cp(7)
    opened = c.open_note(cosigned, {ORIGIN: key.public_key(), "witness.example": witness.public_key()})
    assert len(opened.verified_by) == 2
    with pytest.raises(InputError, match="two different trusted keys"):
        c.open_note(note, [c.NoteVerifier.from_public_key(ORIGIN, key.public_key()), _same_id_other_key(key)])


def _same_id_other_key(key: Ed25519PrivateKey) -> c.NoteVerifier:
    """A NoteVerifier sharing name and key ID with ``key`` but holding another public key (forged on purpose)."""
    other = c.NoteVerifier.from_public_key(ORIGIN, Ed25519PrivateKey.generate().public_key())
    object.__setattr__(other, "key_id", c.ed25519_key_id(ORIGIN, key.public_key()))
    return other


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (f"{ORIGIN}\n05\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "leading zeros"),
        (f"{ORIGIN}\n+5\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "decimal"),
        (f"{ORIGIN}\n 5\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "decimal"),
        (f"{ORIGIN}\n\u0665\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "decimal"),
        (f"{ORIGIN}\n-1\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "decimal"),
        (f"{ORIGIN}\n{1 << 63}\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "2\\*\\*63"),
        (f"{ORIGIN}\n{'9' * 5000}\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "decimal"),
        (f"{ORIGIN}\n5\n{base64.b64encode(EMPTY_ROOT[:31]).decode()}\n", "31 bytes, expected 32"),
        (f"{ORIGIN}\n5\n{EMPTY_ROOT.hex()}\n", "bytes, expected 32|base64"),
        (f"{ORIGIN}\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n", "canonical"),
        (f"{ORIGIN}\n5\n{base64.urlsafe_b64encode(bytes([251] * 32)).decode()}\n", "base64"),
        (f"{ORIGIN}\n5\n", "needs origin, tree size and root hash"),
        (f"\n5\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "line 1 is empty"),
        (f"{ORIGIN}\n5\n{base64.b64encode(EMPTY_ROOT).decode()}\n\nextension\n", "line 4 is empty"),
        (f"{ORIGIN}\n5\n{base64.b64encode(EMPTY_ROOT).decode()}", "newline"),
    ],
)
def test_malformed_checkpoint_bodies(body: str, reason: str) -> None:
    with pytest.raises(c.CheckpointFormatError, match=reason) as info:
        c.Checkpoint.from_text(body)
    assert "\n" not in str(info.value)


def test_checkpoint_constructor_validates() -> None:
    root = EMPTY_ROOT
    for args in (("", 1, root), ("a\nb", 1, root), ("o", -1, root), ("o", True, root), ("o", 1, root[:5])):
        with pytest.raises(c.CheckpointFormatError):
            c.Checkpoint(*args)
    with pytest.raises(c.CheckpointFormatError):
        c.Checkpoint("o", 1, root, ("",))
    with pytest.raises(c.CheckpointFormatError):
        c.Checkpoint("o", 1, root, "ext")  # type: ignore[arg-type]
    assert c.Checkpoint("o", 1, root, ["a"]).extensions == ("a",)  # type: ignore[arg-type]


def test_spec_example_checkpoint_parses() -> None:
    """The example of c2sp.org/tlog-checkpoint (no public key is published for it: syntax only)."""
    note = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "\u2014 example.com/behind-the-sofa "
        "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    ).encode()
    parsed = c.parse_note(note)
    cp = c.Checkpoint.from_text(parsed.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert parsed.signatures[0].key_id.hex() == "033de0ae" and len(parsed.signatures[0].signature) == 64
    # the signed-note example's text has an empty line: the signatures follow the LAST blank line
    poem = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    sig = (
        "\u2014 quasimodo.example/salvatore "
        "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
    )
    assert c.parse_note((poem + "\n" + sig).encode()).text == poem


# ------------------------------------------------------------------------- standalone verifiers


def test_standalone_inclusion_and_consistency(key: Ed25519PrivateKey) -> None:
    data = [b"entry %d" % i for i in range(23)]
    tree = MerkleTree.from_data(data)
    vkey = c.verifier_key_string(ORIGIN, key.public_key())

    def note_at(size: int) -> bytes:
        return c.sign_checkpoint(c.Checkpoint(ORIGIN, size, tree.root(size)), ORIGIN, key)

    cp = c.verify_inclusion_against_checkpoint(note_at(23), vkey, tree.leaf(9), 9, tree.inclusion_proof(9))
    assert cp.size == 23
    with pytest.raises(InvalidProofError):
        c.verify_inclusion_against_checkpoint(note_at(23), vkey, tree.leaf(8), 9, tree.inclusion_proof(9))
    with pytest.raises(InvalidProofError):  # a proof for another size does not fit this checkpoint
        c.verify_inclusion_against_checkpoint(note_at(22), vkey, tree.leaf(9), 9, tree.inclusion_proof(9))

    old, new = c.verify_consistency_between(note_at(10), note_at(23), vkey, tree.consistency_proof(10))
    assert (old.size, new.size) == (10, 23)
    c.verify_consistency_between(note_at(23), note_at(23), vkey, [])
    c.verify_consistency_between(note_at(0), note_at(23), vkey, [])
    with pytest.raises(InvalidProofError, match="rolled back"):
        c.verify_consistency_between(note_at(23), note_at(10), vkey, [])
    with pytest.raises(InvalidProofError):
        c.verify_consistency_between(note_at(0), note_at(23), vkey, [EMPTY_ROOT])
    with pytest.raises(InvalidProofError, match="old root"):
        forked = MerkleTree.from_data([b"evil", *data[1:]])
        fork_note = c.sign_checkpoint(c.Checkpoint(ORIGIN, 23, forked.root()), ORIGIN, key)
        c.verify_consistency_between(note_at(10), fork_note, vkey, forked.consistency_proof(10))
    other = c.sign_checkpoint(c.Checkpoint("other.example/log", 23, tree.root()), ORIGIN, key)
    with pytest.raises(IntegrityError, match=r"other\.example/log"):
        c.verify_consistency_between(note_at(10), other, vkey, tree.consistency_proof(10))
    stranger = c.verifier_key_string(ORIGIN, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(SignatureError):
        c.verify_consistency_between(note_at(10), note_at(23), stranger, tree.consistency_proof(10))


def test_sign_note_rejects_bad_text_and_names(key: Ed25519PrivateKey) -> None:
    with pytest.raises(c.MalformedNoteError, match="end with a newline"):
        c.sign_note("no newline", "k", key)
    with pytest.raises(c.MalformedNoteError, match="control character"):
        c.sign_note("bell\a\n", "k", key)
    for name in ("", "has space", "a+b", "tab\tname", "nbsp\u00a0name"):
        with pytest.raises(InputError):
            c.sign_note("text\n", name, key)
