"""Bad deliveries are refused whole with a one-line error naming the file, and nothing is half-written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.acquire.acquire import acquire
from dataward.batches import list_batches
from dataward.core import dsse
from dataward.errors import Error, InputError, IntegrityError, SignatureError
from dataward.log.query import show_entries
from dataward.log.verify import verify_log
from dataward.sources import add_source


def _refused(env: Any, paths: list[Path], exc: type[Error], match: str, **kw: Any) -> None:
    before = len(list_batches(env.ws))
    with pytest.raises(exc, match=match):
        acquire(env.ws, env.ingester, "vendor", paths, **kw)
    assert len(list_batches(env.ws)) == before, "a refused delivery must not leave a batch behind"
    assert verify_log(env.ws).ok
    assert not list(
        env.ws.objects.fs.ls(env.ws.objects.root + "/incoming")
        if env.ws.objects.fs.exists(env.ws.objects.root + "/incoming")
        else []
    ), "temp objects left behind"


def test_malformed_csv_names_file(env: Any) -> None:
    p = env.path / "bad.csv"
    p.write_bytes(b"a,b\n1,2\n3,4,5\n")
    _refused(env, [p], InputError, r"bad\.csv: malformed CSV")
    refusals = show_entries(env.ws, action="batch.refuse")
    assert refusals and "bad.csv" in refusals[0].details["reason"]


@pytest.mark.slow
def test_malformed_jsonl_names_line(env: Any) -> None:
    p = env.path / "bad.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": \n')
    _refused(env, [p], InputError, r"bad\.jsonl line 2: malformed JSON")


@pytest.mark.slow
def test_invalid_utf8_names_line(env: Any) -> None:
    p = env.path / "bad.txt"
    p.write_bytes(b"ok\nalso ok\nbroken \xff here\n")
    _refused(env, [p], InputError, r"bad\.txt line 3: invalid UTF-8")


def test_empty_file_is_a_recorded_warning(env: Any) -> None:
    p = env.path / "empty.csv"
    p.write_bytes(b"")
    batch = acquire(env.ws, env.ingester, "vendor", [p])
    assert batch.record_count == 0
    entry = show_entries(env.ws, action="batch.acquire")[0]
    assert any("empty file" in w for w in entry.details["warnings"])


def test_duplicate_content_is_a_recorded_warning(env: Any) -> None:
    d = env.path / "d"
    d.mkdir()
    (d / "a.txt").write_bytes(b"same\n")
    (d / "b.txt").write_bytes(b"same\n")
    acquire(env.ws, env.ingester, "vendor", [d])
    entry = show_entries(env.ws, action="batch.acquire")[0]
    assert any("same content as a.txt" in w for w in entry.details["warnings"])


def test_duplicate_names_are_refused(env: Any) -> None:
    (env.path / "x").mkdir()
    (env.path / "y").mkdir()
    (env.path / "x" / "a.txt").write_bytes(b"1\n")
    (env.path / "y" / "a.txt").write_bytes(b"2\n")
    _refused(env, [env.path / "x" / "a.txt", env.path / "y" / "a.txt"], InputError, "both be named 'a.txt'")


def test_symlink_outside_the_delivery_is_refused(env: Any) -> None:
    d = env.path / "delivery"
    d.mkdir()
    (d / "ok.txt").write_bytes(b"fine\n")
    secret = env.path / "secret.txt"
    secret.write_bytes(b"do not take me\n")
    os.symlink(secret, d / "link.txt")
    _refused(env, [d], InputError, "symlink points outside")


def test_symlink_inside_the_delivery_is_accepted(env: Any) -> None:
    d = env.path / "delivery"
    d.mkdir()
    (d / "ok.txt").write_bytes(b"fine\n")
    os.symlink(d / "ok.txt", d / "alias.txt")
    assert acquire(env.ws, env.ingester, "vendor", [d]).file_count == 2


def test_unreadable_and_special_files_are_refused(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = env.path / "pipe"
    os.mkfifo(fifo)
    _refused(env, [fifo], InputError, "not a regular file")
    p = env.path / "locked.txt"
    p.write_bytes(b"x\n")
    real_open = open

    def deny(file: Any, *a: Any, **k: Any) -> Any:
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    _refused(env, [p], InputError, "locked.txt: permission denied")


def test_missing_path_is_refused(env: Any) -> None:
    with pytest.raises(InputError, match="no such file"):
        acquire(env.ws, env.ingester, "vendor", [env.path / "nope.csv"])


def test_file_changing_while_read_is_refused(env: Any) -> None:
    p = env.path / "growing.txt"
    p.write_bytes(b"a\n" * 1000)

    grown = []

    def grow(_name: str, _n: int) -> None:
        if not grown:  # the supplier is still writing when the first chunk has been read
            grown.append(1)
            with open(p, "ab") as f:
                f.write(b"late\n")

    _refused(env, [p], InputError, "changed while it was read", progress=grow)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("../etc/passwd", "climbs out"),
        ("/etc/passwd", "is absolute"),
        ("a/../../b", "climbs out"),
        ("C:\\\\x", "backslash|absolute"),
    ],
)
def test_hostile_names_in_supplier_manifest(env: Any, line: str, match: str) -> None:
    p = env.path / "a.txt"
    p.write_bytes(b"x\n")
    sums = env.path / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  {line}\n")
    _refused(env, [p], InputError, match, expect=sums)


def test_supplier_digest_mismatch_names_file(env: Any) -> None:
    p = env.path / "a.txt"
    p.write_bytes(b"x\n")
    sums = env.path / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  a.txt\n")
    _refused(env, [p], IntegrityError, r"a\.txt: SHA-256 .* does not match the supplier.s", expect=sums)
    # and a matching list passes
    import hashlib

    sums.write_text(f"{hashlib.sha256(b'x' + bytes([10])).hexdigest()} *a.txt\n")
    assert acquire(env.ws, env.ingester, "vendor", [p], expect=sums).file_count == 1


def _signed_manifest(env: Any, key: Ed25519PrivateKey, files: dict[str, bytes], name: str = "manifest") -> Path:
    import hashlib

    stmt = dsse.make_statement(
        [(n, hashlib.sha256(b).hexdigest()) for n, b in files.items()], dsse.PREDICATE_SUPPLIER_MANIFEST, {}
    )
    out = env.path / f"{name}.dsse.json"
    out.write_bytes(dsse.sign_envelope(stmt, key).to_bytes())
    return out


def test_supplier_signed_manifest(env: Any) -> None:
    supplier = Ed25519PrivateKey.generate()
    add_source(
        env.ws,
        env.admin,
        "signed",
        kind="third-party",
        origin="x",
        license="MIT",
        supplier_key=dsse.public_key_bytes(supplier.public_key()).hex(),
    )
    p = env.path / "a.txt"
    p.write_bytes(b"hello\n")
    good = _signed_manifest(env, supplier, {"a.txt": b"hello\n"})
    b = acquire(env.ws, env.ingester, "signed", [p], expect_signed=good)
    assert b.file_count == 1
    # forged: signed by someone else
    forged = _signed_manifest(env, Ed25519PrivateKey.generate(), {"a.txt": b"hello\n"}, "forged")
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        acquire(env.ws, env.ingester, "signed", [p], expect_signed=forged)
    # genuine signature, but the delivery differs from what was signed
    p.write_bytes(b"hello, poisoned\n")
    with pytest.raises(IntegrityError, match=r"a\.txt: SHA-256"):
        acquire(env.ws, env.ingester, "signed", [p], expect_signed=good)
    # a source without a supplier key cannot check a signed manifest
    with pytest.raises(SignatureError, match="has no supplier key"):
        acquire(env.ws, env.ingester, "vendor", [p], expect_signed=good)
    assert len(list_batches(env.ws)) == 1


def test_cli_refusal_is_one_line_and_non_zero(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    p = env.path / "bad.csv"
    p.write_bytes(b"a,b\n1\n")
    code = env.cli("acquire", "vendor", str(p))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "bad.csv" in err.splitlines()[0]
    assert "Traceback" not in err


def test_unauthorized_acquire_is_denied_and_logged(env: Any) -> None:
    from dataward.errors import AuthorizationError

    p = env.path / "a.txt"
    p.write_bytes(b"x\n")
    with pytest.raises(AuthorizationError, match=r"may not batch\.acquire"):
        acquire(env.ws, env.admin, "vendor", [p])
    denied = show_entries(env.ws, action="access.denied")
    assert denied and denied[0].details["principal"] == "admin"
