"""Approvals (k-of-n, signed, separated from the acquirer) and rejections.

An approval is an in-toto statement (predicate type :data:`dataward.lifecycle.PREDICATE_APPROVAL`) whose
subject is the batch's signed manifest and whose predicate binds the screening report, the audit
attestation and the policy (all by SHA-256) and names the approver. It is signed in a DSSE envelope by
the approver's registered key: either here (``dataward approve BATCH``) or elsewhere
(``approve --prepare OUT`` writes the unsigned statement, ``dataward sign-statement`` signs it offline,
``approve --statement FILE`` records it; the web console uses the same path).

Recording checks, in order: the batch is ``audited``; the approver's roles allow ``batch.approve`` on the
source and include one of the tier's ``approver_roles``; separation of duties (never the acquirer; per
policy also the screener / the audit's completer); not a second approval by the same principal; every
policy rule passes; the statement matches the batch, report, audit and policy as they are now. The k-th
distinct approval moves the batch to ``approved``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dataward import lifecycle
from dataward.access import Grant, require, require_separation
from dataward.batches import Batch, BatchState, load_batch
from dataward.core import dsse
from dataward.core.canonical import canonical_json
from dataward.errors import AuthorizationError, ConflictError, InputError, NotFoundError, PolicyError, SignatureError
from dataward.identity import Actor
from dataward.log import auditlog
from dataward.model.workflow_records import Approval
from dataward.store import approvals, audits, key_lookup
from dataward.store.catalog import write_transaction
from dataward.store.crash import crash_point
from dataward.timeutil import now, now_iso, parse_iso
from dataward.workflow import screening
from dataward.workflow.gate import PolicyDecision, approvals_of, evaluate
from dataward.workflow.tiers import tier_for
from dataward.workspace import Change, Workspace


@dataclass(frozen=True)
class ApprovalResult:
    """One recorded approval: who approved, its attestation, how many approvals the batch has and needs."""

    batch: str
    approver: str
    attestation: str
    approvals: int
    required: int
    state: str

    @property
    def complete(self) -> bool:
        """Whether this approval was the k-th and moved the batch to ``approved``."""
        return self.state == BatchState.APPROVED

    def to_json(self) -> dict[str, Any]:
        """The JSON form `approve --json` prints."""
        return {
            "batch": self.batch,
            "approver": self.approver,
            "attestation": self.attestation,
            "approvals": self.approvals,
            "required": self.required,
            "state": self.state,
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Rejection:
    """A recorded rejection: the batch, the state it left, the reason given and the signed attestation."""

    batch: str
    from_state: str
    reason: str
    attestation: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `reject --json` prints and the web API returns."""
        return {
            "batch": self.batch,
            "state": "rejected",
            "from_state": self.from_state,
            "reason": self.reason,
            "attestation": self.attestation,
        }


def _current_refs(ws: Workspace, batch_id: str) -> dict[str, str | None]:
    report = screening.latest_report(ws, batch_id)
    with ws.engine.connect() as conn:
        audit = audits.load_audit(conn, batch_id)
    return {"screening_report": report.envelope_digest, "audit": None if audit is None else audit.envelope_digest}


def prepare_statement(ws: Workspace, batch_id: str, approver: str) -> bytes:
    """The unsigned approval statement for ``approver`` (canonical JSON), to be signed elsewhere."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    _require_audited(batch, ws)
    decision = evaluate(ws, batch_id)
    predicate = {
        "batch": batch.id,
        "source": batch.source,
        "manifest": batch.manifest_digest,
        "merkle_root": batch.merkle_root,
        **_current_refs(ws, batch_id),
        "policy": decision.policy_digest,
        "tier": decision.tier,
        "approver": approver,
        "prepared_at": now_iso(),
    }
    return dsse.make_statement([(f"batch:{batch.id}", batch.manifest_digest)], lifecycle.PREDICATE_APPROVAL, predicate)


def sign_statement(statement: bytes, key: dsse.SigningKey) -> bytes:
    """Sign an approval statement (offline: needs only the private key); returns the DSSE envelope JSON."""
    try:
        obj = json.loads(statement)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"statement is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("_type") != dsse.STATEMENT_TYPE:
        raise InputError("the file is not an in-toto Statement v1")
    if obj.get("predicateType") != lifecycle.PREDICATE_APPROVAL:
        raise InputError(f"statement has predicateType {obj.get('predicateType')!r}, not a dataward approval")
    return dsse.sign_envelope(canonical_json(obj), key).to_bytes()


def _eq(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a.encode(), b.encode())


def _check_statement(ws: Workspace, batch: Batch, env: dsse.Envelope) -> tuple[str, str, dict[str, Any]]:
    """Verify the envelope's signature and content; returns (approver, keyid, predicate)."""
    st = dsse.parse_statement(env)
    if st.predicate_type != lifecycle.PREDICATE_APPROVAL:
        raise SignatureError(f"statement is a {st.predicate_type}, not a dataward approval")
    p = st.predicate
    if not isinstance(p, dict) or not isinstance(p.get("approver"), str):
        raise SignatureError("approval statement names no approver")
    approver = p["approver"]
    now_t = now()
    with ws.engine.connect() as conn:
        active = key_lookup.active_keys(conn, approver)
    keys = {}
    for key in active:
        if key.expires_at is None or parse_iso(key.expires_at) > now_t:
            keys[key.keyid] = key.public_key.crypto()
    if not keys:
        raise SignatureError(f"approver {approver!r} has no active key", advice="An admin generates or rotates it.")
    try:
        good = dsse.verify_envelope(env, keys)
    except SignatureError as exc:
        raise SignatureError(
            f"approval statement is not signed by {approver}'s active key: {exc.message}",
            advice="Sign it with `dataward sign-statement` as the approver it names.",
        ) from None
    if len(st.subjects) != 1 or not _eq(st.subjects[0][1], batch.manifest_digest):
        raise SignatureError(f"approval statement's subject is not batch {batch.id}'s manifest")
    if p.get("batch") != batch.id or not _eq(p.get("manifest"), batch.manifest_digest):
        raise SignatureError(f"approval statement is for batch {p.get('batch')!r}, not {batch.id}")
    current = _current_refs(ws, batch.id)
    for k, v in current.items():
        if v is None or not _eq(p.get(k), v):
            raise ConflictError(
                f"approval statement names another {k.replace('_', ' ')} than batch {batch.id} has now",
                advice="Prepare a fresh statement with `dataward approve BATCH --prepare OUT`.",
            )
    return approver, good[0], p


@contextmanager
def _approval_change(ws: Workspace, submitter: Actor, approver: str, batch: Batch) -> Iterator[Change]:
    """Like :meth:`Workspace.change`, but authorizing the *approver* (whose signature carries the approval)."""
    subject = f"batch:{batch.id}"
    log_key = ws.log_actor()
    try:
        with write_transaction(ws.engine) as conn:
            require(approver, ws.grants(conn, approver), "batch.approve", batch.source)
            ch = Change(conn, submitter, "batch.approve", subject)
            yield ch
            ch.entries = auditlog.append(
                conn,
                [auditlog.PendingEntry(submitter, "batch.approve", subject, ch.details), *ch.extra_entries],
                log_key=log_key,
                origin=ws.origin,
            )
            crash_point("batch.approve.before-commit")  # crash-injection tests (dataward.store.crash)
    except AuthorizationError as exc:
        ws.record_denial(approver, "batch.approve", subject, str(exc))
        raise
    crash_point("batch.approve.after-commit")


def _has_role(grants: list[Grant], roles: tuple[str, ...], source: str) -> bool:
    return any(g.role.value in roles and (g.source is None or g.source == source) for g in grants)


def _separation(ws: Workspace, batch: Batch, approver: str, duties: tuple[str, ...]) -> None:
    require_separation(approver, batch.created_by, "approve")
    if "screener" in duties and screening.latest_report(ws, batch.id).screened_by == approver:
        raise AuthorizationError(
            f"{approver} screened batch {batch.id} and may not approve it (policy: separation of duties)",
            advice="Another approver must do this.",
        )
    if "auditor" in duties:
        with ws.engine.connect() as conn:
            audit = audits.load_audit(conn, batch.id)
        if audit is not None and audit.completed_by == approver:
            raise AuthorizationError(
                f"{approver} completed the label audit of batch {batch.id} and may not approve it "
                "(policy: separation of duties)",
                advice="Another approver must do this.",
            )


def _require_audited(batch: Batch, ws: Workspace | None = None) -> None:
    if batch.state == BatchState.AUDITED and ws is not None:
        from dataward.evidence.gates import require_logged_state  # evidence/ reads the policy from workflow/

        require_logged_state(ws, batch.id, "audited", "approve")
    if batch.state != BatchState.AUDITED:
        advice = {
            "quarantined": f"Screen it (`dataward screen {batch.id}`), then audit it.",
            "screened": f"Complete its label audit first (`dataward audit complete {batch.id}`).",
        }.get(str(batch.state))
        raise ConflictError(f"batch {batch.id} is {batch.state}; only an audited batch can be approved", advice=advice)


def _record(ws: Workspace, submitter: Actor, batch_id: str, envelope: dsse.Envelope) -> ApprovalResult:
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    subject = f"batch:{batch_id}"
    _require_audited(batch, ws)
    approver, keyid, predicate = _check_statement(ws, batch, envelope)
    tier, tp, _risk, policy = tier_for(ws, batch)
    with ws.engine.connect() as conn:
        grants = ws.grants(conn, approver)
    try:  # who may approve is settled before the (costly) re-verification of the data
        require(approver, grants, "batch.approve", batch.source)
        if not _has_role(grants, tp.approver_roles, batch.source):
            raise AuthorizationError(
                f"{approver} holds none of the roles the {tier}-tier policy accepts for approval "
                f"({', '.join(tp.approver_roles)})"
            )
        _separation(ws, batch, approver, tp.separation_of_duties)
    except AuthorizationError as exc:
        ws.record_denial(approver, "batch.approve", subject, str(exc))
        raise
    if any(a.principal == approver for a in approvals_of(ws, batch_id)):
        raise ConflictError(
            f"{approver} already approved batch {batch_id}",
            advice=f"{tp.approvals} distinct approvers are needed; another must approve.",
        )
    if not _eq(predicate.get("policy"), policy.digest):
        raise ConflictError(
            "the approval statement was prepared under another policy than the current one",
            advice="Prepare a fresh statement with `dataward approve BATCH --prepare OUT`.",
        )
    decision: PolicyDecision = evaluate(ws, batch_id, reverify=True)
    if not _eq(decision.policy_digest, policy.digest):
        raise ConflictError("the policy changed during the approval; retry")
    if not decision.passed:
        raise PolicyError(
            f"policy refuses approval of batch {batch_id}: " + "; ".join(decision.failing()),
            advice=f"See every rule with `dataward policy check {batch_id}`.",
        )
    digest = ws.objects.put_bytes("meta", envelope.to_bytes())
    with _approval_change(ws, submitter, approver, batch) as ch:
        if lifecycle.current_state(ch, batch_id) != BatchState.AUDITED:
            raise ConflictError(f"batch {batch_id} changed state meanwhile; retry")
        have = approvals.approvers_of(ch.conn, batch_id)
        if approver in have:
            raise ConflictError(f"{approver} already approved batch {batch_id}")
        approvals.insert_approval(
            ch.conn,
            batch_id,
            Approval(approver, keyid, now_iso(), digest),
            policy_digest=decision.policy_digest,
            subject=subject,
            predicate_type=lifecycle.PREDICATE_APPROVAL,
        )
        count = len(have) + 1
        state = BatchState.AUDITED
        if count >= decision.approvals_required:
            lifecycle.transition(ch, batch_id, BatchState.APPROVED)
            state = BatchState.APPROVED
        ch.details.update(
            {
                "batch": batch_id,
                "approver": approver,
                "keyid": keyid,
                "approvals": count,
                "required": decision.approvals_required,
                "tier": decision.tier,
                "policy": decision.policy_digest,
                "attestations": [{"type": lifecycle.PREDICATE_APPROVAL, "sha256": digest}],
            }
        )
        if submitter.name != approver:
            ch.details["submitted_by"] = submitter.name
    return ApprovalResult(batch_id, approver, digest, count, decision.approvals_required, str(state))


def approve(ws: Workspace, actor: Actor, batch_id: str) -> ApprovalResult:
    """Approve ``batch_id`` as ``actor``: prepare the statement, sign it with the actor's key, record it."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    with ws.engine.connect() as conn:
        grants = ws.grants(conn, actor.name)
    try:
        require(actor.name, grants, "batch.approve", batch.source)
    except AuthorizationError as exc:
        ws.record_denial(actor.name, "batch.approve", f"batch:{batch_id}", str(exc))
        raise
    _require_audited(batch, ws)
    statement = prepare_statement(ws, batch_id, actor.name)
    return _record(ws, actor, batch_id, dsse.sign_envelope(statement, actor.key))


def approve_with_statement(ws: Workspace, submitter: Actor, batch_id: str, envelope_bytes: bytes) -> ApprovalResult:
    """Record an approval signed elsewhere; authority comes from the signature of the approver it names."""
    return _record(ws, submitter, batch_id, dsse.Envelope.from_bytes(envelope_bytes))


def reject(ws: Workspace, actor: Actor, batch_id: str, reason: str) -> Rejection:
    """Reject a batch (from quarantined, screened, audited or approved); signed and logged."""
    if not reason or not reason.strip():
        raise InputError("a rejection needs a reason (--reason)")
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
    subject = f"batch:{batch_id}"
    with ws.change(actor, "batch.reject", subject, source=batch.source) as ch:
        before = lifecycle.transition(ch, batch_id, BatchState.REJECTED)
        predicate = {
            "batch": batch_id,
            "source": batch.source,
            "manifest": batch.manifest_digest,
            "merkle_root": batch.merkle_root,
            "from_state": before.value,
            "reason": reason.strip(),
            "rejected_by": actor.name,
            "rejected_at": now_iso(),
        }
        digest = lifecycle.attest(
            ws, ch, [(subject, batch.manifest_digest)], lifecycle.PREDICATE_REJECTION, predicate, batch_id=batch_id
        )
        ch.details["reason"] = reason.strip()
    return Rejection(batch_id, before.value, reason.strip(), digest)


def approval_envelope(ws: Workspace, batch_id: str, principal: str) -> bytes:
    """The stored DSSE envelope of ``principal``'s approval of ``batch_id``."""
    with ws.engine.connect() as conn:
        d = approvals.approval_digest(conn, batch_id, principal)
    if d is None:
        raise NotFoundError(f"{principal} has not approved batch {batch_id}")
    return ws.objects.read_bytes("meta", d)


__all__ = [
    "ApprovalResult",
    "Rejection",
    "approval_envelope",
    "approvals_of",
    "approve",
    "approve_with_statement",
    "prepare_statement",
    "reject",
    "sign_statement",
]
