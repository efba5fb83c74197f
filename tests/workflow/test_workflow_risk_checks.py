"""Source risk, the batch-check registry, and authorization of every workflow action."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from typing import Any

import pytest
from workflow_helpers import WITHOUT_DETECTION, Flow

from dataward.batches import BatchState, get_batch
from dataward.errors import AuthorizationError
from dataward.log.query import show_entries
from dataward.sources import add_source
from dataward.workflow import approval, audit, checks, screening
from dataward.workflow.risk import assess, tier_of


def test_kind_orders_risk_when_all_else_is_equal(flow: Flow) -> None:
    admin = flow.actor("admin")
    # a synthetic source that has not regenerated anything yet is not trusted for its label: it sits
    # between checkpoint and internal (a verified regeneration lowers it, tests/synthetic)
    kinds = ["web-scraped", "third-party", "checkpoint", "synthetic", "internal"]
    for k in kinds:
        add_source(flow.ws, admin, f"s-{k}", kind=k, origin="o", license="MIT", update_frequency="monthly")
    scores = [assess(flow.ws, f"s-{k}").score for k in kinds]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_history_raises_risk_and_is_explained(flow: Flow, tmp_path: Any) -> None:
    before = assess(flow.ws, "vendor")
    # a refused delivery (checksum mismatch) and a rejected batch
    bad = flow.tmp / "x.csv"
    bad.write_text("a,b\n1,2\n")
    sums = flow.tmp / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  x.csv\n")
    from dataward.acquire.acquire import acquire
    from dataward.errors import IntegrityError

    with pytest.raises(IntegrityError):
        acquire(flow.ws, flow.actor("ingrid"), "vendor", [bad], expect=sums)
    b = flow.batch(20)
    approval.reject(flow.ws, flow.actor("sam"), b.id, "garbage")
    after = assess(flow.ws, "vendor")
    points = {f.name: f.points for f in after.factors}
    assert points["refusals"] > 0 and points["rejections"] > 0
    assert after.score > before.score
    assert "1 refusals in the log" in after.explain() and "1 rejections in the log" in after.explain()
    assert tier_of(after.score) == after.tier
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert flow.cli("source", "list", "--by-risk", "--json") == 0
    listed = json.loads(buf.getvalue())
    assert [r["score"] for r in listed] == sorted((r["score"] for r in listed), reverse=True)
    assert {r["source"] for r in listed} == {"vendor", "house"} and all(r["factors"] for r in listed)


def test_tiers() -> None:
    assert [tier_of(s) for s in (0, 24.9, 25, 50, 74, 75, 100)] == [
        "low",
        "low",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]
    assert tier_of(30, {"medium": 40}) == "low"


def test_registry_has_one_adapter_per_engine() -> None:
    assert checks.names()[:3] == ["integrity", "detection", "screening"]
    with pytest.raises(Exception, match="unknown batch check"):
        checks.get("nope")


def test_engine_missing_or_crashing_is_a_value_not_an_exception(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, *a: Any) -> Any:
        if name == "dataward.screen.api":
            raise ModuleNotFoundError(name=name)
        if name == "dataward.detect.api":
            raise RuntimeError("boom")
        return real(name, *a)

    monkeypatch.setattr(checks.importlib, "import_module", fake)
    b = flow.batch(30)
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id)
    by = {c["name"]: c for c in rep.checks}
    assert by["integrity"]["status"] == "passed"
    assert by["screening"]["status"] == "skipped" and "not available" in by["screening"]["reason"]
    assert by["detection"]["status"] == "error" and "RuntimeError: boom" in by["detection"]["reason"]
    # the policy then refuses: screening is a required check that did not run
    from dataward.workflow.gate import evaluate

    assert any("required-checks" in f for f in evaluate(flow.ws, b.id).failing())


def test_detection_skips_formats_it_cannot_read(flow: Flow) -> None:
    p = flow.tmp / "notes.txt"
    p.write_text("one\ntwo\nthree\n")
    from dataward.acquire.acquire import acquire

    b = acquire(flow.ws, flow.actor("ingrid"), "vendor", [p])
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "detection"])
    det = rep.check("detection")
    assert det is not None and det["status"] == "skipped" and "format text" in det["reason"]


def test_detection_runs_through_the_registry(flow: Flow) -> None:
    b = flow.batch(80)
    opts = {"detection": {"label": "label", "text": "text", "detectors": ["text_triggers"]}}
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "detection"], options=opts)
    det = rep.check("detection")
    assert det is not None and det["status"] == "passed", det
    assert det["stats"]["detectors"] == {"text_triggers": 1}


def test_engine_results_are_mapped_to_batch_record_numbers(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags and findings of every file land on the right record of the whole batch."""
    import types

    import numpy as np

    from dataward.detect.interface import Finding

    calls: list[dict[str, Any]] = []
    monkeypatch.setenv("DATAWARD_SANDBOX", "0")  # the fake engine records its calls in this process

    def detect(path: Any, **kw: Any) -> Any:
        calls.append(kw)
        n = sum(1 for _ in open(path)) - 1
        flagged = np.zeros(n, dtype=bool)
        flagged[[1, 3]] = True
        finding = Finding.scored(
            check="fake", kind="trigger", summary="a trigger", records=(1, 3), evidence={}, score=0.95
        )
        meta = ({"name": "fake", "skipped": None},)
        return types.SimpleNamespace(n_records=n, flagged=flagged, findings=(finding,), detectors=meta)

    real = importlib.import_module
    fake_api = types.SimpleNamespace(detect=detect)
    monkeypatch.setattr(
        checks.importlib,
        "import_module",
        lambda name, *a: fake_api if name == "dataward.detect.api" else real(name, *a),
    )
    from workflow_helpers import write_csv

    from dataward.acquire.acquire import acquire

    paths = [write_csv(flow.tmp / "a.csv", 10), write_csv(flow.tmp / "b.csv", 7)]
    b = acquire(flow.ws, flow.actor("ingrid"), "vendor", paths)
    opts = {"detection": {"label": "label", "seed": 3}}
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "detection"], options=opts)
    offset = {f.name: sum(g.record_count for g in b.files if g.position < f.position) for f in b.files}
    expected = sorted(o + r for o in offset.values() for r in (1, 3))
    assert list(rep.flagged_records) == expected
    assert rep.findings_by_severity["critical"] == 2  # detector severity 0.95 -> critical
    assert sorted(r for f in rep.findings for r in f.records) == expected
    assert calls == [{"format": "csv", "seed": 3, "progress": None, "label": "label"}] * 2


def test_each_action_is_authorized(flow: Flow) -> None:
    """At every stage, each principal whose roles do not allow the step is denied, logged, and changes nothing."""
    ws = flow.ws
    bid = flow.batch(60, by="carl").id  # carl is an approver who acquired this batch himself

    def denied(who: str, call: Any) -> None:
        state = get_batch(ws, bid).state
        with pytest.raises(AuthorizationError):
            call(flow.actor(who))
        assert get_batch(ws, bid).state == state
        assert show_entries(ws, action="access.denied", subject=f"batch:{bid}", limit=1)[0].details["principal"] == who

    def first(a: Any) -> list[audit.Decision]:
        return [audit.Decision(audit.sample_items(ws, bid)[0].record, "ok")]

    for who in ("ingrid", "rita", "alice"):
        denied(who, lambda a: screening.screen_batch(ws, a, bid, checks=["integrity"]))
    screening.screen_batch(ws, flow.actor("sam"), bid, checks=["integrity", "screening"])
    for who in ("alice", "ingrid"):
        denied(who, lambda a: audit.draw_sample(ws, a, bid, size=5))
    audit.draw_sample(ws, flow.actor("rita"), bid, size=40)
    for who in ("sam", "alice", "ingrid"):
        denied(who, lambda a: audit.record_decisions(ws, a, bid, first(a)))
    items = audit.sample_items(ws, bid)
    audit.record_decisions(ws, flow.actor("rita"), bid, [audit.Decision(i.record, "ok") for i in items])
    for who in ("sam", "alice"):
        denied(who, lambda a: audit.complete_audit(ws, a, bid))
    audit.complete_audit(ws, flow.actor("rita"), bid)
    for who in ("ingrid", "rita", "sam", "carl"):
        denied(who, lambda a: approval.approve(ws, a, bid))
    for who in ("ingrid", "rita"):
        denied(who, lambda a: approval.reject(ws, a, bid, "no"))
    assert approval.approve(ws, flow.actor("alice"), bid).state == BatchState.APPROVED


def test_policy_separation_of_duties_beyond_the_acquirer(flow: Flow) -> None:
    from dataward import principals
    from dataward.model.roles import Grant, Role
    from dataward.workflow.approval_policy import set_policy

    admin = flow.actor("admin")
    principals.grant_roles(flow.ws, admin, "sam", [Grant(Role.APPROVER)])
    text = WITHOUT_DETECTION.replace(
        "[tiers.medium]\n", '[tiers.medium]\nseparation_of_duties = ["acquirer", "screener"]\n'
    )
    set_policy(flow.ws, admin, text, where="t")
    b = flow.batch(60)
    screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "screening"])
    audit.draw_sample(flow.ws, flow.actor("rita"), b.id, size=40)
    items = audit.sample_items(flow.ws, b.id)
    audit.record_decisions(flow.ws, flow.actor("rita"), b.id, [audit.Decision(i.record, "ok") for i in items])
    audit.complete_audit(flow.ws, flow.actor("rita"), b.id)
    with pytest.raises(AuthorizationError, match="screened batch"):
        approval.approve(flow.ws, flow.actor("sam"), b.id)
    assert approval.approve(flow.ws, flow.actor("alice"), b.id).state == BatchState.APPROVED


def test_licence_recorded_on_the_source_is_a_declaration_for_the_suite(flow: Flow) -> None:
    add_source(flow.ws, flow.actor("admin"), "nolic", kind="third-party", origin="o")
    add_source(flow.ws, flow.actor("admin"), "gpl", kind="third-party", origin="o", license="GPL-3.0-only")
    kinds = {}
    for source in ("vendor", "nolic", "gpl"):
        b = flow.batch(30, source=source)
        rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "screening"])
        kinds[source] = sorted((f.kind, f.severity) for f in rep.findings if f.check == "licences")
    assert kinds["vendor"] == []
    assert kinds["nolic"] == [("missing_licence", "high")]
    assert kinds["gpl"] == [("licence_not_allowed", "high")]


def test_flagged_count_includes_records_an_engine_counted_but_did_not_list(flow: Flow) -> None:
    """The suite caps a finding's record list; the flagged count (what the policy reads) must not shrink."""
    from dataward.workflow.checks import MAX_FINDING_RECORDS

    b = flow.batch(12_000, pii=True)  # 1200 e-mail records: more than the suite lists per finding
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "screening"])
    pii = next(f for f in rep.findings if f.check == "pii")
    assert pii.n_records == 1200 and rep.pii_counts == {"email": 1200}
    assert len(rep.flagged_records) < 1200 <= rep.flagged_count
    again = screening.latest_report(flow.ws, b.id)
    assert again.flagged_count == rep.flagged_count and again.flagged_records == rep.flagged_records
    assert len(pii.to_json()["records"]) <= MAX_FINDING_RECORDS
