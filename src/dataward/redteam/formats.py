"""Red-team reports for CI systems: JUnit XML, SARIF 2.1.0 and a Markdown summary (plus the JSON report)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from dataward.redteam._gate import Check, RedteamReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
CATEGORIES = ("trigger", "shift", "consistency")
RULES = {
    "trigger": ("DW-RT001", "backdoor-trigger", "A candidate trigger moves many records to one output."),
    "shift": ("DW-RT002", "distribution-shift", "Label-preserving perturbations degrade the model too much."),
    "consistency": ("DW-RT003", "label-consistency", "Accuracy on the clean set is too low or dropped."),
}


def junit_xml(report: RedteamReport) -> str:
    """The report as JUnit XML: one test case per check, failures as failures (for CI dashboards)."""
    root = ET.Element("testsuites", name="dataward redteam")
    root.set("tests", str(len(report.checks)))
    root.set("failures", str(len(report.failures)))
    root.set("errors", "0")
    root.set("time", f"{report.seconds:.3f}")
    for cat in CATEGORIES:
        checks = [c for c in report.checks if c.category == cat]
        suite = ET.SubElement(root, "testsuite", name=f"redteam.{cat}")
        suite.set("tests", str(len(checks)))
        suite.set("failures", str(sum(not c.passed for c in checks)))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", f"{sum(c.seconds for c in checks):.3f}")
        for c in checks:
            case = ET.SubElement(suite, "testcase", classname=f"redteam.{cat}", name=c.name, time=f"{c.seconds:.3f}")
            if not c.passed:
                fail = ET.SubElement(case, "failure", message=c.message, type=RULES[cat][1])
                fail.text = json.dumps(c.details, indent=1, default=str)[:4000]
            else:
                ET.SubElement(case, "system-out").text = c.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _result(c: Check, model_uri: str) -> dict[str, Any]:
    rule_id = RULES[c.category][0]
    out: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": list(RULES).index(c.category),
        "kind": "pass" if c.passed else "fail",
        "level": "none" if c.passed else "error",
        "message": {"text": c.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": model_uri}},
                "logicalLocations": [{"name": c.name, "kind": "object"}],
            }
        ],
        "properties": {"check": c.name, "details": json.loads(json.dumps(c.details, default=str))},
    }
    return out


def sarif(report: RedteamReport) -> dict[str, Any]:
    """The report as SARIF 2.1.0: one result per failed check, located at the model."""
    from dataward import __version__

    model = report.model
    uri = str(model.get("name") or "model")
    if "://" not in uri:
        uri = Path(uri).as_posix() if uri.endswith(".onnx") else f"model:{uri}"
    artifact: dict[str, Any] = {"location": {"uri": uri}}
    if model.get("sha256"):
        artifact["hashes"] = {"sha-256": model["sha256"]}
    rules = [
        {
            "id": rid,
            "name": name,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": "error"},
        }
        for rid, name, text in RULES.values()
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dataward-redteam",
                        "version": str(__version__),
                        "informationUri": "https://example.invalid/dataward/docs/redteam",
                        "rules": rules,
                    }
                },
                "artifacts": [artifact],
                "invocations": [{"executionSuccessful": True, "exitCode": 0 if report.passed else 1}],
                "results": [_result(c, uri) for c in report.checks],
                "properties": {
                    "passed": report.passed,
                    "accuracy": report.accuracy,
                    "data": report.data,
                    "clean": report.clean,
                },
            }
        ],
    }


def markdown(report: RedteamReport) -> str:
    """The report as Markdown: the verdict and the model, the failures with examples, a table of triggers."""
    m = report.model
    status = "PASSED" if report.passed else "FAILED"
    lines = [
        f"# Red team: {status}",
        "",
        f"- model: `{m.get('name')}` ({m.get('kind')}), sha256 `{m.get('sha256') or 'unknown'}`",
        f"- data: `{report.data}`; clean set: `{report.clean}`",
        f"- checks: {len(report.checks)}, failed: {len(report.failures)}; {report.seconds:.1f} s",
    ]
    if report.accuracy is not None:
        lines.append(f"- clean accuracy: {report.accuracy:.3f}")
    if report.previous:
        lines.append(
            f"- previous model: `{str(report.previous.get('sha256'))[:16]}` accuracy {report.previous.get('accuracy')}"
        )
    lines += ["", "## Failures", ""]
    if not report.failures:
        lines.append("none")
    for c in report.failures:
        lines.append(f"- **{c.category}** {c.name}: {c.message}")
        for ex in c.details.get("examples", [])[:3]:
            lines.append(f"  - `{ex['triggered']}`: {ex['clean']} -> {ex['output']}")
    lines += [
        "",
        "## Triggers",
        "",
        "| trigger | origin | ASR | control | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in report.checks:
        if c.category == "trigger":
            t = c.details["trigger"]
            lines.append(
                f"| `{t['value']}` | {t['origin']} | {c.details['asr']:.1%} | {c.details['control']:.1%} | "
                f"{c.details['target']} | {'pass' if c.passed else '**FAIL**'} |"
            )
    lines += [
        "",
        "## Distribution shift",
        "",
        "| perturbation | " + " | ".join(str(p["strength"]) for p in next(iter(report.curves.values()), [])) + " |",
    ]
    if report.curves:
        lines.append("|---" * (1 + len(next(iter(report.curves.values())))) + "|")
    for name, curve in report.curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{p['score']:.3f}" for p in curve) + " |")
    if report.confusion:
        labels = sorted({k for row in report.confusion.values() for k in row} | set(report.confusion))
        lines += ["", "## Confusion (rows: expected, columns: predicted)", ""]
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---" * (len(labels) + 1) + "|")
        for t in labels:
            row = report.confusion.get(t, {})
            lines.append(f"| {t} | " + " | ".join(str(row.get(p, 0)) for p in labels) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(report: RedteamReport, out_dir: Path) -> dict[str, str]:
    """report.json, junit.xml, report.sarif and summary.md under ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "redteam.json",
        "junit": out_dir / "redteam-junit.xml",
        "sarif": out_dir / "redteam.sarif",
        "markdown": out_dir / "redteam.md",
    }
    paths["json"].write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    paths["junit"].write_text(junit_xml(report), encoding="utf-8")
    paths["sarif"].write_text(json.dumps(sarif(report), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}
