"""One findings schema everywhere: `check --json` and `screen --show --json` print findings that validate
against docs/findings.schema.json (jsonschema as the oracle), with whole values."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
from workflow_helpers import Flow, write_csv

from dataward.cli import main

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "findings.schema.json").read_text())


def _stdout(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def test_check_and_screen_show_print_one_findings_shape(flow: Flow, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    data = write_csv(tmp_path / "pii.csv", 40, pii=True)
    code, out = _stdout(["check", str(data), "--checks", "pii", "--json"])
    assert code == 1  # PII blocks by default: a failed gate
    checked = [f for r in json.loads(out)["results"] for f in r["findings"]]
    assert checked
    b = flow.batch(40, pii=True)
    assert flow.cli("screen", b.id, "--check", "integrity", "--check", "screening", who="sam") == 0
    code, out = _stdout(["-w", str(flow.ws.path), "--as", "sam", "screen", b.id, "--show", "--json"])
    assert code == 0
    shown = json.loads(out)["findings"]
    assert shown
    for f in checked + shown:
        jsonschema.validate(f, SCHEMA)
    assert {(f["kind"], f["n_records"]) for f in checked} & {(f["kind"], f["n_records"]) for f in shown}
