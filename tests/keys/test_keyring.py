"""Keys stay with their owners: keyrings, public-key registration, acting only with a key one holds."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward import principals
from dataward.cli import main
from dataward.core.signer import Signer
from dataward.errors import AuthorizationError, ConflictError, InputError, SignatureError
from dataward.identity import Actor
from dataward.model import PublicKey
from dataward.model.roles import Grant, Role
from dataward.store.keyring import FileKeyring, NotInKeyringError
from dataward.workspace import Workspace
from private_key_scan import files_with_private_keys


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Path:
    """Switch to ``name``'s own machine: their keyring."""
    ring = tmp_path / "people" / name
    monkeypatch.setenv("DATAWARD_KEYRING", str(ring))
    return ring


def _readme_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, dict[str, Path]]:
    """The README tour's first steps, each person on their own keyring."""
    ws = tmp_path / "ws"
    rings = {"ada": _person(monkeypatch, tmp_path, "ada")}
    rc, out, err = _cli(capsys, "init", str(ws), "--admin", "ada")
    assert rc == 0, out + err
    for name, role in (("ingrid", "ingester"), ("alice", "approver")):
        rings[name] = _person(monkeypatch, tmp_path, name)
        rc, pem, err = _cli(capsys, "key", "generate", name)
        assert rc == 0, err
        (tmp_path / f"{name}.pub").write_text(pem)
        _person(monkeypatch, tmp_path, "ada")
        rc, out, err = _cli(
            capsys,
            "-w",
            str(ws),
            "--as",
            "ada",
            "principal",
            "add",
            name,
            "--role",
            role,
            "--key",
            str(tmp_path / f"{name}.pub"),
        )
        assert rc == 0, out + err
    return ws, rings


def test_readme_workspace_holds_no_principal_private_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, rings = _readme_workspace(tmp_path, monkeypatch, capsys)
    assert files_with_private_keys(ws, allow_log_key=True) == []
    # the scan itself finds keys: every keyring holds exactly its owner's (encrypted) key
    for name, ring in rings.items():
        found = files_with_private_keys(ring)
        assert len(found) == 1 and f".{name}.pem" in found[0]
    # and it is not fooled into passing a principal's key copied into the workspace
    (ws / "stray.pem").write_bytes(next(rings["alice"].iterdir()).read_bytes())
    assert files_with_private_keys(ws, allow_log_key=True) == ["stray.pem: private key material"]


def test_acting_without_the_key_in_ones_keyring_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _rings = _readme_workspace(tmp_path, monkeypatch, capsys)
    _person(monkeypatch, tmp_path, "ada")  # ada, the admin, tries to act as alice
    rc, _out, err = _cli(capsys, "-w", str(ws), "--as", "alice", "principal", "grant", "ada", "approver")
    assert rc == AuthorizationError.exit_code == 4
    lines = [line for line in err.splitlines() if line.strip()]
    assert "the key" in lines[0] and "of 'alice' is not in your keyring" in lines[0]
    assert "Traceback" not in err
    _person(monkeypatch, tmp_path, "alice")
    rc, _out, err = _cli(
        capsys, "-w", str(ws), "--as", "ingrid", "source", "add", "x", "--kind", "internal", "--origin", "o"
    )
    assert rc == 4 and "of 'ingrid' is not in your keyring" in err


def test_key_generate_writes_a_private_encrypted_key_and_prints_the_public_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = _person(monkeypatch, tmp_path, "carol")
    rc, pem, err = _cli(capsys, "key", "generate", "carol")
    assert rc == 0, err
    pub = PublicKey.parse(pem)
    (f,) = ring.iterdir()
    assert f.name == f"{pub.keyid}.carol.pem"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and stat.S_IMODE(ring.stat().st_mode) == 0o700
    assert b"ENCRYPTED PRIVATE KEY" in f.read_bytes()
    signer = FileKeyring(ring).signer("carol")  # DATAWARD_PASSPHRASE opens it
    assert signer.keyid == pub.keyid
    monkeypatch.setenv("DATAWARD_PASSPHRASE", "wrong")
    with pytest.raises(SignatureError, match="wrong passphrase"):
        FileKeyring(ring).signer("carol")
    # no passphrase and no terminal: a clear refusal, nothing written
    monkeypatch.delenv("DATAWARD_PASSPHRASE")
    rc, out, err = _cli(capsys, "key", "generate", "dave")
    assert rc == InputError.exit_code and "needs a passphrase" in err and not out
    assert [p.name for p in ring.iterdir()] == [f.name]
    # a service's key: --no-passphrase
    rc, out, err = _cli(capsys, "key", "generate", "svc", "--no-passphrase", "--json")
    info = json.loads(out)
    assert rc == 0 and info["encrypted"] is False
    assert b"ENCRYPTED" not in (ring / f"{info['keyid']}.svc.pem").read_bytes()


def test_keyring_refuses_keys_open_to_others(tmp_path: Path) -> None:
    ring = FileKeyring(tmp_path / "ring")
    entry, _ = ring.generate("eve")
    os.chmod(entry.path, 0o644)  # mode bits are checked, whoever runs the test (root included)
    with pytest.raises(SignatureError, match="open to others"):
        ring.signer("eve")
    os.chmod(entry.path, 0o600)
    os.chmod(ring.path, 0o755)
    with pytest.raises(SignatureError, match="keyring directory"):
        ring.signer("eve")
    os.chmod(ring.path, 0o700)
    assert ring.signer("eve").keyid == entry.keyid
    with pytest.raises(InputError, match="already exists"):  # a key is never silently replaced
        _clobber(entry.path)


def _clobber(path: Path) -> None:
    from dataward.store.keyring import write_private_file

    write_private_file(path, b"x")


@pytest.mark.parametrize("form", ["pem", "openssh", "hex"])
def test_principal_add_takes_any_public_key_form_and_export_round_trips(
    make_workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    ws = make_workspace(tmp_path)
    _entry, pub = FileKeyring().generate("pat")
    text = {"pem": pub.pem(), "openssh": pub.openssh("pat@laptop"), "hex": pub.hex()}[form]
    (tmp_path / "pat.pub").write_text(text)
    rc, out, err = _cli(
        capsys,
        "-w",
        str(ws.path),
        "--as",
        "admin",
        "principal",
        "add",
        "pat",
        "--role",
        "auditor",
        "--key",
        str(tmp_path / "pat.pub"),
    )
    assert rc == 0, err
    for fmt, want in (("pem", pub.pem()), ("openssh", pub.openssh("pat") + "\n"), ("hex", pub.hex() + "\n")):
        rc, out, err = _cli(capsys, "-w", str(ws.path), "key", "export", "pat", "--format", fmt)
        assert rc == 0 and out == want
    assert ws.actor("pat").keyid == pub.keyid


def test_principal_add_refuses_private_keys_and_is_one_transaction(
    make_workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_workspace(tmp_path)
    entry, pub = FileKeyring().generate("quinn", b"pw")
    rc, _out, err = _cli(
        capsys, "-w", str(ws.path), "--as", "admin", "principal", "add", "quinn", "--key", str(entry.path)
    )
    assert rc == InputError.exit_code and "is a PRIVATE key" in err
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("ssh-ed25519 AAAAnot-base64")
    rc, _out, err = _cli(
        capsys, "-w", str(ws.path), "--as", "admin", "principal", "add", "quinn", "--key", str(garbage)
    )
    assert rc == InputError.exit_code and "garbage.pub" in err
    admin = ws.actor("admin")
    principals.add_principal(ws, admin, "quinn", [Grant(Role.AUDITOR)], pub)
    # a second principal with the same key is refused, and nothing of it remains (principal, grant, log entry)
    before = _count(ws, "log_entries")
    with pytest.raises(ConflictError, match="already registered"):
        principals.add_principal(ws, admin, "quinn2", [Grant(Role.APPROVER)], pub)
    assert _count(ws, "principals", "name = 'quinn2'") == 0 and _count(ws, "role_grants", "principal = 'quinn2'") == 0
    assert _count(ws, "log_entries") == before
    entry_row = _last_entry(ws, "principal.add")
    assert entry_row["subject"] == "principal:quinn" and entry_row["details"]["public_key"] == pub.hex()


def _count(ws: Workspace, table: str, where: str = "1=1") -> int:
    con = sqlite3.connect(ws.path / "catalog.db")
    try:
        return int(con.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0])
    finally:
        con.close()


def _last_entry(ws: Workspace, action: str) -> dict[str, object]:
    from dataward.log.query import show_entries

    e = next(e for e in show_entries(ws, limit=100) if e.action == action)
    return {"subject": e.subject, "details": e.details}


def test_key_rotate_needs_the_new_public_key_from_its_owner(
    make_workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path)
    old = principals.enroll(ws, ws.actor("admin"), "rob", [Grant(Role.AUDITOR)])
    rc, out, err = _cli(capsys, "-w", str(ws.path), "--as", "admin", "key", "rotate", "rob")
    assert rc == InputError.exit_code and "needs their new public key" in err
    _entry, new = FileKeyring(tmp_path / "robs-laptop").generate("rob")
    (tmp_path / "rob.pub").write_text(new.pem())
    rc, out, err = _cli(
        capsys, "-w", str(ws.path), "--as", "admin", "key", "rotate", "rob", "--key", str(tmp_path / "rob.pub")
    )
    assert rc == 0, err
    assert ws.actor("rob", keyring=FileKeyring(tmp_path / "robs-laptop")).keyid == new.keyid != old.keyid
    with pytest.raises(NotInKeyringError):
        ws.actor("rob")  # the admin's keyring never had rob's new key
    # rob rotates his own key on his own machine: generated there
    monkeypatch.setenv("DATAWARD_KEYRING", str(tmp_path / "robs-laptop"))
    rc, out, err = _cli(capsys, "-w", str(ws.path), "--as", "rob", "key", "rotate", "rob", "--json")
    assert rc == 0, err
    assert json.loads(out)["retired"] == new.keyid
    assert len(FileKeyring(tmp_path / "robs-laptop").entries("rob")) == 2


def test_init_with_admin_key_file_keeps_the_admin_key_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = FileKeyring(tmp_path / "admins-laptop")
    _e, pub = ring.generate("root")
    (tmp_path / "root.pub").write_text(pub.openssh())
    rc, _out, err = _cli(
        capsys, "init", str(tmp_path / "ws"), "--admin", "root", "--admin-key", str(tmp_path / "root.pub")
    )
    assert rc == 0, err
    assert FileKeyring().entries() == []  # nothing generated in the caller's keyring
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(NotInKeyringError):
        ws.actor("root")
    assert ws.actor("root", keyring=ring).keyid == pub.keyid
    ws.engine.dispose()


def test_a_custom_signer_plugs_in(make_workspace, tmp_path: Path) -> None:
    """A Signer that is not a file (say a KMS) signs log entries and manifests that verify."""

    class CountingSigner(Signer):
        def __init__(self) -> None:
            self._key = Ed25519PrivateKey.generate()
            self.calls = 0

        @property
        def keyid(self) -> str:
            return PublicKey.of(self._key.public_key()).keyid

        def public_key(self):  # type: ignore[no-untyped-def]
            return self._key.public_key()

        def sign(self, data: bytes) -> bytes:
            self.calls += 1
            return self._key.sign(data)

    ws = make_workspace(tmp_path)
    kms = CountingSigner()
    principals.add_principal(ws, ws.actor("admin"), "robot", [Grant(Role.INGESTER)], PublicKey.of(kms.public_key()))
    from dataward.acquire.acquire import acquire
    from dataward.acquire.verify import verify_batch
    from dataward.log.verify import verify_log
    from dataward.sources import add_source

    add_source(ws, ws.actor("admin"), "feed", kind="internal", origin="o")
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    batch = acquire(ws, Actor.of("robot", kms), "feed", [data])
    assert kms.calls >= 2  # the signed manifest and the log entry
    assert verify_batch(ws, batch.id).ok and verify_log(ws).ok


def test_key_migrate_moves_principal_keys_out_of_an_old_workspace(
    make_workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path)
    # an old workspace: the admin generated a principal's key into the workspace's keys/ directory
    old_key = Ed25519PrivateKey.generate()
    kid = ws.keys.save(old_key, b"sal's passphrase")
    principals.add_principal(ws, ws.actor("admin"), "sal", [Grant(Role.AUDITOR)], PublicKey.of(old_key.public_key()))
    assert files_with_private_keys(ws.path, allow_log_key=True) == [f"keys/{kid}.pem: private key material"]
    dest = tmp_path / "handover"
    rc, out, err = _cli(capsys, "-w", str(ws.path), "--as", "admin", "key", "migrate", "--to", str(dest), "--json")
    assert rc == 0, err
    assert json.loads(out) == [{"principal": "sal", "keyid": kid, "keyring": str(dest / "sal")}]
    assert files_with_private_keys(ws.path, allow_log_key=True) == []
    assert ws.log_actor().keyid  # the log key stayed
    # sal gets dest/sal as their keyring and acts with it
    monkeypatch.setenv("DATAWARD_KEYRING", str(dest / "sal"))
    monkeypatch.setenv("DATAWARD_PASSPHRASE", "sal's passphrase")
    assert stat.S_IMODE((dest / "sal").stat().st_mode) == 0o700
    assert Workspace.open(ws.path).actor("sal").keyid == kid
    assert _last_entry(ws, "key.migrate")["details"] == {"moved": [{"principal": "sal", "keyid": kid}]}
