"""Policy files: validation with line numbers, rule composition, the policy under log control."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from workflow_helpers import Flow

from dataward.errors import AuthorizationError, PolicyError
from dataward.workflow.approval_policy import (
    AllOf,
    AnyOf,
    PolicyContext,
    Rule,
    RuleResult,
    default_policy_text,
    find_line,
    licence_allowed,
    load_policy,
    parse_policy,
    set_policy,
)


def test_default_policy_parses_with_every_tier() -> None:
    p = parse_policy(default_policy_text(), "default")
    assert set(p.tiers) == {"low", "medium", "high", "critical"}
    assert p.tier("critical").approvals == 2 and "auditor" in p.tier("critical").separation_of_duties
    assert p.tier("medium").approvals == 1  # defaults apply where a tier says nothing
    assert p.tier("low").audit.margin == 0.08 and p.tier("low").audit.confidence == 0.95
    assert p.rotation_max_age_days == 90 and p.risk_thresholds["high"] == 50


def test_syntax_error_names_the_line() -> None:
    text = default_policy_text().replace("approvals = 2", "approvals = = 2", 1)
    line = text.splitlines().index("approvals = = 2") + 1
    with pytest.raises(PolicyError, match=f"line {line}"):
        parse_policy(text, "p.toml")


@pytest.mark.parametrize(
    ("old", "new", "path", "what"),
    [
        ("max_flagged_fraction = 0.05", "max_flagged_fraction = 2", "tiers.high.max_flagged_fraction", "between 0"),
        ('block_severity = "high"', 'block_severity = "loud"', "tiers.high.block_severity", "one of"),
        ("approvals = 2", "aprovals = 2", "tiers.high.aprovals", "unknown setting"),
        ("margin = 0.03", "margin = 0.9", "tiers.high.audit.margin", "0.001"),
        (
            'separation_of_duties = ["acquirer", "screener"]',
            'separation_of_duties = ["screener"]',
            "tiers.high.separation_of_duties",
            "includes acquirer",
        ),
    ],
)
def test_schema_error_names_key_path_and_line(old: str, new: str, path: str, what: str) -> None:
    text = default_policy_text().replace(old, new, 1)
    line = text.splitlines().index(new) + 1
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.toml")
    assert f"p.toml:{line}: {path}:" in err.value.message and what in err.value.message


def test_unknown_tier_and_section() -> None:
    with pytest.raises(PolicyError, match=r"p.toml:3: tiers.extreme: unknown tier"):
        parse_policy("version = 1\n\n[tiers.extreme]\napprovals = 1\n", "p.toml")
    with pytest.raises(PolicyError, match=r"p.toml:2: rules: unknown section"):
        parse_policy("version = 1\n[rules]\n", "p.toml")
    with pytest.raises(PolicyError, match="thresholds must rise"):
        parse_policy("version = 1\n[risk]\nmedium = 60\nhigh = 50\n", "p.toml")


def test_find_line_handles_dotted_keys_and_headers() -> None:
    text = "version = 1\n[tiers.low]\naudit.margin = 0.1\n\n[tiers.high.audit]\nmargin = 0.2\n"
    assert find_line(text, ["tiers", "low", "audit", "margin"]) == 3
    assert find_line(text, ["tiers", "high", "audit", "margin"]) == 6
    assert find_line(text, ["tiers", "high", "audit"]) == 5


class _Fixed(Rule):
    def __init__(self, name: str, ok: bool) -> None:
        self.name, self.ok = name, ok

    def evaluate(self, ctx: PolicyContext) -> RuleResult:
        return RuleResult(self.name, self.ok, "fixed")


def test_all_of_and_any_of_compose() -> None:
    ctx = None  # the fixed rules ignore it
    r = AllOf([_Fixed("a", True), AnyOf([_Fixed("b", False), _Fixed("c", True)], name="bc"), _Fixed("d", False)])
    res = r.evaluate(ctx)  # type: ignore[arg-type]
    assert not res.passed and [f.rule for f in res.failures()] == ["d"]
    assert res.children[1].passed and res.children[1].explanation == "c passes"
    none = AnyOf([_Fixed("x", False), _Fixed("y", False)]).evaluate(ctx)  # type: ignore[arg-type]
    assert not none.passed and [f.rule for f in none.failures()] == ["any-of"]
    assert AllOf([]).evaluate(ctx).passed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("MIT", True),
        ("GPL-3.0-only", False),
        ("MIT OR GPL-3.0-only", True),
        ("MIT AND GPL-3.0-only", False),
        ("(MIT OR GPL-3.0-only) AND Apache-2.0", True),
        ("Apache-2.0 WITH LLVM-exception", True),
    ],
)
def test_licence_allow_list_semantics(expr: str, ok: bool) -> None:
    assert licence_allowed(expr, ["MIT", "Apache-2.0"])[0] is ok


def test_policy_is_under_log_control(default_flow: Flow) -> None:
    flow = default_flow
    ws = flow.ws
    assert load_policy(ws).where == "default policy"
    assert flow.cli("policy", "init", who="admin") == 0
    assert flow.cli("policy", "init", who="admin") == 6  # exists: --force needed
    p = load_policy(ws)
    path = ws.path / "policy.toml"
    path.write_text(path.read_text().replace("max_malicious = 0", "max_malicious = 1000"))
    with pytest.raises(PolicyError, match="changed outside dataward"):
        load_policy(ws)
    assert flow.cli("doctor", who="admin") == PolicyError.exit_code  # doctor reads the policy too
    # only admins adopt a policy
    with pytest.raises(AuthorizationError):
        set_policy(ws, flow.actor("alice"), path.read_text(), where="x")
    assert flow.cli("policy", "set", str(path), who="admin") == 0
    assert load_policy(ws).digest != p.digest and load_policy(ws).tier("low").max_malicious == 1000
    path.unlink()
    with pytest.raises(PolicyError, match="is missing"):
        load_policy(ws)


def test_doctor_uses_the_policy_key_age(flow: Flow) -> None:
    text = default_policy_text().replace("rotation_max_age_days = 90", "rotation_max_age_days = 7")
    set_policy(flow.ws, flow.actor("admin"), text, where="t")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert flow.cli("doctor", "--json", who="admin") == 0
    assert json.loads(buf.getvalue())["rotation_max_age_days"] == 7


def test_policy_validate_and_show(flow: Flow, tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.toml"
    bad.write_text("version = 1\n[defaults]\npii_allowed = 'sometimes'\n")
    assert flow.cli("policy", "validate", str(bad)) == PolicyError.exit_code
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert flow.cli("policy", "show", "--json") == 0
    assert json.loads(buf.getvalue())["tiers"]["high"]["approvals"] == 2


def test_every_tier_of_the_default_policy_requires_detection() -> None:
    p = parse_policy(default_policy_text(), "default")
    for name in ("low", "medium", "high", "critical"):
        assert {"integrity", "screening", "detection"} <= set(p.tier(name).required_checks), name


def test_a_batch_screened_without_detection_fails_required_checks_by_name(default_flow: Flow) -> None:
    """The screener runs `screen --check screening` under the default policy: approval is refused, and the
    rule names the check that did not run (no tier lets it through silently)."""
    from dataward.workflow import approval, audit, screening
    from dataward.workflow.gate import evaluate

    flow = default_flow
    for source in ("house", "vendor"):  # low and medium tier
        b = flow.batch(40, source=source)
        screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "screening"])
        audit.draw_sample(flow.ws, flow.actor("rita"), b.id, size=5)
        items = audit.sample_items(flow.ws, b.id)
        audit.record_decisions(flow.ws, flow.actor("rita"), b.id, [audit.Decision(i.record, "ok") for i in items])
        audit.complete_audit(flow.ws, flow.actor("rita"), b.id)
        rules = {c["rule"]: c for c in evaluate(flow.ws, b.id).to_json()["rules"]["children"]}
        assert rules["required-checks"]["passed"] is False
        assert "detection (not run)" in rules["required-checks"]["explanation"]
        with pytest.raises(PolicyError, match=r"required-checks .*detection \(not run\)"):
            approval.approve(flow.ws, flow.actor("alice"), b.id)
