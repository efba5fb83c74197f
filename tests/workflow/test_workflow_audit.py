"""Label audits: interval maths, sampling strata, decisions (import, review), estimates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from workflow_helpers import WITHOUT_DETECTION, Flow

from dataward.errors import ConflictError, InputError
from dataward.workflow import audit, screening
from dataward.workflow.audit import interval, sample_size, size_for_margin, size_to_pass


def test_clopper_pearson_matches_closed_forms_and_scipy() -> None:
    lo, hi = interval(0, 10, 0.95)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    lo, hi = interval(10, 10, 0.95)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10))
    for k, n in ((3, 40), (17, 250), (1, 1000)):
        ref = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert interval(k, n) == pytest.approx((ref.low, ref.high))


def test_wilson_matches_scipy() -> None:
    for k, n in ((0, 20), (3, 40), (50, 100)):
        ref = binomtest(k, n).proportion_ci(0.9, method="wilson")
        assert interval(k, n, 0.9, "wilson") == pytest.approx((ref.low, ref.high))


def test_sample_sizes() -> None:
    assert sample_size(10**9, 0.05, 0.95, 0.5) == 385  # the textbook 384.15 rounded up
    assert sample_size(1000, 0.05, 0.95, 0.5) == 278  # finite population correction
    assert sample_size(30, 0.01) == 30
    n = size_for_margin(0.05, 0.02)
    assert n is not None

    def half_width(m: int) -> float:
        k = round(0.05 * m)
        lo, hi = interval(k, m)
        return max(hi - k / m, k / m - lo)

    assert half_width(n) <= 0.02 < half_width(n - 40)
    m = size_to_pass(0.02, 0.05)
    assert m is not None and interval(round(0.02 * m), m)[1] <= 0.05 < interval(round(0.02 * (m - 20)), m - 20)[1]
    assert size_to_pass(0.06, 0.05) is None


def test_parse_decision() -> None:
    assert audit.parse_decision("wrong-label:cat") == ("wrong-label", "cat")
    assert audit.parse_decision(" OK ") == ("ok", None)
    for bad in ("fine", "wrong-label", "ok:cat", "wrong-label: "):
        with pytest.raises(InputError):
            audit.parse_decision(bad)


def _screened_with_flags(flow: Flow, n: int = 200) -> str:
    b = flow.batch(n, pii=True)  # every 10th record carries an e-mail address: flagged by screening
    screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity", "screening"])
    return b.id


def test_sample_has_a_uniform_part_and_a_separate_flagged_part(flow: Flow) -> None:
    bid = _screened_with_flags(flow)
    report = screening.latest_report(flow.ws, bid)
    assert report.flagged_records == tuple(range(0, 200, 10))
    s = audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=50)
    items = audit.sample_items(flow.ws, bid)
    random = [i.record for i in items if i.stratum == "random"]
    flagged = [i.record for i in items if i.stratum == "flagged"]
    assert len(random) == 50 == s.random_size and len(set(random)) == 50
    assert set(flagged) == set(report.flagged_records) - set(random)  # every flagged record not drawn at random
    assert all(0 <= r < 200 for r in random)
    # the leaf digests are the manifest's
    leaves = flow.ws.objects.read_bytes("meta", str(flow.ws and _records_digest(flow, bid)))
    for i in items:
        assert leaves[32 * i.record : 32 * i.record + 32].hex() == i.record_digest
    # enlarging keeps what was drawn and adds uniform records; flagged ones drawn now move to the random part
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=120)
    items2 = audit.sample_items(flow.ws, bid)
    random2 = {i.record for i in items2 if i.stratum == "random"}
    assert len(random2) == 120 and set(random) <= random2
    assert {i.record for i in items2} == random2 | set(report.flagged_records)
    with pytest.raises(ConflictError, match="already has 120"):
        audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=100)


def _records_digest(flow: Flow, bid: str) -> str:
    from dataward.batches import get_batch

    digest = get_batch(flow.ws, bid).files[0].records_digest
    assert digest is not None
    return digest


def test_sample_size_follows_the_risk_tier(flow: Flow) -> None:
    from dataward.sources import add_source

    add_source(flow.ws, flow.actor("admin"), "scrape", kind="web-scraped", origin="crawl")  # high tier
    sizes = {}
    for source in ("house", "scrape"):
        b = flow.batch(2000, source=source)
        screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity"])
        sizes[source] = audit.draw_sample(flow.ws, flow.actor("rita"), b.id)
    assert sizes["house"].tier == "low" and sizes["scrape"].tier == "high"
    assert sizes["house"].random_size == sample_size(2000, 0.08, 0.95, 0.10)
    assert sizes["scrape"].random_size == sample_size(2000, 0.03, 0.95, 0.10) > sizes["house"].random_size


def test_estimate_keeps_flagged_records_out(flow: Flow) -> None:
    bid = _screened_with_flags(flow)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=40)
    items = audit.sample_items(flow.ws, bid)
    ds = [audit.Decision(i.record, "malicious" if i.stratum == "flagged" else "ok") for i in items]
    rnd = [i for i in items if i.stratum == "random"]
    ds[items.index(rnd[0])] = audit.Decision(rnd[0].record, "unsure")
    audit.record_decisions(flow.ws, flow.actor("rita"), bid, ds)
    e = audit.estimate(flow.ws, bid, method="wilson")
    assert e.random.decided == 40 and e.errors == 1 and e.rate == pytest.approx(1 / 40)  # unsure counts
    assert e.flagged.malicious == e.flagged.size > 0 and e.flagged_rate == 1.0
    assert e.malicious == e.flagged.size
    assert (e.lower, e.upper) == pytest.approx(interval(1, 40, 0.95, "wilson"))
    assert e.needed_for_margin is not None and e.needed_for_margin > 40
    # later decisions win
    audit.record_decisions(flow.ws, flow.actor("rita"), bid, [audit.Decision(rnd[0].record, "ok")])
    assert audit.estimate(flow.ws, bid).errors == 0


def test_decisions_file_errors_name_the_line(flow: Flow, tmp_path: Path) -> None:
    bid = _screened_with_flags(flow, 60)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=5)
    items = audit.sample_items(flow.ws, bid)
    sample = items
    f = tmp_path / "d.csv"
    f.write_text(f"record,decision\n{items[0].record},ok\n{items[1].record},wrong\n")
    with pytest.raises(InputError, match=r"d.csv line 3: 'wrong' is not a decision"):
        audit.read_decisions_file(f, sample)
    f.write_text(f"record,decision,digest\n{items[0].record},ok,{'0' * 64}\n")
    with pytest.raises(InputError, match="line 2: digest of record"):
        audit.read_decisions_file(f, sample)
    j = tmp_path / "d.jsonl"
    j.write_text(json.dumps({"record": items[0].record, "decision": "wrong-label", "new_label": "pos"}) + "\n{oops\n")
    with pytest.raises(InputError, match=r"d\.jsonl line 2: not JSON"):
        audit.read_decisions_file(j, sample)
    j.write_text(json.dumps({"record": 10**6, "decision": "ok"}) + "\n")
    with pytest.raises(InputError, match="not in the audit sample"):
        audit.record_decisions(flow.ws, flow.actor("rita"), bid, audit.read_decisions_file(j, sample))
    assert flow.cli("audit", "import", bid, str(j), who="rita") == InputError.exit_code
    j.write_text(json.dumps({"record": items[0].record, "decision": "wrong-label", "new_label": "pos"}) + "\n")
    (d,) = audit.read_decisions_file(j, sample)
    assert (d.decision, d.new_label) == ("wrong-label", "pos")


def test_interactive_review(flow: Flow) -> None:
    from dataward.cli import _register_commands
    from dataward.cli._app import cli

    bid = _screened_with_flags(flow, 60)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=4)
    _register_commands()
    args = ["-w", str(flow.ws.path), "--as", "rita", "audit", "review", bid]
    # ok, wrong label (then the label), skip, malicious, then quit
    res = CliRunner().invoke(cli, args, input="ow" + "neg\n" + "nmq", obj={})
    assert res.exit_code == 0, res.output
    assert "review number" in res.output and "digest verified" in res.output
    items = audit.sample_items(flow.ws, bid)
    decided = [(i.decision, i.new_label) for i in items]
    assert decided[:4] == [("ok", None), ("wrong-label", "neg"), (None, None), ("malicious", None)]
    assert "3 decision(s) recorded" in res.output
    # --json: the decisions made, as JSON on stdout (the review itself goes to stderr)
    res = CliRunner().invoke(cli, [*args, "--json"], input="u", obj={})
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["decisions"] == [{"record": items[2].record, "decision": "unsure", "new_label": None}]


def test_review_shows_rows_and_checks_digests(flow: Flow) -> None:
    from dataward.batches import get_batch
    from dataward.workflow.review import read_record

    bid = _screened_with_flags(flow, 30)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=30)
    batch = get_batch(flow.ws, bid)
    item = next(i for i in audit.sample_items(flow.ws, bid) if i.record == 7)
    view = read_record(flow.ws, batch, item)
    assert view.verified is True and view.kind == "row"
    assert view.value == {"text": "review number 7 was great", "label": "pos"}


def test_audit_report_cli_says_what_a_tighter_margin_needs(flow: Flow) -> None:
    import contextlib
    import io

    bid = _screened_with_flags(flow, 300)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=60)
    items = audit.sample_items(flow.ws, bid)
    audit.record_decisions(flow.ws, flow.actor("rita"), bid, [audit.Decision(i.record, "ok") for i in items])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert flow.cli("audit", "report", bid, "--margin", "0.01", "--json", who="rita") == 0
    e = json.loads(buf.getvalue())
    assert e["error_rate"] == 0 and e["interval"][1] == pytest.approx(1 - 0.025 ** (1 / 60))
    assert e["margin_target"] == 0.01 and e["needed_for_margin"] == math.ceil(math.log(0.025) / math.log(0.99))


@given(
    n=st.integers(1, 400),
    frac=st.floats(0, 1),
    conf=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    method=st.sampled_from(["clopper-pearson", "wilson"]),
)
@settings(max_examples=150, deadline=None)
def test_intervals_contain_the_rate_and_widen_with_confidence(n: int, frac: float, conf: float, method: str) -> None:
    k = round(frac * n)
    lo, hi = interval(k, n, conf, method)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    lo2, hi2 = interval(k, n, min(0.999, conf + 0.009), method)
    assert lo2 <= lo + 1e-12 and hi2 >= hi - 1e-12


@given(population=st.integers(1, 5000), need=st.integers(0, 300), seed=st.integers(0, 2**32), data=st.data())
@settings(max_examples=100, deadline=None)
def test_uniform_draw_is_distinct_in_range_and_avoids_excluded(
    population: int, need: int, seed: int, data: st.DataObject
) -> None:
    import numpy as np

    from dataward.workflow.audit import _uniform

    exclude = set(data.draw(st.lists(st.integers(0, population - 1), max_size=50)))
    got = _uniform(np.random.default_rng(seed), population, need, exclude)
    assert len(got) == len(set(got)) == min(need, population - len(exclude))
    assert all(0 <= r < population and r not in exclude for r in got)


def test_record_views_for_jsonl_and_files(flow: Flow) -> None:
    from dataward.acquire.acquire import acquire
    from dataward.batches import get_batch
    from dataward.workflow.review import read_record

    j = flow.tmp / "chat.jsonl"
    j.write_text("\n".join(json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(5)) + "\n\n")
    img = flow.tmp / "cat.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    b = acquire(flow.ws, flow.actor("ingrid"), "house", [j, img])
    screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=["integrity"])
    audit.draw_sample(flow.ws, flow.actor("rita"), b.id, size=6)
    batch = get_batch(flow.ws, b.id)
    views = {i.record: read_record(flow.ws, batch, i) for i in audit.sample_items(flow.ws, b.id)}
    chat = [v for v in views.values() if v.file == "chat.jsonl"]
    assert len(chat) == 5 and all(v.kind == "json" and v.verified for v in chat)
    assert all(v.value == {"prompt": f"q{v.file_record}", "response": f"a{v.file_record}"} for v in chat)
    png = next(v for v in views.values() if v.kind == "file")
    assert png.file == "cat.png" and png.verified and png.path and Path(png.path).read_bytes() == img.read_bytes()


def test_read_records_reads_each_file_once_and_agrees_with_read_record(flow: Flow) -> None:
    from dataward.batches import get_batch
    from dataward.workflow.review import read_record, read_records

    bid = _screened_with_flags(flow, 120)
    audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=30)
    batch = get_batch(flow.ws, bid)
    items = audit.sample_items(flow.ws, bid)
    many = read_records(flow.ws, batch, items)
    assert set(many) == {i.record for i in items}
    for i in items[:8]:
        assert many[i.record] == read_record(flow.ws, batch, i)
        assert many[i.record].value["text"].startswith(f"review number {i.record} ")


def _with_findings(monkeypatch: pytest.MonkeyPatch, flow: Flow, bid: str, findings: list[object]) -> None:
    """The batch's real screening report, with the given findings in it (as a detector would add them)."""
    import dataclasses

    real = screening.latest_report(flow.ws, bid)
    flagged = sorted(set(real.flagged_records) | {r for f in findings for r in f.records})  # type: ignore[attr-defined]
    fake = dataclasses.replace(real, findings=tuple(findings), flagged_records=tuple(flagged))
    monkeypatch.setattr(screening, "latest_report", lambda ws, b: fake)


def _set_max_flagged(flow: Flow, cap: int) -> None:
    from dataward.workflow.approval_policy import set_policy

    text = WITHOUT_DETECTION.replace("max_flagged = 100", f"max_flagged = {cap}", 1)
    set_policy(flow.ws, flow.actor("admin"), text, where="test policy")


def test_every_record_of_a_critical_finding_is_sampled_and_reviewed_first(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 records behind a critical trigger finding and a flagged cap of 5: all 20 are in the sample (the cap
    only limits medium and lower), ahead of the medium ones, and the summary states each risk stratum."""
    from dataward.workflow.checks import NormalFinding

    bid = _screened_with_flags(flow, 400)
    critical = NormalFinding(
        "detect", "detection", "trigger", "critical", "trigger 'cf' -> label 'pos'", None, tuple(range(300, 320)), 20
    )
    medium = NormalFinding("detect", "detection", "outlier", "medium", "outliers", None, tuple(range(5, 400, 7)), 57)
    _with_findings(monkeypatch, flow, bid, [medium, critical])
    _set_max_flagged(flow, 5)
    s = audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=10)
    items = audit.sample_items(flow.ws, bid)
    assert set(range(300, 320)) <= {i.record for i in items}
    drawn_at_random = {i.record for i in items if i.stratum == "random"} & set(range(300, 320))
    risk = s.params["risk"]
    assert risk["high"]["population"] == 20 - len(drawn_at_random) and risk["high"]["complete"] is True
    assert risk["medium"]["sampled"] == 0 and risk["medium"]["population"] > 0  # the cap went to the high ones
    assert s.flagged_size == risk["high"]["sampled"]


def test_a_high_stratum_over_the_cap_is_sampled_to_a_stated_bound(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.workflow.checks import NormalFinding

    bid = _screened_with_flags(flow, 3000)
    high = NormalFinding("detect", "detection", "trigger", "high", "t", None, tuple(range(0, 3000, 2)), 1500)
    _with_findings(monkeypatch, flow, bid, [high])
    _set_max_flagged(flow, 10)
    s = audit.draw_sample(flow.ws, flow.actor("rita"), bid, size=10)
    h = s.params["risk"]["high"]
    assert not h["complete"] and h["bad_fraction_bound"] == {"margin": 0.05, "confidence": 0.95}
    assert h["sampled"] == sample_size(h["population"], 0.05, 0.95, 0.5) > 10
