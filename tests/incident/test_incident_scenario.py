"""End to end: a poisoned third-party batch passes a permissive gate, the model fails the red team, an incident
traces it to that batch and source, the rollback is applied, the retrained model passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dataward.incident.demo_chapter import TRIGGER, incident_chapter, synthetic_reviews
from dataward.store import schema

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
    from dataward.web.services import incidents

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


def test_redteam_cli_gate_exit_codes_and_reports(env: Any, tmp_path: Path) -> None:
    data = synthetic_reviews(300, 3)
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data.to_dict(orient="records")), encoding="utf-8")
    bad, good = tmp_path / "bad", tmp_path / "good"
    rc = env.cli("redteam", f"{RT_MODELS}:backdoored", "--data", str(path), "--out", str(bad), principal="tom")
    assert rc == 4
    report = json.loads((bad / "redteam.json").read_text())
    assert "trigger token:cf" in report["failures"]
    assert (bad / "redteam-junit.xml").is_file() and (bad / "redteam.sarif").is_file()
    assert "**FAIL**" in (bad / "redteam.md").read_text()
    rc = env.cli("redteam", f"{RT_MODELS}:clean", "--data", str(path), "--out", str(good), principal="tom")
    assert rc == 0
    # a principal without the red-team role is refused, and the refusal is logged
    assert env.cli("redteam", f"{RT_MODELS}:clean", "--data", str(path), principal="ingrid") != 0
    # bad input: one line, no traceback
    assert env.cli("redteam", f"{RT_MODELS}:broken", "--data", str(path), principal="tom") not in (0, 4)

# `make check` (the quick lane) leaves these out: the whole incident story end to end
pytestmark = pytest.mark.slow
