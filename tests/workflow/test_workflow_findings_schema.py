"""One findings schema everywhere: `check --json` and `screen --show --json` print findings that validate
against docs/findings.schema.json (jsonschema as the oracle), with whole values."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
import pytest
from workflow_helpers import Flow, write_csv

from dataward.cli import main

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

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


def test_detect_json_prints_findings_in_the_same_schema_and_shape_as_check(tmp_path: Path) -> None:
    """`detect --json` findings validate against the schema, with whole record lists and levels, and the
    report has check's shape: results per check (here: per detector) carrying their findings."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = (x[:, 0] > 0).astype(int)
    frame.loc[:9, "label"] = 1 - frame.loc[:9, "label"]  # ten flipped labels
    frame.loc[20:27, ["a", "b", "c"]] = 40.0  # eight far outliers
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    code, out = _stdout(["detect", str(data), "--json"])
    assert code == 0
    det = json.loads(out)
    code, out = _stdout(["check", str(data), "--json"])
    chk = json.loads(out)
    assert det["findings"], det["detectors"]
    for f in det["findings"] + [f for r in det["results"] for f in r["findings"]]:
        jsonschema.validate(f, SCHEMA)
        assert f["n_records"] == len(f["records"]) and isinstance(f["evidence"]["score"], float)
    shared = {"subject", "n_records", "max_severity", "finding_counts", "results"}
    assert shared <= set(det) and shared <= set(chk)
    assert {k for r in det["results"] for k in r} == {k for r in chk["results"] for k in r}
    per_check = [f["summary"] for r in det["results"] for f in r["findings"]]
    assert sorted(f["summary"] for f in det["findings"]) == sorted(per_check)
    assert det["finding_counts"][det["max_severity"]] >= 1
