"""The gate end to end: screen -> audit -> policy -> approve, no skipped state, signed and verifiable."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey
from sqlalchemy import select
from workflow_helpers import WITHOUT_DETECTION, Flow

from dataward import lifecycle
from dataward.batches import BatchState, get_batch
from dataward.errors import ConflictError, IntegrityError, PolicyError
from dataward.log.query import show_entries
from dataward.store import schema
from dataward.workflow import approval, audit, gate, screening
from dataward.workspace import Workspace

FAST = ["integrity", "screening"]


def _decide_all(flow: Flow, batch_id: str, wrong: int = 0, who: str = "rita") -> None:
    items = audit.sample_items(flow.ws, batch_id)
    ds = [audit.Decision(i.record, "ok") for i in items]
    for k in range(wrong):
        ds[k] = audit.Decision(items[k].record, "wrong-label", "other")
    audit.record_decisions(flow.ws, flow.actor(who), batch_id, ds)


def _to_audited(flow: Flow, n: int = 120, **kw: object) -> str:
    b = flow.batch(n, **kw)  # type: ignore[arg-type]
    screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=FAST)
    audit.draw_sample(flow.ws, flow.actor("rita"), b.id, size=40)
    _decide_all(flow, b.id)
    audit.complete_audit(flow.ws, flow.actor("rita"), b.id)
    return b.id


def _sslib_key(ws: Workspace, principal: str) -> SSlibKey:
    with ws.engine.connect() as conn:
        row = ws.active_key_row(conn, principal)
    return SSlibKey(row.keyid, "ed25519", "ed25519", {"public": row.public_key})


def test_full_flow_through_the_cli(flow: Flow, tmp_path: Path) -> None:
    b = flow.batch(150)
    out = tmp_path / "decisions.csv"

    def run_json(*args: str, who: str) -> object:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = flow.cli(*args, "--json", who=who)
        assert code == 0, buf.getvalue()
        return json.loads(buf.getvalue())

    rep = run_json("screen", b.id, "--check", "screening", who="sam")
    assert rep["integrity_ok"] is True and rep["records"] == 150  # type: ignore[index]
    assert get_batch(flow.ws, b.id).state == BatchState.SCREENED
    sample = run_json("audit", "sample", b.id, "--size", "80", who="rita")
    assert sample["random"] == 80  # type: ignore[index]
    items = audit.sample_items(flow.ws, b.id)
    lines = ["record,decision,digest"]
    lines += [f"{i.record},{'wrong-label:pos' if k < 1 else 'ok'},{i.record_digest}" for k, i in enumerate(items)]
    out.write_text("\n".join(lines) + "\n")
    imp = run_json("audit", "import", b.id, str(out), who="rita")
    assert imp["imported"] == 80 and imp["decisions"] == {"wrong-label": 1, "ok": 79}  # type: ignore[index]
    est = run_json("audit", "report", b.id, who="rita")
    assert est["random"]["errors"] == 1 and est["error_rate"] == pytest.approx(1 / 80)  # type: ignore[index]
    lo, hi = est["interval"]  # type: ignore[index]
    assert lo < 1 / 80 < hi < 0.10
    run_json("audit", "complete", b.id, who="rita")
    assert get_batch(flow.ws, b.id).state == BatchState.AUDITED
    check = run_json("policy", "check", b.id, who="alice")
    assert check["passed"] is True and check["tier"] == "medium"  # type: ignore[index]
    res = run_json("approve", b.id, who="alice")
    assert res["complete"] is True and res["state"] == "approved"  # type: ignore[index]
    # the approval verifies with the reference DSSE implementation, under alice's registered key
    env = approval.approval_envelope(flow.ws, b.id, "alice")
    ref = SslibEnvelope.from_dict(json.loads(env))
    assert list(ref.verify([_sslib_key(flow.ws, "alice")], 1)) == [flow.actor("alice").keyid]
    st = json.loads(base64.b64decode(json.loads(env)["payload"]))
    assert st["predicateType"] == lifecycle.PREDICATE_APPROVAL
    assert st["subject"][0]["digest"]["sha256"] == get_batch(flow.ws, b.id).manifest_digest
    assert st["predicate"]["approver"] == "alice" and st["predicate"]["audit"]
    # every step is in the log, each transition with its attestation
    actions = [e.action for e in show_entries(flow.ws, subject=f"batch:{b.id}", newest_first=False)]
    for a in ("batch.acquire", "batch.screen", "audit.sample", "audit.decide", "audit.complete", "batch.approve"):
        assert a in actions
    types = {r.predicate_type for r in lifecycle.attestations_for(flow.ws, b.id)}
    assert {lifecycle.PREDICATE_REPORT, lifecycle.PREDICATE_AUDIT, lifecycle.PREDICATE_APPROVAL} <= types


def test_screening_and_audit_attestations_verify_with_securesystemslib(flow: Flow) -> None:
    bid = _to_audited(flow)
    for ptype, who in ((lifecycle.PREDICATE_REPORT, "sam"), (lifecycle.PREDICATE_AUDIT, "rita")):
        (row,) = lifecycle.attestations_for(flow.ws, bid, ptype)
        env = json.loads(flow.ws.objects.read_bytes("meta", row.envelope_digest))
        assert list(SslibEnvelope.from_dict(env).verify([_sslib_key(flow.ws, who)], 1)) == [row.keyid]


def test_no_state_is_skipped(flow: Flow) -> None:
    ws = flow.ws
    b = flow.batch(80)
    with pytest.raises(ConflictError, match="screened batch"):
        audit.draw_sample(ws, flow.actor("rita"), b.id, size=5)
    with pytest.raises(ConflictError, match="only an audited batch"):
        approval.approve(ws, flow.actor("alice"), b.id)
    assert flow.cli("approve", b.id, who="alice") == ConflictError.exit_code
    screening.screen_batch(ws, flow.actor("sam"), b.id, checks=FAST)
    with pytest.raises(ConflictError, match="only a quarantined batch"):
        screening.screen_batch(ws, flow.actor("sam"), b.id, checks=FAST)
    with pytest.raises(ConflictError, match="only an audited batch"):
        approval.approve(ws, flow.actor("alice"), b.id)
    audit.draw_sample(ws, flow.actor("rita"), b.id, size=40)
    with pytest.raises(ConflictError, match="no decision yet"):
        audit.complete_audit(ws, flow.actor("rita"), b.id)
    _decide_all(flow, b.id)
    audit.complete_audit(ws, flow.actor("rita"), b.id)
    with pytest.raises(ConflictError, match="already complete"):
        audit.complete_audit(ws, flow.actor("rita"), b.id)
    with pytest.raises(ConflictError, match="complete"):
        audit.record_decisions(ws, flow.actor("rita"), b.id, [audit.Decision(0, "ok")])
    approval.approve(ws, flow.actor("alice"), b.id)
    with pytest.raises(ConflictError):
        approval.approve(ws, flow.actor("bob"), b.id)
    assert get_batch(ws, b.id).state == BatchState.APPROVED


def test_screen_refuses_a_batch_that_no_longer_verifies(flow: Flow) -> None:
    b = flow.batch(50)
    path = Path(str(flow.ws.objects.local_path("quarantine", b.files[0].sha256)))
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"review number 7 ", b"review number 7!"))
    with pytest.raises(IntegrityError, match="does not verify"):
        screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=FAST)
    assert get_batch(flow.ws, b.id).state == BatchState.QUARANTINED
    (entry,) = show_entries(flow.ws, action="batch.screen", subject=f"batch:{b.id}")
    assert entry.details["integrity"] == "failed"
    from dataward.workflow.risk import assess

    assert next(f for f in assess(flow.ws, "vendor").factors if f.name == "integrity_failures").points > 0


def test_approval_refused_while_a_rule_fails_naming_it(flow: Flow) -> None:
    bid = _to_audited(flow, 100, pii=True)
    d = gate.evaluate(flow.ws, bid)
    assert not d.passed
    failing = " ".join(d.failing())
    assert "pii" in failing and "email" in failing
    with pytest.raises(PolicyError, match="pii"):
        approval.approve(flow.ws, flow.actor("alice"), bid)
    assert flow.cli("policy", "check", bid, who="alice") == PolicyError.exit_code
    assert get_batch(flow.ws, bid).state == BatchState.AUDITED
    r = approval.reject(flow.ws, flow.actor("alice"), bid, "personal data in a third-party delivery")
    assert r.from_state == "audited" and get_batch(flow.ws, bid).state == BatchState.REJECTED
    (row,) = lifecycle.attestations_for(flow.ws, bid, lifecycle.PREDICATE_REJECTION)
    assert row.principal == "alice"
    with pytest.raises(ConflictError):
        approval.reject(flow.ws, flow.actor("alice"), bid, "again")


def test_reject_json_names_the_state_the_batch_left(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    b = flow.batch(20)
    capsys.readouterr()
    assert flow.cli("reject", b.id, "--reason", "  wrong vendor  ", "--json", who="alice") == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = lifecycle.attestations_for(flow.ws, b.id, lifecycle.PREDICATE_REJECTION)
    assert out == {
        "batch": b.id,
        "state": "rejected",
        "from_state": "quarantined",
        "reason": "wrong vendor",
        "attestation": row.envelope_digest,
    }


def test_approval_rechecks_the_data(flow: Flow) -> None:
    bid = _to_audited(flow)
    b = get_batch(flow.ws, bid)
    path = Path(str(flow.ws.objects.local_path("quarantine", b.files[0].sha256)))
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"injected,pos\n")
    with pytest.raises(PolicyError, match="integrity"):
        approval.approve(flow.ws, flow.actor("alice"), bid)


def test_k_of_n_distinct_approvers(flow: Flow, tmp_path: Path) -> None:
    from dataward.workflow.approval_policy import set_policy

    text = WITHOUT_DETECTION.replace("[tiers.medium]\n", "[tiers.medium]\napprovals = 2\n")
    set_policy(flow.ws, flow.actor("admin"), text, where="test")
    bid = _to_audited(flow)
    r1 = approval.approve(flow.ws, flow.actor("alice"), bid)
    assert (r1.approvals, r1.required, r1.state) == (1, 2, "audited")
    with pytest.raises(ConflictError, match="already approved"):
        approval.approve(flow.ws, flow.actor("alice"), bid)
    r2 = approval.approve(flow.ws, flow.actor("bob"), bid)
    assert (r2.approvals, r2.state, r2.complete) == (2, "approved", True)
    with flow.ws.engine.connect() as conn:
        rows = list(conn.execute(select(schema.approvals.c.principal).where(schema.approvals.c.batch_id == bid)))
    assert sorted(r.principal for r in rows) == ["alice", "bob"]


def test_prepared_statement_signed_offline(flow: Flow, tmp_path: Path) -> None:
    bid = _to_audited(flow)
    stmt = tmp_path / "approval.json"
    assert flow.cli("approve", bid, "--prepare", str(stmt), who="bob") == 0
    from dataward.store.keyring import FileKeyring

    bob_key = next(e.path for e in FileKeyring().entries("bob") if e.keyid == flow.actor("bob").keyid)
    # a statement signed by someone else than the approver it names is refused
    alice_env = tmp_path / "by-alice.dsse"
    assert flow.cli("sign-statement", str(stmt), "-o", str(alice_env), who="alice") == 0
    assert flow.cli("approve", bid, "--statement", str(alice_env), who="admin") == IntegrityError.exit_code
    # offline: only the key file, no workspace
    from dataward.cli import main

    env = tmp_path / "approval.dsse"
    assert (
        main(["-w", str(tmp_path / "nowhere"), "sign-statement", str(stmt), "--key", str(bob_key), "-o", str(env)]) == 0
    )
    # tampering with the signed payload is caught
    d = json.loads(env.read_bytes())
    forged = json.loads(base64.b64decode(d["payload"]))
    forged["predicate"]["approver"] = "alice"
    bad = tmp_path / "forged.dsse"
    bad.write_text(json.dumps({**d, "payload": base64.b64encode(json.dumps(forged).encode()).decode()}))
    assert flow.cli("approve", bid, "--statement", str(bad), who="admin") == IntegrityError.exit_code
    # the genuine one is recorded, authorized as bob (the signer), submitted by admin
    assert flow.cli("approve", bid, "--statement", str(env), who="admin") == 0
    assert get_batch(flow.ws, bid).state == BatchState.APPROVED
    (entry,) = show_entries(flow.ws, action="batch.approve", subject=f"batch:{bid}")
    assert entry.details["approver"] == "bob" and entry.details["submitted_by"] == "admin"


def test_statement_prepared_before_a_change_is_stale(flow: Flow, tmp_path: Path) -> None:
    from dataward.workflow.approval_policy import set_policy

    bid = _to_audited(flow)
    stmt = approval.prepare_statement(flow.ws, bid, "bob")
    env = approval.sign_statement(stmt, flow.actor("bob").key)
    set_policy(flow.ws, flow.actor("admin"), WITHOUT_DETECTION + "\n# tightened\n", where="test")
    with pytest.raises(ConflictError, match="another policy"):
        approval.approve_with_statement(flow.ws, flow.actor("bob"), bid, env)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_flow_on_each_catalog(
    catalog: str, request: pytest.FixtureRequest, tmp_path: Path, make_workspace: Callable[..., Workspace]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}" if catalog == "sqlite" else request.getfixturevalue("pg_database")
    from dataward import principals
    from dataward.model.roles import Grant, Role
    from dataward.sources import add_source
    from dataward.workflow.approval_policy import set_policy

    ws = make_workspace(tmp_path, url)
    admin = ws.actor("admin")
    for name, roles in {"i": [Role.INGESTER], "s": [Role.SCREENER], "r": [Role.REVIEWER], "a": [Role.APPROVER]}.items():
        principals.enroll(ws, admin, name, [Grant(x) for x in roles])
    add_source(ws, admin, "v", kind="internal", origin="gen")  # (a synthetic one would need a regeneration)
    set_policy(ws, admin, WITHOUT_DETECTION, where="screened with the fast checks only")
    data = tmp_path / "in"
    data.mkdir()
    flow = Flow(ws, data, {"admin": admin})
    b = flow.batch(40, source="v", by="i")
    screening.screen_batch(ws, flow.actor("s"), b.id, checks=FAST)
    audit.draw_sample(ws, flow.actor("r"), b.id, size=40)
    _decide_all(flow, b.id, who="r")
    audit.complete_audit(ws, flow.actor("r"), b.id)
    assert approval.approve(ws, flow.actor("a"), b.id).complete


def test_a_forged_screening_report_is_refused(flow: Flow) -> None:
    """Swapping the stored report for one signed by someone else (even a registered key) is detected."""
    from sqlalchemy import update

    from dataward.core import dsse

    b = flow.batch(40)
    rep = screening.screen_batch(flow.ws, flow.actor("sam"), b.id, checks=FAST)
    env = dsse.Envelope.from_bytes(flow.ws.objects.read_bytes("meta", str(rep.envelope_digest)))
    forged = dsse.sign_envelope(env.payload, flow.actor("ingrid").key)
    digest = flow.ws.objects.put_bytes("meta", forged.to_bytes())
    with flow.ws.engine.begin() as conn:
        t = schema.screening_reports
        conn.execute(update(t).where(t.c.batch_id == b.id).values(envelope_digest=digest))
    with pytest.raises(IntegrityError, match="not signed by its screener sam"):
        screening.latest_report(flow.ws, b.id)


def test_audit_rows_edited_after_completion_are_caught(flow: Flow) -> None:
    from sqlalchemy import update

    bid = _to_audited(flow)
    with flow.ws.engine.begin() as conn:
        t = schema.audit_decisions
        conn.execute(update(t).where(t.c.id == 1).values(decision="malicious"))
    with pytest.raises(IntegrityError, match="no longer matches its signed attestation"):
        gate.evaluate(flow.ws, bid)
    with pytest.raises(IntegrityError):
        approval.approve(flow.ws, flow.actor("alice"), bid)
