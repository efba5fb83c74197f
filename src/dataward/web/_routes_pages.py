"""Server-rendered pages: overview, batch, label audit, approval, versions, lineage, audit log, sign-in."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from dataward.errors import AuthorizationError, Error, InputError
from dataward.web import _services as svc
from dataward.web import _svg as svg
from dataward.web._request_state import SESSION_COOKIE, deny_unauthenticated, page_session, state
from dataward.web.auth import Session, Viewer, authenticate, check_csrf, require, token_expiry


def _sign(request: Request, viewer: Viewer, action: str, batch_id: str) -> Any:
    st = state(request)
    return svc.signer(st.ws, viewer, action, batch_id, st.server_side_signing)


router = APIRouter(include_in_schema=False)

MAX_UPLOAD = 1 << 20
PAGE = 50  # rows per page of a long table (batches, incidents)
FINDINGS_WITH_RECORDS = 8
RECORDS_PER_FINDING = 3


def render(request: Request, template: str, viewer: Viewer | None, session: Session | None, **ctx: Any) -> HTMLResponse:
    """A page from ``template`` with the viewer, CSRF token, signing mode and flash messages."""
    flash = []
    if session is not None:
        flash, session.flash = session.flash, []
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        template,
        {
            "viewer": viewer,
            "csrf": session.csrf if session else "",
            "signing": state(request).server_side_signing,
            "flash": flash,
            **ctx,
        },
    )


def _posted(request: Request, csrf: str | None) -> tuple[Viewer, Session]:
    """A state-changing form: a valid session and its CSRF token (a mismatch is logged as a denial)."""
    viewer, session = page_session(request)
    try:
        check_csrf(session, csrf)
    except AuthorizationError as exc:
        state(request).ws.record_denial(viewer.name, "console.post", request.url.path, str(exc))
        raise
    return viewer, session


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- sign-in ---------------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str, Query(max_length=300)] = "/") -> HTMLResponse:
    """The sign-in form."""
    return render(request, "login.html", None, None, next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=300)],
    next: Annotated[str, Form(max_length=300)] = "/",
) -> Response:
    """Sign in with an API token: a session cookie (HttpOnly, SameSite=Strict) if the principal may read the console."""
    st = state(request)
    try:
        try:
            viewer = authenticate(st.ws, token.strip())
        except AuthorizationError as exc:
            deny_unauthenticated(request, "console.login", str(exc))  # aggregated per address and minute
            raise
        require(st.ws, viewer, "console.read", "console")  # logs its own denial
    except AuthorizationError as exc:
        page = render(request, "login.html", None, None, next=_safe_next(next), error=str(exc))
        page.status_code = 403
        return page
    session = st.sessions.open(viewer, token_expiry(st.ws, viewer.token_id))
    resp = _back(_safe_next(next))
    secure = st.secure_cookies if st.secure_cookies is not None else request.url.scheme == "https"
    max_age = max(60, int((session.expires - _now()).total_seconds()))
    resp.set_cookie(
        SESSION_COOKIE, session.id, max_age=max_age, httponly=True, secure=secure, samesite="strict", path="/"
    )
    return resp


def _now() -> Any:
    from dataward.timeutil import now

    return now()


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign out: the session ends on the server and its cookie is cleared (form post)."""
    _, session = _posted(request, csrf)
    state(request).sessions.close(session.id)
    resp = _back("/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# --- overview --------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> HTMLResponse:
    """The first page: batches by state, sources by risk, searchable batches, the recent log, open incidents."""
    viewer, session = page_session(request)
    data = svc.overview(state(request).ws, viewer)
    states = data["batch_states"]
    plot = svg.bars({k: states[k] for k in sorted(states)}, "batches by state")
    risk = svg.bars({s["source"]: s["score"] for s in data["sources"]}, "source risk score")
    found = [b for b in reversed(data["batches"]) if _matches(b, q)]
    return render(
        request,
        "overview.html",
        viewer,
        session,
        data=data,
        states_svg=plot,
        risk_svg=risk,
        shown=found[offset : offset + PAGE],
        matching=len(found),
        q=q,
        offset=offset,
        page=PAGE,
    )


# --- batch -----------------------------------------------------------------------------------------------------


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, batch_id: str) -> HTMLResponse:
    """A batch: its files, manifest, screening findings and the records they name."""
    viewer, session = page_session(request)
    ws = state(request).ws
    data = svc.batch_detail(ws, viewer, batch_id)
    rep = data["screening"]
    plots: list[str] = []
    finding_records: dict[int, list[dict[str, Any]]] = {}
    can_read = svc.may_read_records(ws, viewer, batch_id)
    if rep is not None:
        plots.append(svg.severity_bars(rep["findings_by_severity"]))
        per_detector: dict[str, float] = {}
        for f in rep["findings"]:
            per_detector[f["check"]] = per_detector.get(f["check"], 0) + f["n_records"]
        plots.append(svg.bars(per_detector, "records implicated per check/detector"))
        n = max(int(rep["records"]), 1)
        plots.append(
            svg.histogram(
                [r / n for r in rep["flagged"]["records"]],
                0.0,
                1.0,
                "flagged records along the batch",
                xlabel="position in batch (fraction)",
            )
        )
        drift: dict[str, float] = {}
        for d in rep["drift"]:
            col = str(d.get("column") or d.get("kind"))
            drift[col] = drift.get(col, 0) + 1
        plots.append(svg.bars(drift, "drifted columns (findings)"))
        if can_read:
            for i, f in enumerate(rep["findings"][:FINDINGS_WITH_RECORDS]):
                if f["records"]:
                    finding_records[i] = svc.records(
                        ws, viewer, batch_id, f["records"][:RECORDS_PER_FINDING], log_as=None
                    )
            shown = [v["record"] for views in finding_records.values() for v in views]
            svc.log_records_read(ws, viewer, batch_id, shown, "console")  # one entry for the page
    return render(
        request,
        "batch.html",
        viewer,
        session,
        data=data,
        plots=plots,
        finding_records=finding_records,
        can_read=can_read,
    )


@router.get("/batches/{batch_id}/records/{number}/raw")
def record_raw(request: Request, batch_id: str, number: int) -> Response:
    """A whole-file record (an image) as bytes, for roles that may read the batch in its state."""
    viewer, _ = page_session(request)
    data, media = svc.record_file(state(request).ws, viewer, batch_id, number)
    return Response(data, media_type=media, headers={"Content-Disposition": "inline"})


# --- label audit -----------------------------------------------------------------------------------------------


def _pick(items: list[dict[str, Any]], after: int | None, record: int | None) -> dict[str, Any] | None:
    if record is not None:
        return next((i for i in items if i["record"] == record), None)
    start = 0
    if after is not None:
        idx = next((k for k, i in enumerate(items) if i["record"] == after), -1)
        start = idx + 1
    order = items[start:] + items[:start]
    return next((i for i in order if i["decision"] is None), None)


@router.get("/batches/{batch_id}/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    batch_id: str,
    after: Annotated[int | None, Query()] = None,
    record: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """The label audit: one sampled record at a time with its flag and content, and the estimate."""
    viewer, session = page_session(request)
    data = svc.audit_state(state(request).ws, viewer, batch_id, with_content=True)
    items = data["items"]
    current = _pick(items, after, record)
    decided = sum(1 for i in items if i["decision"] is not None)
    est = data["estimate"]
    return render(
        request,
        "audit.html",
        viewer,
        session,
        data=data,
        current=current,
        decided=decided,
        est=est,
        est_svg=_estimate_svg(est),
        est_text=_estimate_text(est),
    )


def _estimate_text(est: dict[str, Any] | None) -> str:
    if est is None:
        return ""
    lo, hi = est["interval"]
    return (
        f"label-error rate {est['error_rate'] * 100:.2f}%, {est['confidence'] * 100:.0f}% {est['method']} "
        f"interval [{lo * 100:.2f}%, {hi * 100:.2f}%]"
    )


def _estimate_svg(est: dict[str, Any] | None) -> str:
    if est is None:
        return ""
    return svg.interval(
        est["error_rate"],
        est["interval"][0],
        est["interval"][1],
        est.get("pass_limit"),
        f"label-error rate, {est['confidence']:.0%} {est['method']} interval",
    )


@router.post("/batches/{batch_id}/audit/decide")
def audit_decide(
    request: Request,
    batch_id: str,
    record: Annotated[int, Form(ge=0)],
    decision: Annotated[str, Form(max_length=300)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Record a decision on one sampled record and move to the next (form post)."""
    viewer, _ = _posted(request, csrf)
    actor = _sign(request, viewer, "audit.decide", batch_id)
    ws = state(request).ws
    out = svc.decide(ws, viewer, actor, batch_id, record, decision, note or None)
    if "application/json" in request.headers.get("accept", ""):
        # the keyboard review updates the page in place: progress and the live estimate come back with it
        now = svc.audit_state(ws, viewer, batch_id)
        est = now["estimate"]
        decided = sum(1 for i in now["items"] if i["decision"] is not None)
        extra = {"decided": decided, "total": len(now["items"]), "estimate_text": _estimate_text(est)}
        return JSONResponse({**out, **extra, "estimate_svg": _estimate_svg(est)})
    return _back(f"/batches/{quote(batch_id)}/audit?after={record}")


@router.post("/batches/{batch_id}/audit/sample")
def audit_sample(request: Request, batch_id: str, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Draw (or enlarge) the audit sample (form post)."""
    viewer, session = _posted(request, csrf)
    actor = _sign(request, viewer, "audit.sample", batch_id)
    s = svc.draw_sample(state(request).ws, actor, batch_id)
    session.flash.append(f"Sample drawn: {s['random']} random and {s['flagged']} flagged record(s).")
    return _back(f"/batches/{quote(batch_id)}/audit")


@router.post("/batches/{batch_id}/audit/complete")
def audit_complete(request: Request, batch_id: str, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Complete the label audit (form post)."""
    viewer, session = _posted(request, csrf)
    actor = _sign(request, viewer, "audit.complete", batch_id)
    svc.complete_audit(state(request).ws, actor, batch_id)
    session.flash.append(f"Audit of {batch_id} completed and signed; the batch is audited.")
    return _back(f"/batches/{quote(batch_id)}/approval")


# --- approval --------------------------------------------------------------------------------------------------


@router.get("/batches/{batch_id}/approval", response_class=HTMLResponse)
def approval_page(request: Request, batch_id: str) -> HTMLResponse:
    """The approval page: the policy's rule-by-rule verdict, approvals so far, approve or reject."""
    viewer, session = page_session(request)
    ws = state(request).ws
    decision = svc.policy_check(ws, viewer, batch_id)
    return render(
        request,
        "approval.html",
        viewer,
        session,
        d=decision,
        verdict=_verdict(decision),
        batch_id=batch_id,
        may_approve=viewer.can("batch.approve", decision["source"]),
        may_reject=viewer.can("batch.reject", decision["source"]),
    )


def _verdict(decision: dict[str, Any]) -> tuple[str, str]:
    """(word, css class) for the policy state. An approved or released batch is past the gate: only the
    lifecycle rule (which asks for an audited batch) fails for it, so it shows its state, not "fails"."""
    if decision["passed"]:
        return "passes", "ok"
    if decision["state"] in ("approved", "released"):
        others = [c for c in decision["rules"].get("children", []) if c.get("rule") != "lifecycle"]
        if all(c.get("passed") for c in others):
            return f"{decision['state']}: every rule but the lifecycle passes today", "ok"
        return f"{decision['state']}, but today's policy fails it", "bad"
    return "fails", "bad"


@router.get("/batches/{batch_id}/approval/statement")
def approval_statement(request: Request, batch_id: str) -> Response:
    """The unsigned approval statement as a download, to sign offline with `dataward sign-statement`."""
    viewer, _ = page_session(request)
    data = svc.prepare_statement(state(request).ws, viewer, batch_id)
    name = f"approval-{batch_id}-{viewer.name}.json"
    return Response(
        data, media_type="application/json", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/batches/{batch_id}/approve")
def approve(request: Request, batch_id: str, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Approve the batch with the principal's key held by the server (form post)."""
    viewer, session = _posted(request, csrf)
    actor = _sign(request, viewer, "batch.approve", batch_id)
    r = svc.approve(state(request).ws, actor, batch_id)
    session.flash.append(f"Approval {r['approvals']} of {r['required']} recorded; the batch is {r['state']}.")
    return _back(f"/batches/{quote(batch_id)}/approval")


@router.post("/batches/{batch_id}/approve/upload")
async def approve_upload(
    request: Request,
    batch_id: str,
    statement: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record an approval signed offline: the uploaded DSSE envelope (form post)."""
    from starlette.concurrency import run_in_threadpool

    data = await statement.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise InputError("the uploaded statement is over 1 MiB")

    def record() -> tuple[Session, dict[str, Any]]:
        viewer, session = _posted(request, csrf)
        st = state(request)
        submitter = st.ws.actor(viewer.name) if st.server_side_signing else st.ws.log_actor()
        return session, svc.approve_with_statement(st.ws, viewer, submitter, batch_id, data)

    session, r = await run_in_threadpool(record)
    session.flash.append(
        f"Signed approval by {r['approver']} recorded ({r['approvals']} of {r['required']}); the batch is {r['state']}."
    )
    return _back(f"/batches/{quote(batch_id)}/approval")


@router.post("/batches/{batch_id}/reject")
def reject(
    request: Request,
    batch_id: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Reject the batch with a reason (form post)."""
    viewer, session = _posted(request, csrf)
    actor = _sign(request, viewer, "batch.reject", batch_id)
    svc.reject(state(request).ws, actor, batch_id, reason)
    session.flash.append(f"Batch {batch_id} rejected.")
    return _back(f"/batches/{quote(batch_id)}")


# --- versions, diffs, lineage ----------------------------------------------------------------------------------


@router.get("/versions", response_class=HTMLResponse)
def versions_page(
    request: Request,
    a: Annotated[str | None, Query(alias="from", max_length=200)] = None,
    b: Annotated[str | None, Query(alias="to", max_length=200)] = None,
) -> HTMLResponse:
    """Every version, and the diff between two when ``from`` and ``to`` are given."""
    viewer, session = page_session(request)
    ws = state(request).ws
    vs = svc.versions(ws, viewer)
    d = svc.diff(ws, viewer, a, b) if a and b else None
    return render(request, "versions.html", viewer, session, versions=vs, diff=d, a=a or "", b=b or "")


@router.get("/versions/{spec}", response_class=HTMLResponse)
def version_page(request: Request, spec: str) -> HTMLResponse:
    """One version with a quick verification and its diff against its parent."""
    viewer, session = page_session(request)
    ws = state(request).ws
    v = svc.version(ws, viewer, spec)
    d = svc.diff(ws, viewer, f"{v['dataset']}@{v['parent']}", v["version"]) if v["parent"] else None
    return render(request, "version.html", viewer, session, v=v, diff=d)


@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(request: Request, target: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """The lineage graph as SVG, or the part around ``target``."""
    viewer, session = page_session(request)
    g = svc.lineage_graph(state(request).ws, viewer, target or None)
    graph = svg.lineage(g["nodes"], g["edges"], g["target"])
    return render(request, "lineage.html", viewer, session, graph=graph, g=g, target=target or "")


# --- incidents -------------------------------------------------------------------------------------------------


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> HTMLResponse:
    """Every incident with its trace and resolution, searchable and paged."""
    viewer, session = page_session(request)
    everything = svc.incident_list(state(request).ws, viewer)
    found = [i for i in everything if _matches(i, q)]
    page = found[offset : offset + PAGE]
    return render(
        request, "incidents.html", viewer, session, incidents=page, total=len(found), offset=offset, q=q, page=PAGE
    )


def _matches(row: dict[str, Any], q: str) -> bool:
    """A table search: every word of ``q`` appears somewhere in the row (case-insensitive)."""
    text = json.dumps(row, default=str).lower()
    return all(w in text for w in q.lower().split())


# --- audit log -------------------------------------------------------------------------------------------------


@router.get("/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    action: Annotated[str, Query(max_length=200)] = "",
    principal: Annotated[str, Query(max_length=200)] = "",
    subject: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> HTMLResponse:
    """Log entries, newest first, filtered by action, principal or subject, paged."""
    viewer, session = page_session(request)
    ws = state(request).ws
    entries = svc.log_entries(
        ws,
        viewer,
        action=action or None,
        principal=principal or None,
        subject=subject or None,
        limit=50,
        offset=offset,
    )
    cp = svc.checkpoint(ws, viewer)
    filters = {"action": action, "principal": principal, "subject": subject}
    return render(request, "log.html", viewer, session, entries=entries, filters=filters, offset=offset, cp=cp)


@router.get("/log/{seq}", response_class=HTMLResponse)
def log_entry_page(request: Request, seq: int) -> HTMLResponse:
    """One log entry with its details and an inclusion proof checked against the log key."""
    viewer, session = page_session(request)
    ws = state(request).ws
    if not 0 <= seq <= 2**53:
        raise InputError(f"log entry {seq} is out of range")
    e = svc.log_entry(ws, viewer, seq)
    proof = svc.inclusion_proof(ws, viewer, seq)
    return render(
        request,
        "log_entry.html",
        viewer,
        session,
        e=e,
        details=json.dumps(e["details"], indent=2, sort_keys=True),
        proof=proof,
    )


@router.get("/log/{seq}/proof.json")
def log_proof_json(request: Request, seq: int) -> Response:
    """An entry's inclusion proof as a JSON download (as `dataward log prove --json`)."""
    viewer, _ = page_session(request)
    if not 0 <= seq <= 2**53:
        raise InputError(f"log entry {seq} is out of range")
    return JSONResponse(svc.inclusion_proof(state(request).ws, viewer, seq))


__all__ = ["Error", "router"]
