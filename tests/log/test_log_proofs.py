"""Inclusion and consistency proofs check standalone: only the proof JSON, a checkpoint and the log key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.core.checkpoint import verifier_key_string
from dataward.core.dsse import public_key_bytes
from dataward.core.merkle import InvalidProofError
from dataward.errors import Error
from dataward.log.proofcheck import verify_proof

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

LogEnv = Any  # the `logenv` fixture (tests/log/conftest.py)


def _json(env: LogEnv, *args: str) -> Any:
    env.capsys.readouterr()
    from dataward.cli import main

    assert main(["-w", str(env.path), *args, "--json"]) == 0
    return json.loads(env.capsys.readouterr().out)


def _log_key(env: LogEnv) -> str:
    return str(_json(env, "log", "key")["verifier_key"])


def test_prove_json_verifies_standalone_through_the_cli(logenv: LogEnv, tmp_path: Path) -> None:
    proof = _json(logenv, "log", "prove", "3")
    f = tmp_path / "proof.json"
    f.write_text(json.dumps(proof))
    key = _log_key(logenv)
    rc, out = logenv.cli("log", "verify-proof", str(f), "--key", key, who=None)
    assert rc == 0, out
    assert "OK entry 3 (principal.add by admin) is in the log" in out
    # the principal's own signature on the entry checks too, with its public key
    ws = logenv.open()
    admin_pub = public_key_bytes(ws.actor("admin").key.public_key()).hex()
    ws.engine.dispose()
    rc, out = logenv.cli("log", "verify-proof", str(f), "--key", key, "--signer-key", admin_pub, who=None)
    assert rc == 0, out


def test_verify_proof_needs_only_the_json_and_the_key(logenv: LogEnv) -> None:
    proof = _json(logenv, "log", "prove", "5")
    key = _log_key(logenv)
    res = verify_proof(json.loads(json.dumps(proof)), key)
    assert res["kind"] == "inclusion" and res["index"] == 5 and res["tree_size"] == proof["tree_size"]
    assert res["entry"]["seq"] == 5


@pytest.mark.parametrize("what", ["proof-hash", "leaf", "entry", "index", "checkpoint"])
def test_altered_inclusion_proof_fails(logenv: LogEnv, what: str) -> None:
    proof = _json(logenv, "log", "prove", "5")
    key = _log_key(logenv)
    if what == "proof-hash":
        h = bytearray(base64.b64decode(proof["proof"][0]))
        h[0] ^= 1
        proof["proof"][0] = base64.b64encode(bytes(h)).decode()
    elif what == "leaf":
        proof["leaf_hash"] = base64.b64encode(b"\x01" * 32).decode()
    elif what == "entry":
        proof["entry"] = proof["entry"].replace('"action":"', '"action":"x', 1)
    elif what == "index":
        proof["index"] = 4
    else:
        proof["checkpoint"] = proof["checkpoint"].replace("\n", "\n1", 1)  # another size, same signature
    with pytest.raises(Error):
        verify_proof(proof, key)


def test_inclusion_proof_fails_with_another_logs_key(logenv: LogEnv) -> None:
    proof = _json(logenv, "log", "prove", "2")
    origin = proof["checkpoint"].split("\n", 1)[0]
    other = verifier_key_string(origin, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(Error):
        verify_proof(proof, other)


@pytest.mark.slow  # 9 s
def test_consistency_proof_from_a_kept_checkpoint(logenv: LogEnv, tmp_path: Path) -> None:
    old = _json(logenv, "log", "checkpoint")
    kept = tmp_path / "old-checkpoint.txt"
    kept.write_text(old["note"])
    for i in range(3):
        assert logenv.cli("source", "add", f"s{i}", "--kind", "internal", "--origin", "x")[0] == 0
    proof = _json(logenv, "log", "consistency", str(old["size"]))
    f = tmp_path / "consistency.json"
    f.write_text(json.dumps(proof))
    key = _log_key(logenv)
    rc, out = logenv.cli("log", "verify-proof", str(f), "--key", key, "--old-checkpoint", str(kept), who=None)
    assert rc == 0, out
    assert f"extends its state at {old['size']} entries" in out
    res = verify_proof(proof, key)  # with the old checkpoint the proof carries
    assert (res["size1"], res["size2"]) == (old["size"], proof["size2"])
    # a proof does not tie a forked old checkpoint to the new one
    proof["proof"] = proof["proof"][1:]
    with pytest.raises(InvalidProofError):
        verify_proof(proof, key, old_checkpoint=kept.read_bytes())


def test_verify_proof_refuses_bad_input_cleanly(logenv: LogEnv, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    rc, out = logenv.cli("log", "verify-proof", str(f), "--key", _log_key(logenv), who=None)
    assert rc == 2 and "cannot read the proof" in out and "Traceback" not in out
    f.write_text("{}")
    rc, out = logenv.cli("log", "verify-proof", str(f), "--key", "not-a-key", who=None)
    assert rc == 2 and "Traceback" not in out
