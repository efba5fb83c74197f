"""An export loads with Hugging Face `datasets.load_dataset(DIR)` (offline), carries a dataset card with
licence, sources, versions, digests and Merkle roots, and Croissant metadata that `mlcroissant` validates and
reads; the digests it states are the real ones."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from release_helpers import Env

import dataward
from dataward.core import merkle
from dataward.release.rollback import parse_selector, rollback
from dataward.release.versions import release

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _export(env: Env) -> tuple[Path, str, str]:
    b1 = env.approved("text,label\nhello,0\nworld,1\npoison,1\n")
    b2 = env.approved("text,label\nagain,0\n", source="web")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [b1, b2])
    rollback(env.ws, alice, "train", without_records=[parse_selector(f"{b1}:2")], reason="trigger")
    out = env.path / "export"
    dataward.export("train@2", out, workspace=env.ws, principal="tom")
    return out, b1, b2


def _load_offline(out: Path, tmp: Path) -> list[dict[str, object]]:
    """datasets.load_dataset(DIR) in a fresh interpreter with the hub offline and its cache in tmp."""
    code = (
        "import json, sys, datasets\n"
        "d = datasets.load_dataset(sys.argv[1])\n"
        "print(json.dumps({'splits': list(d), 'rows': d['train'].to_list()}))\n"
    )
    env = {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp / "hf"),
        "HF_DATASETS_CACHE": str(tmp / "hf" / "datasets"),
        "PATH": "/usr/bin:/bin",
    }
    r = subprocess.run(
        [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["splits"] == ["train"]
    return list(doc["rows"])


def test_export_loads_with_hugging_face_datasets(env: Env, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    out, b1, b2 = _export(env)
    rows = _load_offline(out, tmp_path)
    assert sorted(str(r["text"]) for r in rows) == ["again", "hello", "world"]  # the dropped record is not served
    assert {r["_batch"] for r in rows} == {b1, b2}
    # the served digests hash to the version's signed Merkle root
    v = dataward.open("train@2", workspace=env.ws, principal="tom")
    assert [r["_record_digest"] for r in rows] == v.column("_record_digest").to_pylist()
    root = merkle.root_from_leaf_hashes([bytes.fromhex(str(r["_record_digest"])) for r in rows]).hex()
    info = json.loads((out / "dataward" / "version.json").read_text())
    assert root == info["merkle_root"]


def test_the_dataset_card_states_licence_sources_versions_digests_and_how_to_verify(env: Env) -> None:
    out, b1, b2 = _export(env)
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["configs"][0]["data_files"][0]["path"].startswith("data/")
    want = ("other", "CC-BY-4.0 AND MIT", "train@2")
    assert (front["license"], front["license_name"], front["pretty_name"]) == want
    info = json.loads((out / "dataward" / "version.json").read_text())
    manifest = hashlib.sha256((out / "dataward" / "version.dsse.json").read_bytes()).hexdigest()
    assert manifest == info["manifest_sha256"]
    needles = [manifest, info["merkle_root"], b1, b2, "vendor", "web", "MIT", "CC-BY-4.0"]
    for needle in [*needles, "sha256sum -c SHA256SUMS", "Dropped records", "trigger"]:
        assert needle in text, needle
    # SHA256SUMS checks every data and raw file; it is what the card tells people to run
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "data/" in (out / "SHA256SUMS").read_text() and f"{b2}/data.csv" in (out / "SHA256SUMS").read_text()
    assert f"{b1}/data.csv" not in (out / "SHA256SUMS").read_text()  # it holds the dropped record


def test_croissant_metadata_validates_and_reads_with_mlcroissant(env: Env) -> None:
    mlc = pytest.importorskip("mlcroissant")
    out, _b1, _b2 = _export(env)
    doc = json.loads((out / "croissant.json").read_text())
    ds = mlc.Dataset(jsonld=str(out / "croissant.json"))  # raises on validation errors
    assert ds.metadata.version == "2.0.0" and "CC-BY-4.0 AND MIT" in str(ds.metadata.license)
    issues = ds.metadata.ctx.issues
    assert not issues.errors, issues.report()
    records = list(ds.records(record_set="records"))
    texts = sorted(r["records/text"].decode() if isinstance(r["records/text"], bytes) else r["records/text"]
                   for r in records)  # fmt: skip
    assert texts == ["again", "hello", "world"]
    for f in doc["distribution"]:
        got = hashlib.sha256((out / f["contentUrl"]).read_bytes()).hexdigest()
        assert got == f["sha256"], f["contentUrl"]
    assert "vendor" in doc["description"] and "web" in doc["description"]


def test_a_tampered_croissant_digest_is_caught_by_the_oracle(env: Env) -> None:
    """The digests are checked, not decoration: edit one data byte and SHA256SUMS (the card's check) fails."""
    out, _b1, _b2 = _export(env)
    data = next((out / "data").glob("*.parquet"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 1
    data.write_bytes(bytes(raw))
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False)
    assert r.returncode != 0 and "FAILED" in r.stdout


def test_export_reports_its_phases_through_the_progress_protocol(env: Env) -> None:
    from dataward.progress import Recorder

    b = env.approved("text,label\nhello,0\n")
    release(env.ws, env.actor("alice"), "train", [b])
    rec = Recorder()
    dataward.export("train@1", env.path / "p", workspace=env.ws, principal="tom", progress=rec)
    assert [(t.description, t.total, t.completed, t.finished) for t in rec.tasks] == [
        ("verifying train@1", 1, 1, True),
        ("exporting train@1", 2, 2, True),  # one file, then the data file and metadata
    ]
