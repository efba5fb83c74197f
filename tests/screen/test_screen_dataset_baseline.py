"""`dataward baseline create DATASET@VERSION` reads a released version verified, file by file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "versions"))
release_helpers = pytest.importorskip("release_helpers", reason="the release test helpers are not available")


def test_baseline_of_a_released_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.cli import main
    from dataward.release.versions import release

    monkeypatch.setenv("DATAWARD_WITNESS", str(tmp_path / "witness.json"))
    monkeypatch.delenv("DATAWARD_WORKSPACE", raising=False)
    monkeypatch.delenv("DATAWARD_PRINCIPAL", raising=False)
    env = release_helpers.make_env(tmp_path)
    try:
        b1 = env.approved("text,label\nhello world,0\ngood day,1\n")
        b2 = env.approved("text,label\nbad day,0\n")
        release(env.ws, env.actor("alice"), "train", [b1, b2])
        out = tmp_path / "bl.json"
        code = main(
            [
                "--workspace",
                str(env.path / "ws"),
                "--as",
                "tom",
                "baseline",
                "create",
                "train@1",
                "--label",
                "label",
                "--out",
                str(out),
            ]
        )
        assert code == 0
        prof = json.loads(out.read_text())["profile"]
        assert prof["n_records"] == 3
        labels = next(c for c in prof["columns"] if c["name"] == "label")
        assert labels["values"] == {"0": 2, "1": 1}
    finally:
        env.ws.engine.dispose()
