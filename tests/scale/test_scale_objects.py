"""The content-addressed object store on fsspec: a local directory and the in-memory filesystem behave alike."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from dataward.errors import IntegrityError, NotFoundError
from dataward.store.objects import ObjectStore


@pytest.fixture(params=["local", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "objects")
    return f"memory://dw-{secrets.token_hex(8)}/objects"


def test_put_read_copy(store_url: str) -> None:
    store = ObjectStore(store_url)
    data = b"record one\nrecord two\n" * 1000
    digest = store.put_bytes("quarantine", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.exists("quarantine", digest) and not store.exists("released", digest)
    assert store.read_bytes("quarantine", digest) == data
    assert b"".join(store.iter_chunks("quarantine", digest)) == data
    assert store.put_bytes("quarantine", data) == digest  # idempotent
    store.copy("quarantine", "released", digest)
    assert store.read_bytes("released", digest) == data
    assert (store.local_path("quarantine", digest) is not None) == store_url.startswith("/")
    # nothing is left behind under the temporary names
    leftovers = [p for p in store.fs.find(store.root) if "/incoming/" in p]
    assert leftovers == []


def test_aborted_writer_publishes_nothing(store_url: str) -> None:
    store = ObjectStore(store_url)
    with store.open_writer() as w:
        w.write(b"half an object")
    digest = hashlib.sha256(b"half an object").hexdigest()
    assert not store.exists("quarantine", digest)
    assert [p for p in store.fs.find(store.root) if "/incoming/" in p] == []


def test_tampered_and_missing_objects(store_url: str) -> None:
    store = ObjectStore(store_url)
    digest = store.put_bytes("meta", b"manifest bytes")
    path = store.path("meta", digest)
    if store_url.startswith("/"):
        Path(path).chmod(0o644)
    with store.fs.open(path, "wb") as f:
        f.write(b"forged bytes")
    with pytest.raises(IntegrityError, match="does not match its name"):
        store.read_bytes("meta", digest)
    with pytest.raises(IntegrityError, match="changed while it was copied"):
        store.copy("meta", "released", digest)
    with pytest.raises(NotFoundError, match="missing"):
        store.read_bytes("quarantine", "0" * 64)
    with pytest.raises(NotFoundError, match="not a SHA-256"):
        store.read_bytes("quarantine", "../../etc/passwd")


def test_workspace_on_memory_objects(make_workspace: Any, tmp_path: Path) -> None:
    from dataward.acquire.acquire import acquire
    from dataward.acquire.verify import verify_batch
    from dataward.model.roles import Grant, Role
    from dataward.principals import enroll
    from dataward.sources import add_source

    ws = make_workspace(tmp_path, objects=f"memory://dw-{secrets.token_hex(8)}")
    admin = ws.actor("admin")
    enroll(ws, admin, "ingrid", [Grant(Role.INGESTER)])
    add_source(ws, admin, "feed", kind="internal", origin="tests")
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    batch = acquire(ws, ws.actor("ingrid"), "feed", [f])
    assert verify_batch(ws, batch.id).ok
    obj = batch.files[0].sha256
    with ws.objects.fs.open(ws.objects.path("quarantine", obj), "wb") as out:
        out.write(b'{"a": 1}\n{"a": 3}\n')
    report = verify_batch(ws, batch.id)
    assert not report.ok and any(p.kind in ("file", "records") for p in report.problems)


@pytest.mark.parametrize("form", ["path", "file-url", "local-url", "relative", "trailing-slash"])
def test_local_store_root_is_fsspecs(form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    monkeypatch.chdir(tmp_path)
    url = {
        "path": str(tmp_path / "objects"),
        "file-url": f"file://{tmp_path}/objects",
        "local-url": f"local://{tmp_path}/objects",
        "relative": "objects",
        "trailing-slash": f"{tmp_path}/objects/",
    }[form]
    store = ObjectStore(url)
    _fs, root = fsspec.core.url_to_fs(url)
    assert store.is_local and store.root == root.rstrip("/") == str(tmp_path / "objects")
    digest = store.put_bytes("meta", b"x")
    assert store.fs.exists(store.path("meta", digest))  # the fsspec view (doctor's scan) sees the same object


def test_local_store_reads_and_writes_without_fsspec(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from dataward.store.objects import ObjectStore\n"
        f"s = ObjectStore({str(tmp_path / 'objects')!r})\n"
        "d = s.put_bytes('quarantine', b'data')\n"
        "assert s.exists('quarantine', d) and s.read_bytes('quarantine', d) == b'data'\n"
        "s.remove('quarantine', d)\n"
        "assert not s.exists('quarantine', d)\n"
        "print('fsspec' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
