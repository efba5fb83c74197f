"""Training runs (API, context manager, CLI), signed SLSA provenance, lineage queries and blast radius."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

import dataward
from dataward.batches import get_batch
from dataward.core import dsse
from dataward.errors import AuthorizationError, InputError, IntegrityError, NotFoundError
from dataward.lineage._slsa import PREDICATE_SLSA
from dataward.lineage.queries import blast_radius, lineage
from dataward.lineage.runs import get_run, list_runs, provenance_envelope, record_run
from dataward.release.rollback import rollback
from dataward.release.versions import release

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

if TYPE_CHECKING:
    from release_helpers import Env


def _model(env: Env, name: str, data: bytes) -> Path:
    p = env.path / name
    p.write_bytes(data)
    return p


def _setup(env: Env) -> tuple[str, str]:
    clean = env.approved("t\nclean\n")
    web = env.approved("t\nscraped\n", source="web")
    release(env.ws, env.actor("alice"), "train", [clean, web])
    return clean, web


def test_record_run_keeps_inputs_and_outputs_by_digest_and_signs_slsa(env: Env) -> None:
    _setup(env)
    m = _model(env, "model.safetensors", b"weights")
    base = _model(env, "base.bin", b"base")
    run = record_run(env.ws, env.actor("tom"), "train@1", [m], base_model=base)
    assert run.version == "train@1" and run.principal == "tom" and run.status == "completed"
    assert [(a.name, a.sha256, a.size) for a in run.outputs] == [(str(m), hashlib.sha256(b"weights").hexdigest(), 7)]
    assert run.base_model is not None and run.base_model.sha256 == hashlib.sha256(b"base").hexdigest()
    assert [r.id for r in list_runs(env.ws)] == [run.id]
    # SLSA provenance v1, signed by the trainer, verifies with securesystemslib
    env_ = provenance_envelope(env.ws, run.id)
    st = dsse.parse_statement(env_)
    assert st.predicate_type == PREDICATE_SLSA == "https://slsa.dev/provenance/v1"
    assert st.subjects == ((str(m), hashlib.sha256(b"weights").hexdigest()),)
    bd = st.predicate["buildDefinition"]
    deps = {d["annotations"]["kind"]: d for d in bd["resolvedDependencies"]}
    assert deps["dataset-version"]["digest"]["sha256"] == run.version_manifest
    assert deps["base-model"]["digest"]["sha256"] == run.base_model.sha256
    assert st.predicate["runDetails"]["metadata"]["invocationId"] == run.id
    with env.ws.engine.connect() as conn:
        row = env.ws.public_keys(conn)[env.actor("tom").keyid]
    key = SSlibKey(row.keyid, "ed25519", "ed25519", {"public": row.public_key})
    assert row.keyid in SslibEnvelope.from_dict(env_.to_dict()).verify([key], 1)


def test_runs_refuse_unreleased_unverified_or_unauthorized_inputs(env: Env) -> None:
    clean, web = _setup(env)
    m = _model(env, "m.bin", b"w")
    q = env.acquire("t\nquarantined\n")
    with pytest.raises(InputError):
        record_run(env.ws, env.actor("tom"), q, [m])
    with pytest.raises(NotFoundError):
        record_run(env.ws, env.actor("tom"), "train@2", [m])
    with pytest.raises(AuthorizationError):
        record_run(env.ws, env.actor("ingrid"), "train@1", [m])
    with pytest.raises(InputError, match="at least one model"):
        record_run(env.ws, env.actor("tom"), "train@1", [])
    with pytest.raises(InputError, match="no such model"):
        record_run(env.ws, env.actor("tom"), "train@1", [env.path / "missing.bin"])
    f = get_batch(env.ws, clean).files[0]
    p = env.ws.objects.path("released", f.sha256)
    os.chmod(p, 0o644)
    Path(p).write_text("t\ntampered\n")
    with pytest.raises(IntegrityError):
        record_run(env.ws, env.actor("tom"), "train@1", [m])
    assert list_runs(env.ws) == []
    assert web


def test_training_run_context_manager(env: Env) -> None:
    _setup(env)
    with dataward.training_run("train@1", workspace=env.ws, principal="tom") as run:
        frame = run.open()  # a DataFrame scikit-learn takes as it is
        assert sorted(frame["t"]) == ["clean", "scraped"]
        from sklearn.feature_extraction.text import CountVectorizer

        assert CountVectorizer().fit_transform(frame["t"]).shape[0] == len(frame)
        assert run.open(as_="arrow").num_rows == len(frame)
        m = _model(env, "ctx.bin", b"trained on " + str(len(frame)).encode())
        run.add_model(m)
    assert run.run is not None and run.run.status == "completed"
    assert get_run(env.ws, run.id).outputs[0].sha256 == hashlib.sha256(b"trained on 2").hexdigest()
    # a failing block is recorded as failed and its exception goes through
    with pytest.raises(RuntimeError, match="diverged"):  # noqa: SIM117
        with dataward.training_run("train@1", workspace=env.ws, principal="tom") as failed:
            raise RuntimeError("diverged")
    assert get_run(env.ws, failed.id).status == "failed"
    # entering refuses a version that does not verify
    rollback(env.ws, env.actor("alice"), "train", without=["web"])
    with pytest.raises(IntegrityError, match="revoked"):  # noqa: SIM117
        with dataward.training_run("train@1", workspace=env.ws, principal="tom"):
            pytest.fail("the block must not run")


def test_lineage_up_and_downstream_and_blast_radius(env: Env) -> None:
    clean, web = _setup(env)
    m1 = _model(env, "m1.bin", b"one")
    r1 = record_run(env.ws, env.actor("tom"), "train@1", [m1])
    other = env.approved("t\nother\n")
    release(env.ws, env.actor("alice"), "ft", [other])
    m2 = _model(env, "m2.bin", b"two")
    r2 = record_run(env.ws, env.actor("tom"), "ft@1", [m2], base_model=m1)

    up = {n["id"] for n in lineage(env.ws, str(m2))["upstream"]}
    assert {f"run:{r2.id}", "version:ft@1", f"batch:{other}", f"model:{hashlib.sha256(b'one').hexdigest()}"} <= up
    assert {f"run:{r1.id}", "version:train@1", f"batch:{web}", "source:web"} <= up  # through the base model
    by_digest = lineage(env.ws, hashlib.sha256(b"two").hexdigest())
    assert {n["id"] for n in by_digest["upstream"]} == up
    down = {n["id"] for n in lineage(env.ws, ["source", "web"][1])["downstream"]}
    assert {f"batch:{web}", "version:train@1", f"run:{r1.id}", f"run:{r2.id}"} <= down
    assert "version:ft@1" not in down  # ft@1 holds nothing from web
    v = lineage(env.ws, "train@1")
    assert {n["id"] for n in v["upstream"]} == {f"batch:{clean}", f"batch:{web}", "source:vendor", "source:web"}

    br = blast_radius(env.ws, "web")
    assert [x["version"] for x in br["versions"]] == ["train@1"]
    assert br["versions"][0]["records_from_target"] == 1
    assert sorted(x["sha256"] for x in br["models"]) == sorted(hashlib.sha256(d).hexdigest() for d in (b"one", b"two"))
    assert blast_radius(env.ws, other)["models"][0]["sha256"] == hashlib.sha256(b"two").hexdigest()
    with pytest.raises(InputError):
        blast_radius(env.ws, "train@1")
    with pytest.raises(NotFoundError):
        lineage(env.ws, "nothing-like-this")
    with pytest.raises(NotFoundError, match="no recorded run"):
        lineage(env.ws, str(_model(env, "stranger.bin", b"?")))


def test_cli_run_record_lineage_and_provenance(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    _setup(env)
    m = _model(env, "cli.bin", b"cli model")
    capsys.readouterr()
    assert env.cli("run", "record", "--dataset", "train@1", "--model", str(m), "--json", principal="tom") == 0
    run = json.loads(capsys.readouterr().out)
    assert run["models"][0]["sha256"] == hashlib.sha256(b"cli model").hexdigest()
    assert env.cli("run", "list", "--json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [run["id"]]
    assert env.cli("lineage", str(m), "--json") == 0
    assert "version:train@1" in {n["id"] for n in json.loads(capsys.readouterr().out)["upstream"]}
    assert env.cli("blast-radius", "web", "--json") == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["runs"] == [run["id"]]
    out = env.path / "prov.json"
    assert env.cli("run", "provenance", run["id"], "-o", str(out)) == 0
    assert dsse.parse_statement(dsse.Envelope.from_dict(json.loads(out.read_text()))).predicate_type == PREDICATE_SLSA
    # refusals: no traceback, non-zero
    assert env.cli("run", "record", "--dataset", "b-1", "--model", str(m), principal="tom") == 2
    assert env.cli("run", "record", "--dataset", "train@1", "--model", str(m), principal="ingrid") == 4
    assert env.cli("lineage", "nope") == 2
    assert env.cli("lineage") == 2
    assert "Traceback" not in capsys.readouterr().err
