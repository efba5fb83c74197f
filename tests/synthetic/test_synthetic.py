"""Synthetic batches: bit-for-bit regeneration from the signed statement, and what breaks it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataward import principals
from dataward.errors import InputError
from dataward.lineage.queries import blast_radius
from dataward.model.roles import Grant, Role
from dataward.release.reader import open_dataset
from dataward.release.versions import get_version
from dataward.sources import add_source
from dataward.synthetic import ConditioningInput, coverage, regenerate, synthesize
from dataward.synthetic._runner import GeneratorError
from dataward.synthetic.api import generation_statement

GENERATOR = '''
import numpy as np

def make_rows(*, seed, params, inputs):
    rng = np.random.default_rng(seed)
    n = int(params.get("rows", "50"))
    base = inputs.get("train@1")
    shift = 0.0 if base is None else float(len(base))
    return [{"x": float(rng.normal()) + shift, "label": ["a", "b"][int(rng.integers(2))], "i": i} for i in range(n)]
'''


@pytest.fixture
def synth(env, tmp_path: Path):  # type: ignore[no-untyped-def]
    admin = env.ws.actor("admin")
    add_source(env.ws, admin, "gen", kind="synthetic", origin="generator:genmod")
    principals.grant_roles(env.ws, admin, "ingrid", [Grant(Role.TRAINER)])
    code = tmp_path / "gencode"
    code.mkdir()
    (code / "genmod.py").write_text(GENERATOR, encoding="utf-8")
    return env, code


def test_regenerates_bit_for_bit_and_statement_is_signed(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    ingrid = env.actor("ingrid")
    batch, stmt = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=7, params=["rows=40"],
                             search_path=str(code))
    assert batch.record_count == 40 and stmt.output_merkle_root == batch.merkle_root
    signed = generation_statement(env.ws, batch.id)
    assert signed.seed == 7 and signed.params == {"rows": "40"} and len(signed.generator.code_sha256) == 64
    res = regenerate(env.ws, ingrid, batch.id, search_path=str(code))
    assert res.ok, res.problems
    assert res.regenerated_root == batch.merkle_root and res.first_difference is None


def test_changed_generator_is_named(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    ingrid = env.actor("ingrid")
    batch, _ = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=1, search_path=str(code))
    src = (code / "genmod.py").read_text()
    (code / "genmod.py").write_text(src.replace("rng.normal()", "rng.normal() * 1.0001"))
    res = regenerate(env.ws, ingrid, batch.id, search_path=str(code))
    assert not res.ok
    assert any("generator genmod:make_rows changed" in p for p in res.problems)
    assert res.first_difference == 0


def test_changed_seed_names_first_differing_record(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    ingrid = env.actor("ingrid")
    batch, _ = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=3, search_path=str(code))
    claimed = replace(generation_statement(env.ws, batch.id), seed=4)  # a statement that lies about its seed
    res = regenerate(env.ws, ingrid, batch.id, search_path=str(code), statement=claimed)
    assert not res.ok and res.first_difference == 0
    assert any("record 0 differs" in p for p in res.problems)


def test_nondeterministic_generator_is_not_regenerable(synth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    (code / "noisy.py").write_text(
        "import os\ndef rows(*, seed, params, inputs):\n    return [{'v': os.urandom(4).hex()} for _ in range(5)]\n"
    )
    ingrid = env.actor("ingrid")
    batch, _ = synthesize(env.ws, ingrid, "gen", "noisy:rows", seed=0, search_path=str(code))
    res = regenerate(env.ws, ingrid, batch.id, search_path=str(code))
    assert not res.ok and res.first_difference == 0


def test_generator_has_no_network_and_failures_are_clean(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    (code / "net.py").write_text(
        "import socket\ndef rows(*, seed, params, inputs):\n"
        "    socket.create_connection(('127.0.0.1', 9))\n    return []\n"
    )
    with pytest.raises(GeneratorError, match="network access is refused"):
        synthesize(env.ws, env.actor("ingrid"), "gen", "net:rows", seed=0, search_path=str(code))
    (code / "bad.py").write_text("def rows(*, seed, params, inputs):\n    return 42\n")
    with pytest.raises(GeneratorError, match="not records"):
        synthesize(env.ws, env.actor("ingrid"), "gen", "bad:rows", seed=0, search_path=str(code))


def test_only_synthetic_sources(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    with pytest.raises(InputError, match="not synthetic"):
        synthesize(env.ws, env.actor("ingrid"), "vendor", "genmod:make_rows", seed=0, search_path=str(code))


def test_conditioned_batch_is_in_blast_radius_of_its_input(synth) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    b = env.approved("x,label\n1,a\n2,b\n3,a\n")
    assert env.cli("release", "train", "--add", b) == 0
    ingrid = env.actor("ingrid")
    with pytest.raises(InputError, match="needs a reader of released versions"):
        synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=5, conditioned_on=["train@1"], search_path=str(code))

    def read_version(spec: str) -> ConditioningInput:
        v = get_version(env.ws, spec)
        return ConditioningInput(v.spec, v.merkle_root, open_dataset(v.spec, workspace=env.ws, principal=ingrid))

    batch, stmt = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=5, conditioned_on=["train@1"],
                             search_path=str(code), read_version=read_version)
    assert list(stmt.inputs) == ["train@1"]
    assert regenerate(env.ws, ingrid, batch.id, search_path=str(code), read_version=read_version).ok
    hit = blast_radius(env.ws, b)  # the input batch's blast radius reaches the synthetic batch made from it
    assert batch.id in json.dumps(hit["batches"]) or batch.id in json.dumps(hit)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], size=n)})


def test_memorisation_check_catches_planted_copies_and_passes_fresh_samples() -> None:
    real = _table(600, 0)
    fresh = _table(300, 1)
    ok = coverage(real, fresh)
    assert not ok.memorised and ok.exact_copies == ()
    assert all(c.distance < 0.2 for c in ok.columns)
    leaked = pd.concat([fresh.iloc[:280], real.iloc[:20]], ignore_index=True)
    bad = coverage(real, leaked)
    assert bad.memorised
    assert set(bad.exact_copies) == set(range(280, 300))
    near = fresh.copy()
    near.iloc[:30, :2] = real.iloc[:30, :2].to_numpy() + 1e-6  # copies with a tiny perturbation
    near.iloc[:30, 2] = real.iloc[:30, 2].to_numpy()
    r = coverage(real, near)
    assert r.memorised and set(range(30)) <= set(r.near_copies)


def test_cli_synthesize_verify_regenerate_and_coverage(synth, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    env, code = synth
    rng = np.random.default_rng(11)
    rows = "".join(f"{rng.normal():.6f},{'ab'[int(rng.integers(2))]},{i}\n" for i in range(200))
    b = env.approved("x,label,i\n" + rows)
    assert env.cli("release", "real", "--add", b) == 0
    capsys.readouterr()
    rc = env.cli("synthesize", "gen", "--generator", "genmod:make_rows", "--seed", "9", "--param", "rows=150",
                 "--path", str(code), "--json", principal="ingrid")
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    bid = out["batch"]["id"]
    assert out["generation"]["seed"] == 9
    assert env.cli("verify", bid, "--regenerate", "--path", str(code), principal="ingrid") == 0
    capsys.readouterr()
    (code / "genmod.py").write_text(GENERATOR.replace("range(n)", "range(n + 1)"))
    assert env.cli("verify", bid, "--regenerate", "--path", str(code), "--json", principal="ingrid") == 3
    res = json.loads(capsys.readouterr().out)
    assert res["first_difference"] == 150 and any("changed" in p for p in res["problems"])
    html = tmp_path / "cov.html"
    rc = env.cli("coverage", bid, "--reference", "real@1", "--html", str(html), "--json", principal="ingrid")
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and not report["memorised"] and "<svg" in html.read_text(), report
    assert {c["column"] for c in report["columns"]} == {"x", "label", "i"}


def _rule(result, name):  # type: ignore[no-untyped-def]
    if result.rule == name:
        return result
    for c in result.children:
        found = _rule(c, name)
        if found is not None:
            return found
    return None


def test_policy_requires_verified_regeneration_and_risk_credits_it(synth) -> None:  # type: ignore[no-untyped-def]
    from dataward.workflow.gate import evaluate
    from dataward.workflow.risk import assess

    env, code = synth
    ingrid = env.actor("ingrid")
    before = assess(env.ws, "gen")
    batch, _ = synthesize(env.ws, ingrid, "gen", "genmod:make_rows", seed=2, search_path=str(code))
    rule = _rule(evaluate(env.ws, batch.id).result, "regenerable")
    assert rule is not None and not rule.passed and "verify --regenerate" in rule.explanation
    unproven = assess(env.ws, "gen")
    assert regenerate(env.ws, ingrid, batch.id, search_path=str(code)).ok
    env.ws.record(ingrid, "batch.verify", f"batch:{batch.id}", {"regenerated": True, "problems": []})
    assert _rule(evaluate(env.ws, batch.id).result, "regenerable").passed
    proven = assess(env.ws, "gen")
    assert proven.score < unproven.score <= before.score
    # a non-synthetic batch is not asked to regenerate
    other = env.acquire("a,b\n1,2\n")
    assert _rule(evaluate(env.ws, other).result, "regenerable").passed
