"""Importing a DVC repository without DVC: .dvc files, dvc.lock, DVC 3 and DVC 2 cache layouts, .dir listings,
MD5 checks on every cache object, re-hashing with SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from release_helpers import Env

from dataward.batches import get_batch, list_batches
from dataward.errors import InputError, IntegrityError
from dataward.lifecycle import attestations_for
from dataward.release.dvc import PREDICATE_DVC_IMPORT, find_tracked, import_dvc


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _cache(repo: Path, data: bytes, *, v3: bool = True, name: str | None = None) -> str:
    h = name or _md5(data)
    base = repo / ".dvc" / "cache" / ("files/md5" if v3 else "")
    p = base / h[:2] / h[2:]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return h


def make_repo(root: Path) -> dict[str, bytes]:
    """A DVC 3 repository: one .dvc-tracked CSV, one dvc.lock stage with a directory output."""
    (root / ".dvc").mkdir(parents=True)
    (root / "data").mkdir()
    train = b"text,label\nhello,0\nworld,1\n"
    h = _cache(root, train)
    (root / "data" / "train.csv.dvc").write_text(
        f"outs:\n- md5: {h}\n  size: {len(train)}\n  hash: md5\n  path: train.csv\n"
    )
    files = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\ngamma\n"}
    listing = json.dumps([{"md5": _md5(v), "relpath": k} for k, v in sorted(files.items())]).encode()
    for v in files.values():
        _cache(root, v)
    dh = _cache(root, listing, name=_md5(listing) + ".dir")
    (root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prep.py\n    outs:\n"
        f"    - path: prepared\n      hash: md5\n      md5: {dh}\n      nfiles: 2\n"
    )
    return {"data/train.csv": train, **{f"prepared/{k}": v for k, v in files.items()}}


def test_find_tracked(tmp_path: Path) -> None:
    make_repo(tmp_path)
    got = [(t.path, t.tracked_in, t.is_dir, t.legacy) for t in find_tracked(tmp_path)]
    assert got == [("data/train.csv", "data/train.csv.dvc", False, False), ("prepared", "dvc.lock", True, False)]


@pytest.mark.slow
def test_import_dvc3_files_and_directories(env: Env) -> None:
    repo = env.path / "repo"
    content = make_repo(repo)
    out = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert [(r["path"], r["files"], r["records"]) for r in out] == [("data/train.csv", 1, 2), ("prepared", 2, 3)]
    for r in out:
        b = get_batch(env.ws, r["batch"])
        assert b.state == "quarantined" and b.source == "inhouse"
        for f in b.files:
            assert f.sha256 == hashlib.sha256(content[f.name]).hexdigest()  # re-hashed with SHA-256
        att = attestations_for(env.ws, b.id, PREDICATE_DVC_IMPORT)
        assert len(att) == 1
        from dataward.core import dsse

        st = dsse.parse_statement(dsse.Envelope.from_bytes(env.ws.objects.read_bytes("meta", att[0].envelope_digest)))
        assert {m["name"]: m["md5"] for m in st.predicate["files"]} == {f.name: _md5(content[f.name]) for f in b.files}


@pytest.mark.slow
def test_import_dvc_twice_makes_no_duplicate_batches(env: Env) -> None:
    repo = env.path / "repo"
    make_repo(repo)
    first = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    before = [b.id for b in list_batches(env.ws)]
    again = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert [b.id for b in list_batches(env.ws)] == before  # nothing acquired twice
    assert [r["batch"] for r in again] == [r["batch"] for r in first]
    assert all(r["already_imported"] for r in again) and not any(r["already_imported"] for r in first)
    # changed content is a new output: it is imported
    (repo / "data" / "train.csv.dvc").unlink()
    data = b"text,label\nnew,1\n"
    h = _cache(repo, data)
    (repo / "data" / "train.csv.dvc").write_text(f"outs:\n- md5: {h}\n  hash: md5\n  path: train.csv\n")
    third = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert [r["already_imported"] for r in third] == [False, True]


def test_import_dvc2_layout_with_crlf_text_hashed_dos2unix(env: Env) -> None:
    repo = env.path / "repo2"
    (repo / ".dvc").mkdir(parents=True)
    data = b"a,b\r\n1,2\r\n"
    h = _cache(repo, data, v3=False, name=_md5(data.replace(b"\r\n", b"\n")))  # DVC 2 hashed text as LF
    (repo / "d.csv.dvc").write_text(f"outs:\n- md5: {h}\n  path: d.csv\n")
    out = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert out[0]["records"] == 1
    assert get_batch(env.ws, out[0]["batch"]).files[0].sha256 == hashlib.sha256(data).hexdigest()


def test_a_cache_object_whose_md5_does_not_match_is_refused(env: Env) -> None:
    repo = env.path / "repo"
    make_repo(repo)
    h = _md5(b"text,label\nhello,0\nworld,1\n")
    p = repo / ".dvc" / "cache" / "files" / "md5" / h[:2] / h[2:]
    p.write_bytes(b"text,label\nhello,1\nworld,1\n")
    with pytest.raises(IntegrityError, match="MD5"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert list_batches(env.ws) == []


def test_a_tampered_dir_listing_and_member_are_refused(env: Env) -> None:
    repo = env.path / "repo"
    make_repo(repo)
    (repo / "data" / "train.csv.dvc").unlink()
    a = repo / ".dvc" / "cache" / "files" / "md5"
    member = _md5(b"alpha\n")
    (a / member[:2] / member[2:]).write_bytes(b"omega\n")
    with pytest.raises(IntegrityError, match=r"a\.txt"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")


def test_missing_objects_fall_back_to_the_working_tree_only_if_md5_matches(env: Env) -> None:
    repo = env.path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    data = b"t\nx\n"
    (repo / "w.csv.dvc").write_text(f"outs:\n- md5: {_md5(data)}\n  hash: md5\n  path: w.csv\n")
    with pytest.raises(InputError, match="neither in the DVC cache"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    (repo / "w.csv").write_bytes(b"t\ny\n")
    with pytest.raises(IntegrityError):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    (repo / "w.csv").write_bytes(data)
    assert import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")[0]["records"] == 1


def test_refusals_bad_source_bad_yaml_traversal(env: Env) -> None:
    repo = env.path / "repo"
    make_repo(repo)
    with pytest.raises(InputError, match="internal"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "vendor")
    empty = env.path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \.dvc files"):
        import_dvc(env.ws, env.actor("ingrid"), empty, "inhouse")
    (repo / "evil.dvc").write_text(f"outs:\n- md5: {'0' * 32}\n  path: ../../etc/passwd\n")
    with pytest.raises(InputError, match=r"\.\."):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    (repo / "evil.dvc").write_text("outs: [unclosed\n")
    with pytest.raises(InputError, match="YAML"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse")
    assert list_batches(env.ws) == []


@pytest.mark.slow
def test_cli_import_dvc(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    repo = env.path / "repo"
    make_repo(repo)
    capsys.readouterr()
    assert env.cli("import-dvc", str(repo), "--source", "inhouse", "--json", principal="ingrid") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in out] == ["data/train.csv", "prepared"]
    assert env.cli("import-dvc", str(repo), "--source", "inhouse", principal="tom") == 4


def _git(repo: Path, *args: str) -> str:
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env)
    return r.stdout.strip()


@pytest.mark.slow
def test_import_git_revisions_from_the_cache(env: Env) -> None:
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = env.path / "gitrepo"
    (repo / ".dvc").mkdir(parents=True)
    _git(repo, "init", "-q")
    v1, v2 = b"t\nfirst\n", b"t\nfirst\nsecond\n"
    for data in (v1, v2):
        h = _cache(repo, data)
        (repo / "d.csv.dvc").write_text(f"outs:\n- md5: {h}\n  hash: md5\n  path: d.csv\n")
        _git(repo, "add", "d.csv.dvc")
        _git(repo, "commit", "-q", "-m", "data")
    out = import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse", revs=["HEAD~1", "HEAD", "HEAD"])
    assert [r["records"] for r in out] == [1, 2]  # HEAD twice: imported once
    assert out[1]["git_commit"] == _git(repo, "rev-parse", "HEAD")
    assert get_batch(env.ws, out[0]["batch"]).files[0].sha256 == hashlib.sha256(v1).hexdigest()
    with pytest.raises(InputError, match="rev-parse"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse", revs=["no-such-rev"])
    with pytest.raises(InputError, match="option"):
        import_dvc(env.ws, env.actor("ingrid"), repo, "inhouse", revs=["--output=/tmp/x"])
