"""DSSE and key interop with securesystemslib (the reference library, used as the oracle), supplier-signed
deliveries, portable workspaces and the witness keyed by the log's identity."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from dataward import principals
from dataward.acquire.acquire import acquire
from dataward.cli import main
from dataward.core import dsse
from dataward.core.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
from dataward.errors import InputError, SignatureError
from dataward.log.query import show_entries
from dataward.log.witness import RewoundLogError, check_witness
from dataward.model import PublicKey
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.workspace import Workspace


@pytest.fixture
def vendor(make_workspace: Any, tmp_path: Path) -> dict[str, Any]:
    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    supplier = Ed25519PrivateKey.generate()
    pem = PublicKey.of(supplier.public_key()).pem()
    add_source(ws, admin, "vendor", kind="third-party", origin="https://v.example", supplier_key=pem)
    ingrid = principals.enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    delivery = tmp_path / "delivery"
    (delivery / "sub").mkdir(parents=True)
    (delivery / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (delivery / "sub" / "b.csv").write_text("x,y\n5,6\n")
    return {"ws": ws, "admin": admin, "ingrid": ingrid, "supplier": supplier, "delivery": delivery}


def _sslib_envelope(delivery: Path, signer: CryptoSigner, subject: Any = None) -> bytes:
    files = sorted(p for p in delivery.rglob("*") if p.is_file() and p.name != "delivery.dsse.json")
    subjects = (
        subject
        if subject is not None
        else [
            {
                "name": p.relative_to(delivery).as_posix(),
                "digest": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
            }
            for p in files
        ]
    )
    statement = {
        "_type": dsse.STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": dsse.PREDICATE_SUPPLIER_MANIFEST,
        "predicate": {"supplier": "V"},
    }
    env = SslibEnvelope(json.dumps(statement).encode(), dsse.INTOTO_PAYLOAD_TYPE, {})
    env.sign(signer)
    return json.dumps(env.to_dict()).encode()


def test_securesystemslib_verifies_dataward_envelopes_with_default_key_handling(vendor: dict[str, Any]) -> None:
    ingrid = vendor["ingrid"]
    env = dsse.sign_envelope(dsse.make_statement([("f", "0" * 64)], "https://x/v1", {}), ingrid.key)
    key = SSlibKey.from_crypto(ingrid.key.public_key())  # default keyid, default scheme: no hand-tuning
    assert key.keyid == ingrid.keyid
    raw = env.to_dict()
    assert list(SslibEnvelope.from_dict(copy.deepcopy(raw)).verify([key], 1)) == [ingrid.keyid]
    raw["payload"] = base64.b64encode(b"{}").decode()
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(raw).verify([key], 1)
    # and a stored batch manifest, as written by acquire
    ws = vendor["ws"]
    add_source(ws, vendor["admin"], "house", kind="internal", origin="o")
    batch = acquire(ws, ingrid, "house", [vendor["delivery"] / "a.csv"])
    stored = json.loads(ws.objects.read_bytes("meta", batch.manifest_digest))
    assert list(SslibEnvelope.from_dict(stored).verify([key], 1)) == [ingrid.keyid]


@pytest.mark.parametrize("keyid", ["default", "empty", "foreign"])
def test_dataward_accepts_a_supplier_envelope_signed_by_cryptosigner(vendor: dict[str, Any], keyid: str) -> None:
    supplier = vendor["supplier"]
    public = SSlibKey.from_crypto(supplier.public_key())
    if keyid != "default":
        public = SSlibKey("" if keyid == "empty" else "my-kms-key/3", "ed25519", "ed25519", public.keyval)
    signer = CryptoSigner(supplier, public)
    manifest = vendor["delivery"] / "delivery.dsse.json"
    manifest.write_bytes(_sslib_envelope(vendor["delivery"], signer))
    batch = acquire(vendor["ws"], vendor["ingrid"], "vendor", [vendor["delivery"]], expect_signed=manifest)
    assert batch.file_count == 2  # the manifest inside the delivery is not data
    entry = show_entries(vendor["ws"], limit=1)[0]
    assert entry.action == "batch.acquire" and entry.details["supplier_verification"] == "dsse"


def test_envelopes_that_name_a_key_but_do_not_verify_or_come_from_another_key_are_refused(
    vendor: dict[str, Any],
) -> None:
    delivery, ws, ingrid = vendor["delivery"], vendor["ws"], vendor["ingrid"]
    manifest = delivery / "delivery.dsse.json"
    good = json.loads(_sslib_envelope(delivery, CryptoSigner(vendor["supplier"])))
    stranger = json.loads(_sslib_envelope(delivery, CryptoSigner(Ed25519PrivateKey.generate())))
    forged = copy.deepcopy(stranger)
    forged["signatures"][0]["keyid"] = good["signatures"][0]["keyid"]  # claims the supplier's key
    for env, why in ((stranger, "not signed by a trusted key"), (forged, "does not verify")):
        manifest.write_text(json.dumps(env))
        with pytest.raises(SignatureError, match=why):
            acquire(ws, ingrid, "vendor", [delivery], expect_signed=manifest)


@pytest.mark.parametrize("subject", [5, "a.csv", {"name": "a.csv"}, [5], [{"name": 1, "digest": {}}]])
def test_malformed_subjects_are_clean_errors(vendor: dict[str, Any], subject: Any) -> None:
    manifest = vendor["delivery"] / "delivery.dsse.json"
    manifest.write_bytes(_sslib_envelope(vendor["delivery"], CryptoSigner(vendor["supplier"]), subject=subject))
    with pytest.raises(SignatureError, match=r"delivery\.dsse\.json: statement subject"):
        acquire(vendor["ws"], vendor["ingrid"], "vendor", [vendor["delivery"]], expect_signed=manifest)


def test_sign_delivery_cli_and_unsigned_deliveries(
    vendor: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, delivery = vendor["ws"], vendor["delivery"]
    w = ["-w", str(ws.path), "--as", "ingrid"]
    # unsigned: refused (exit 3), and the refusal is logged
    assert main([*w, "acquire", "vendor", str(delivery)]) == 3
    assert "has a supplier key, and this delivery has no signed manifest" in capsys.readouterr().err
    assert show_entries(ws, limit=1)[0].action == "batch.refuse"
    assert main([*w, "acquire", "vendor", str(delivery), "--allow-unsigned"]) == InputError.exit_code
    assert main([*w, "acquire", "vendor", str(delivery), "--allow-unsigned", "--reason", "vendor portal down"]) == 0
    entry = show_entries(ws, limit=1)[0]
    assert entry.details["unsigned_allowed"] == {"reason": "vendor portal down"}
    # the supplier signs with a PEM key file (no workspace needed); the manifest in the directory is found
    key_file = tmp_path / "supplier.pem"
    key_file.write_bytes(vendor["supplier"].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    capsys.readouterr()
    assert main(["sign-delivery", str(delivery), "--key", str(key_file), "--supplier", "V", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 2
    assert main(["sign-delivery", str(delivery), "--key", str(key_file)]) == 6  # exists: --force needed
    capsys.readouterr()
    assert main([*w, "acquire", "vendor", str(delivery), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"]) == 2
    # securesystemslib verifies what sign-delivery wrote
    env = json.loads((delivery / "delivery.dsse.json").read_bytes())
    assert SslibEnvelope.from_dict(env).verify([SSlibKey.from_crypto(vendor["supplier"].public_key())], 1)
    # a file changed after signing is caught
    (delivery / "a.csv").write_text("x,y\n1,2\n3,5\n")
    assert main([*w, "acquire", "vendor", str(delivery)]) == 3


def test_supplier_keys_in_every_form(make_workspace: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = make_workspace(tmp_path)
    pub = PublicKey.of(Ed25519PrivateKey.generate().public_key())
    for i, text in enumerate([pub.pem(), pub.openssh("vendor@build"), pub.hex()]):
        f = tmp_path / f"k{i}.pub"
        f.write_text(text)
        args = ["source", "add", f"s{i}", "--kind", "third-party", "--origin", "o", "--supplier-key", f"@{f}", "--json"]
        capsys.readouterr()
        assert main(["-w", str(ws.path), "--as", "admin", *args]) == 0
        assert json.loads(capsys.readouterr().out)["supplier_keyid"] == pub.keyid
    assert (
        main(
            [
                "-w",
                str(ws.path),
                "--as",
                "admin",
                "source",
                "add",
                "bad",
                "--kind",
                "internal",
                "--origin",
                "o",
                "--supplier-key",
                "not a key",
            ]
        )
        == 2
    )


def test_a_copied_workspace_is_independent(
    make_workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path)
    admin = ws.actor("admin")
    add_source(ws, admin, "s", kind="internal", origin="o")
    ws.engine.dispose()
    config = (ws.path / "dataward.toml").read_text()
    assert str(tmp_path) not in config  # only workspace-relative paths
    before = {
        p.relative_to(ws.path): hashlib.sha256(p.read_bytes()).hexdigest() for p in ws.path.rglob("*") if p.is_file()
    }
    copy_dir = tmp_path / "copy"
    shutil.copytree(ws.path, copy_dir)
    monkeypatch.setenv("DATAWARD_WITNESS", str(tmp_path / "copy-witness.json"))  # a copy is a fork of the log
    c = Workspace.open(copy_dir)
    assert c.catalog_url.endswith(str(copy_dir / "catalog.db")) and c.objects.root.startswith(str(copy_dir))
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    ingrid = principals.enroll(c, c.actor("admin"), "ingrid", [Grant(Role.INGESTER)])
    acquire(c, ingrid, "s", [data])
    c.engine.dispose()
    after = {
        p.relative_to(ws.path): hashlib.sha256(p.read_bytes()).hexdigest() for p in ws.path.rglob("*") if p.is_file()
    }
    assert after == before
    con = sqlite3.connect(copy_dir / "catalog.db")
    assert con.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 1
    con.close()


def test_a_rewind_with_a_new_workspace_id_is_an_error_not_a_new_log(
    make_workspace: Any, tmp_path: Path, _witness: Path
) -> None:
    """The attack of issue 12: restore an old catalog, change workspace_id in dataward.toml and meta."""
    ws = make_workspace(tmp_path)
    check_witness(ws)
    ws.engine.dispose()
    snapshot = tmp_path / "old-catalog.db"
    shutil.copy(ws.path / "catalog.db", snapshot)
    ws = Workspace.open(ws.path)
    add_source(ws, ws.actor("admin"), "later", kind="internal", origin="o")  # history the attacker wants gone
    check_witness(ws)
    ws.engine.dispose()
    shutil.copy(snapshot, ws.path / "catalog.db")
    with pytest.raises(RewoundLogError, match="rewound"):
        check_witness(Workspace.open(ws.path))  # the plain rewind is caught ...
    cfg = ws.path / "dataward.toml"
    cfg.write_text(cfg.read_text().replace(f'workspace_id = "{ws.id}"', 'workspace_id = "feedfacefeedface"'))
    _sql(ws.path, "UPDATE meta SET value = 'feedfacefeedface' WHERE key = 'workspace_id'")
    renamed = Workspace.open(ws.path)
    with pytest.raises(RewoundLogError, match="workspace_id changed from"):  # ... and so is the renamed one
        check_witness(renamed)
    # ... and one that also renames the origin, re-signing every checkpoint with the stolen log key
    log_key, old_origin, pub = renamed.log_actor(), renamed.origin, renamed.log_public_key()
    renamed.engine.dispose()
    new_origin = "dataward.local/feedfacefeedface"
    cfg.write_text(cfg.read_text().replace(old_origin, new_origin))
    _sql(ws.path, f"UPDATE meta SET value = '{new_origin}' WHERE key = 'log_origin'")
    con = sqlite3.connect(ws.path / "catalog.db")
    for size, note in con.execute("SELECT size, note FROM checkpoints").fetchall():
        cp = parse_signed_checkpoint(note.encode(), {old_origin: pub}, origin=old_origin)
        forged = sign_checkpoint(Checkpoint(new_origin, cp.size, cp.root_hash), new_origin, log_key.key)
        con.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (forged.decode(), size))
    con.commit()
    con.close()
    rebranded = Workspace.open(ws.path)
    with pytest.raises(RewoundLogError, match=r"signs the log dataward\.local/"):
        check_witness(rebranded)
    rebranded.engine.dispose()
    assert main(["-w", str(ws.path), "log", "show"]) == 3


def _sql(path: Path, sql: str) -> None:
    con = sqlite3.connect(path / "catalog.db")
    con.execute(sql)
    con.commit()
    con.close()
