"""`dataward scan-model`: exit 1 on FAIL, runs without a workspace, --allow and the policy's [modelscan] allow."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataward.cli import main
from dataward.errors import PolicyError
from dataward.workflow.approval_policy import default_policy_text, load_policy, parse_policy, set_policy

CUSTOM = b"\x80\x04\x8c\x0cmypkg.layers\x8c\x06Custom\x93)\x81."


def test_scan_model_without_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "not-a-workspace"
    empty.mkdir()
    good = tmp_path / "w.npy"
    np.save(good, np.ones(3))
    assert main(["--workspace", str(empty), "scan-model", str(good)]) == 0
    bad = tmp_path / "m.pkl"
    bad.write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    assert main(["--workspace", str(empty), "scan-model", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "m.pkl: global os.system (byte 0) is not on the allow-list" in out and "FAIL" in out
    assert main(["--workspace", str(empty), "scan-model", str(tmp_path / "missing.pt")]) == 2
    assert not list(empty.iterdir())  # nothing written


def test_allow_option_is_named_in_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "custom.pkl"
    p.write_bytes(CUSTOM)
    assert main(["--workspace", str(tmp_path), "scan-model", str(p)]) == 1
    capsys.readouterr()
    assert main(["--workspace", str(tmp_path), "scan-model", str(p), "--allow", "mypkg.layers.Custom", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["verdict"] == "pass" and rep["allowed_by_extra"] == ["mypkg.layers.Custom"]
    assert rep["allow_source"] == "--allow"
    assert main(["--workspace", str(tmp_path), "scan-model", str(p), "--allow", "mypkg.*"]) == 2
    assert "MODULE.NAME" in capsys.readouterr().err


def test_policy_allow_list(
    tmp_path: Path, make_workspace: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ws = make_workspace(tmp_path)
    text = default_policy_text() + '\n[modelscan]\nallow = ["mypkg.layers.Custom"]\n'
    set_policy(ws, ws.actor("admin"), text, where="t")  # admins only, logged as policy.set
    assert load_policy(ws).modelscan_allow == ("mypkg.layers.Custom",)
    p = tmp_path / "custom.pkl"
    p.write_bytes(CUSTOM)
    assert main(["--workspace", str(ws.path), "--as", "admin", "scan-model", str(p)]) == 0
    out = capsys.readouterr().out
    assert "trusted only by policy [modelscan] allow: mypkg.layers.Custom" in out
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x04\x8c\x0cmypkg.layers\x8c\x04Evil\x93)\x81.")
    assert main(["--workspace", str(ws.path), "--as", "admin", "scan-model", str(evil)]) == 1


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[modelscan]\nallow = ["os.*"]\n', r"MODULE\.NAME"),
        ('[modelscan]\nallow = "os.system"\n', "must be a list"),
        ('[modelscan]\ndeny = ["os.system"]\n', "may only hold allow"),
        ('[modelscan]\nallow = ["system"]\n', r"MODULE\.NAME"),
    ],
)
def test_policy_allow_list_is_validated_with_the_line(snippet: str, message: str) -> None:
    text = default_policy_text() + "\n" + snippet
    with pytest.raises(PolicyError, match=message) as err:
        parse_policy(text, "policy.toml")
    line = int(re.match(r"policy\.toml:(\d+):", str(err.value)).group(1))  # type: ignore[union-attr]
    assert text.splitlines()[line - 1].startswith(("[modelscan]", "allow", "deny"))
