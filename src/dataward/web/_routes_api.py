"""/api/v1: the workflow as JSON (what the CLI prints with --json), authenticated by Bearer tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from dataward.errors import AuthorizationError
from dataward.web import _services as svc
from dataward.web._api_models import (
    ApprovalOut,
    AuditEstimateOut,
    AuditOut,
    BatchDetailOut,
    BatchOut,
    CheckpointOut,
    DecisionOut,
    DiffOut,
    InclusionOut,
    LineageOut,
    LogEntryOut,
    LogKeyOut,
    OverviewOut,
    PolicyOut,
    RecordOut,
    RejectionOut,
    SampleOut,
    SourceRiskOut,
    StatementOut,
    VersionCheckOut,
    VersionOut,
    WhoAmIOut,
)
from dataward.web._request_state import deny_unauthenticated, state
from dataward.web.auth import Viewer, authenticate


def _sign(request: Request, viewer: Viewer, action: str, batch_id: str) -> Any:
    st = state(request)
    return svc.signer(st.ws, viewer, action, batch_id, st.server_side_signing)


router = APIRouter(prefix="/api/v1", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="An API token from `dataward token create PRINCIPAL`.")

BatchId = Annotated[str, Path(min_length=1, max_length=128, description="batch id")]
Seq = Annotated[int, Path(ge=0, le=2**53, description="log entry sequence number")]
_NAME = Query(max_length=200)


def api_viewer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Viewer:
    """The principal of the request's Bearer token; a missing or bad token is a 401 (refusals are counted)."""
    st = state(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        deny_unauthenticated(request, "console.login", "no Bearer token")
        raise HTTPException(401, "a Bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(st.ws, credentials.credentials)
    except AuthorizationError as exc:
        # counted per source address and minute: strangers cannot grow the log one entry per request
        deny_unauthenticated(request, "console.login", str(exc))
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


ApiViewer = Annotated[Viewer, Depends(api_viewer)]


class DecisionIn(BaseModel):
    """A review decision on one sampled record, with an optional note."""

    record: int = Field(ge=0, le=2**53)
    decision: str = Field(min_length=1, max_length=300, description="ok, wrong-label:NEW, malicious or unsure")
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    """Why a batch is rejected."""

    reason: str = Field(min_length=1, max_length=2000)


@router.get("/whoami", response_model=WhoAmIOut)
def whoami(request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """The principal the token stands for, its roles, and whether the server signs for it."""
    return {
        "principal": viewer.name,
        "roles": sorted(f"{g.role}" + (f"@{g.source}" if g.source else "") for g in viewer.grants),
        "token": viewer.token_id,
        "server_side_signing": state(request).server_side_signing,
    }


@router.get("/overview", response_model=OverviewOut)
def overview(request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """Sources by risk, batches and their states, the recent log and the open incidents."""
    return svc.overview(state(request).ws, viewer)


@router.get("/sources", response_model=list[SourceRiskOut])
def sources(request: Request, viewer: ApiViewer) -> list[dict[str, Any]]:
    """Sources by risk (as `dataward source list --by-risk --json`)."""
    return svc.sources_by_risk(state(request).ws, viewer)


@router.get("/batches", response_model=list[BatchOut])
def batches(
    request: Request, viewer: ApiViewer, state_: Annotated[str | None, Query(alias="state", max_length=32)] = None
) -> list[dict[str, Any]]:
    """Batches in acquisition order, optionally in one state (as `dataward batch list --json`)."""
    return svc.batches(state(request).ws, viewer, state_)


@router.get("/batches/{batch_id}", response_model=BatchDetailOut)
def batch(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """The batch, its signed manifest and its latest screening report (as `dataward screen BATCH --show`)."""
    return svc.batch_detail(state(request).ws, viewer, batch_id)


@router.get("/batches/{batch_id}/records", response_model=list[RecordOut])
def records(
    request: Request,
    viewer: ApiViewer,
    batch_id: BatchId,
    n: Annotated[list[int], Query(max_length=20)],
) -> list[dict[str, Any]]:
    """Record contents (needs data.read), PII masked; up to 20 record numbers."""
    if any(not 0 <= i <= 2**53 for i in n):
        raise HTTPException(422, "record numbers must be between 0 and 2**53")
    return svc.records(state(request).ws, viewer, batch_id, list(n))


@router.get("/batches/{batch_id}/audit", response_model=AuditOut)
def audit(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """The label audit: sampled records with decisions, and the error estimate (as `audit report --json`)."""
    return svc.audit_state(state(request).ws, viewer, batch_id)


@router.post("/batches/{batch_id}/audit/sample", response_model=SampleOut)
def audit_sample(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """Draw (or enlarge) the audit sample with the principal's key (as `dataward audit sample BATCH --json`)."""
    actor = _sign(request, viewer, "audit.sample", batch_id)
    return svc.draw_sample(state(request).ws, actor, batch_id)


@router.post("/batches/{batch_id}/audit/decisions", response_model=DecisionOut)
def audit_decide(request: Request, viewer: ApiViewer, batch_id: BatchId, body: DecisionIn) -> dict[str, Any]:
    """Record a review decision on a sampled record with the principal's key."""
    actor = _sign(request, viewer, "audit.decide", batch_id)
    return svc.decide(state(request).ws, viewer, actor, batch_id, body.record, body.decision, body.note)


@router.post("/batches/{batch_id}/audit/complete", response_model=AuditEstimateOut)
def audit_complete(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """Complete the label audit with the principal's key (as `dataward audit complete BATCH --json`)."""
    actor = _sign(request, viewer, "audit.complete", batch_id)
    return svc.complete_audit(state(request).ws, actor, batch_id)


@router.get("/batches/{batch_id}/policy", response_model=PolicyOut)
def policy(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """Rule-by-rule evaluation (as `dataward policy check BATCH --json`)."""
    return svc.policy_check(state(request).ws, viewer, batch_id)


@router.get("/batches/{batch_id}/approval-statement", response_model=StatementOut)
def approval_statement(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """The unsigned approval statement for this principal (as `dataward approve BATCH --prepare`)."""
    data: dict[str, Any] = json.loads(svc.prepare_statement(state(request).ws, viewer, batch_id))
    return data


@router.post("/batches/{batch_id}/approvals", response_model=ApprovalOut)
def approve(request: Request, viewer: ApiViewer, batch_id: BatchId) -> dict[str, Any]:
    """Approve with the principal's key held by the server (only with `serve --server-side-signing`)."""
    actor = _sign(request, viewer, "batch.approve", batch_id)
    return svc.approve(state(request).ws, actor, batch_id)


@router.post("/batches/{batch_id}/approvals/statement", response_model=ApprovalOut)
def approve_statement(
    request: Request, viewer: ApiViewer, batch_id: BatchId, envelope: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Record an approval signed offline: the DSSE envelope `dataward sign-statement` wrote."""
    st = state(request)
    submitter = st.ws.actor(viewer.name) if st.server_side_signing else st.ws.log_actor()
    data = json.dumps(envelope).encode()
    return svc.approve_with_statement(st.ws, viewer, submitter, batch_id, data)


@router.post("/batches/{batch_id}/reject", response_model=RejectionOut)
def reject(request: Request, viewer: ApiViewer, batch_id: BatchId, body: RejectIn) -> dict[str, Any]:
    """Reject the batch with a reason, signed with the principal's key (as `dataward reject BATCH`)."""
    actor = _sign(request, viewer, "batch.reject", batch_id)
    return svc.reject(state(request).ws, actor, batch_id, body.reason)


@router.get("/versions", response_model=list[VersionOut])
def versions(request: Request, viewer: ApiViewer, dataset: Annotated[str | None, _NAME] = None) -> list[dict[str, Any]]:
    """Dataset versions, optionally of one dataset (as `dataward dataset list --json`)."""
    return svc.versions(state(request).ws, viewer, dataset)


@router.get("/versions/{spec}", response_model=VersionCheckOut)
def version(request: Request, viewer: ApiViewer, spec: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    """One version (DATASET@N) with a quick verification."""
    return svc.version(state(request).ws, viewer, spec)


@router.get("/diff", response_model=DiffOut)
def diff(
    request: Request,
    viewer: ApiViewer,
    a: Annotated[str, Query(alias="from", max_length=200)],
    b: Annotated[str, Query(alias="to", max_length=200)],
) -> dict[str, Any]:
    """Records added and removed between two versions (as `dataward diff A B --json`)."""
    return svc.diff(state(request).ws, viewer, a, b)


@router.get("/lineage", response_model=LineageOut)
def lineage(request: Request, viewer: ApiViewer, target: Annotated[str | None, _NAME] = None) -> dict[str, Any]:
    """The lineage graph, or the part up- and downstream of ``target`` (as `dataward lineage --json`)."""
    return svc.lineage_graph(state(request).ws, viewer, target)


@router.get("/log", response_model=list[LogEntryOut])
def log(
    request: Request,
    viewer: ApiViewer,
    action: Annotated[str | None, _NAME] = None,
    principal: Annotated[str | None, _NAME] = None,
    subject: Annotated[str | None, _NAME] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> list[dict[str, Any]]:
    """Log entries, newest first (as `dataward log show --json`)."""
    return svc.log_entries(
        state(request).ws, viewer, action=action, principal=principal, subject=subject, limit=limit, offset=offset
    )


@router.get("/log/checkpoint", response_model=CheckpointOut)
def checkpoint(request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """The log's latest signed checkpoint (as `dataward log checkpoint --json`)."""
    return svc.checkpoint(state(request).ws, viewer)


@router.get("/log/key", response_model=LogKeyOut)
def log_key(request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """The log's origin and verifier key, to check checkpoints and proofs offline."""
    ws = state(request).ws
    svc.read(ws, viewer, "log")
    return {"origin": ws.origin, "verifier_key": svc.log_key(ws)}


@router.get("/log/{seq}", response_model=LogEntryOut)
def log_entry(request: Request, viewer: ApiViewer, seq: Seq) -> dict[str, Any]:
    """One log entry by sequence number."""
    return svc.log_entry(state(request).ws, viewer, seq)


@router.get("/log/{seq}/proof", response_model=InclusionOut)
def log_proof(request: Request, viewer: ApiViewer, seq: Seq) -> dict[str, Any]:
    """Inclusion proof (as `dataward log prove --json`), with the server's check against the log key."""
    return svc.inclusion_proof(state(request).ws, viewer, seq)
