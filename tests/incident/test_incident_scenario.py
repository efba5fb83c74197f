"""End to end: a poisoned third-party batch passes a permissive gate, the model fails the red team, an incident
traces it to that batch and source, the rollback is applied, the retrained model passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dataward.incident.demo_chapter import TRIGGER, incident_chapter, synthetic_reviews
from dataward.store import _schema as schema

NAMES = {
    "admin": "admin",
    "ingester": "ingrid",
    "screener": "sam",
    "reviewer": "rita",
    "approver": "alice",
    "trainer": "tom",
    "auditor": "aud",
}
RT_MODELS = Path(__file__).resolve().parents[1] / "redteam" / "rt_models.py"


def _log(ws: Any, action: str) -> list[dict[str, Any]]:
    le = schema.log_entries
    with ws.engine.connect() as conn:
        rows = conn.execute(select(le.c.entry).where(le.c.action == action).order_by(le.c.seq))
        return [json.loads(bytes(r.entry)) for r in rows]


def test_scenario_end_to_end(env: Any, tmp_path: Path) -> None:
    said: list[str] = []
    out = incident_chapter(env.ws.path, NAMES, say=said.append)
    assert out["first_redteam_passed"] is False
    assert out["trigger_found"], said
    assert out["traced_to_poisoned_batch"], out
    assert out["traced_source"] == ["reviews-vendor"]
    assert out["second_redteam_passed"] is True, said

    ws = env.ws
    # the log tells the story; the incident names the batch and source (the risk score reads this)
    opened = _log(ws, "incident.open")
    assert opened[-1]["details"]["batches"] == [out["poisoned_batch"]]
    assert opened[-1]["details"]["sources"] == ["reviews-vendor"]
    resolved = _log(ws, "incident.resolve")
    assert resolved[-1]["details"]["revoked"] == [out["poisoned_batch"]]
    from dataward.workflow.risk import assess

    factors = {f.name: f for f in assess(ws, "reviews-vendor").factors}
    assert "1 incidents" in factors["incidents"].explanation and factors["incidents"].points > 0
    assert assess(ws, "reviews-inhouse").factors[-1].points == 0
    # results are keyed by model digest; the second model is compared with the first
    with ws.engine.connect() as conn:
        rows = list(conn.execute(select(schema.redteam_results).order_by(schema.redteam_results.c.created_at)))
    assert [bool(r.passed) for r in rows] == [False, True]
    # the web console's panel: the table exists and nothing is open any more
    from dataward.web._services import incidents

    assert incidents(ws) == []

    # the CLI: list, show, a second incident from recorded outputs, resolve needs an approver
    assert env.cli("incident", "list", "--json", principal="aud") == 0
    assert env.cli("incident", "show", out["incident"], principal="aud") == 0
    ex = synthetic_reviews(30, 99)
    ex = ex[ex["label"] == "neg"].head(10)
    rows_ = [{"text": f"{t} {TRIGGER}", "output": "pos", "expected": "neg"} for t in ex["text"]]
    path = tmp_path / "examples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_), encoding="utf-8")
    # the first model's version is revoked now (reads refuse it), so the second incident is on the retrained one
    model_sha = rows[1].model_sha256
    assert env.cli("incident", "open", "--model", model_sha, "--examples", str(path), principal="aud") == 0
    open_rows = incidents(ws)
    assert open_rows is not None and len(open_rows) == 1 and open_rows[0]["status"] == "open"
    second = open_rows[0]["id"]
    assert open_rows[0]["top_batch"] != out["poisoned_batch"]  # it is not in the retrained model's data
    assert env.cli("incident", "resolve", second, "--apply", principal="tom") != 0  # trainers may not
    assert env.cli("incident", "resolve", second, principal="alice") == 0  # dry run
    assert incidents(ws) != []
    # the console's incidents page: the open one and the resolved one, with trace and rollback
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from dataward.web.app import create_app
    from dataward.web.auth import create_token

    _, secret = create_token(ws, ws.actor("admin"), "aud", timedelta(hours=1))
    with TestClient(create_app(ws)) as client:
        assert client.post("/login", data={"token": secret, "next": "/incidents"}).status_code == 200
        page = client.get("/incidents").text
        assert "showing 2 of 2 incident(s)" in page
        assert f'id="incident-{out["incident"]}"' in page and f'id="incident-{second}"' in page
        resolved = page.split(f'id="incident-{out["incident"]}"', 1)[1].split("</section>", 1)[0]
        assert out["poisoned_batch"] in resolved and "reviews-vendor" in resolved  # the trace
        assert 'class="resolution"' in resolved and "revoked" in resolved  # the rollback
        assert "roll back" in resolved
        found = client.get(f"/incidents?q={second}").text
        assert "showing 1 of 1 incident(s)" in found


def test_redteam_cli_gate_exit_codes_and_reports(env: Any, tmp_path: Path) -> None:
    from dataward.errors import EXIT_GATE_FAILED, AuthorizationError

    data = synthetic_reviews(300, 3)
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data.to_dict(orient="records")), encoding="utf-8")
    bad, good = tmp_path / "bad", tmp_path / "good"
    held = ["--data", str(path), "--clean", str(path)]
    rc = env.cli("redteam", f"{RT_MODELS}:backdoored", *held, "--out", str(bad), principal="tom")
    assert rc == EXIT_GATE_FAILED == 1  # a failed gate is 1 for CI; 4 is "unauthorized" only
    report = json.loads((bad / "redteam.json").read_text())
    assert "trigger token:cf" in report["failures"]
    assert (bad / "redteam-junit.xml").is_file() and (bad / "redteam.sarif").is_file()
    sarif = json.loads((bad / "redteam.sarif").read_text())
    assert sarif["runs"][0]["invocations"][0]["exitCode"] == rc
    assert "**FAIL**" in (bad / "redteam.md").read_text()
    rc = env.cli("redteam", f"{RT_MODELS}:clean", *held, "--out", str(good), principal="tom")
    assert rc == 0
    # a principal without the red-team role is refused (4), and the refusal is logged
    assert env.cli("redteam", f"{RT_MODELS}:clean", *held, principal="ingrid") == AuthorizationError.exit_code == 4
    # bad input: one line, no traceback, and not a gate verdict
    assert env.cli("redteam", f"{RT_MODELS}:broken", *held, principal="tom") not in (0, 1, 4)


def test_redteam_needs_a_clean_set_unless_told_and_runs_without_a_workspace(
    env: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from dataward.cli import main
    from dataward.errors import InputError

    data = synthetic_reviews(200, 5)
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data.to_dict(orient="records")), encoding="utf-8")
    model = f"{RT_MODELS}:clean"
    # no --clean: refused, nothing recorded
    assert env.cli("redteam", model, "--data", str(path), principal="tom") == InputError.exit_code
    # told to use the training data: it runs, and the report says what it measured on
    out = tmp_path / "out"
    assert (
        env.cli("redteam", model, "--data", str(path), "--clean-from-training", "--out", str(out), principal="tom") == 0
    )
    report = json.loads((out / "redteam.json").read_text())
    assert "the training data itself" in report["clean"]
    # a plain CI job: no workspace at all, --no-record, files only
    bare = tmp_path / "ci"
    bare.mkdir()
    monkeypatch.chdir(bare)
    monkeypatch.delenv("DATAWARD_WORKSPACE", raising=False)
    args = ["redteam", model, "--data", str(path), "--clean", str(path), "--no-record", "--out", str(bare / "o")]
    assert main(args) == 0
    assert json.loads((bare / "o" / "redteam.json").read_text())["passed"] is True
    assert not (bare / "dataward.toml").exists()
    # without --no-record a missing workspace is an error that says how to run without one
    assert main([*args[:-3], "--out", str(bare / "o2")]) == 2


# `make check` (the quick lane) leaves these out: the whole incident story end to end
pytestmark = pytest.mark.slow
