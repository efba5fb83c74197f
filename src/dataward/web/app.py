"""The console application: FastAPI, server-rendered pages, /api/v1 with Bearer tokens, static assets.

``create_app(workspace_path, server_side_signing=False)`` builds the app; ``dataward serve`` runs it with
uvicorn on 127.0.0.1 by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from dataward.errors import (
    AuthorizationError,
    ConflictError,
    Error,
    InputError,
    IntegrityError,
    NotFoundError,
    PolicyError,
    StorageError,
)
from dataward.web.auth import Session, SessionStore, Viewer, viewer_for_token_id
from dataward.web.denials import DenialAggregator
from dataward.workspace import Workspace

HERE = Path(__file__).parent
SESSION_COOKIE = "dw_session"


class LoginRequired(Exception):
    """A page was asked for without a (valid) session: redirect to the sign-in page."""


@dataclass
class ConsoleState:
    ws: Workspace
    server_side_signing: bool
    secure_cookies: bool | None  # None: Secure when the request came over https
    sessions: SessionStore = field(default_factory=SessionStore)
    denials: DenialAggregator | None = None  # unauthenticated refusals, one log entry per address and minute

    def __post_init__(self) -> None:
        if self.denials is None:
            self.denials = DenialAggregator(self.ws)


def state(request: Request) -> ConsoleState:
    st = request.app.state.console
    assert isinstance(st, ConsoleState)
    return st


def deny_unauthenticated(request: Request, action: str, reason: str) -> None:
    """Count a refused request of someone not signed in (aggregated; see :mod:`dataward.web.denials`)."""
    agg = state(request).denials
    assert agg is not None
    agg.add(request.client.host if request.client else None, action, reason)


def page_session(request: Request) -> tuple[Viewer, Session]:
    """The browser session's principal, re-checked against its token (revoked or expired: signed out)."""
    st = state(request)
    session = st.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired
    try:
        viewer = viewer_for_token_id(st.ws, session.token_id)
    except AuthorizationError:
        st.sessions.close(session.id)
        raise LoginRequired from None
    return viewer, session


def status_of(exc: Error) -> int:
    """The HTTP status for a dataward error (storage failures are the server's: 503)."""
    if isinstance(exc, StorageError):
        return 503
    if isinstance(exc, AuthorizationError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError | PolicyError):
        return 409
    if isinstance(exc, IntegrityError):
        return 409
    if isinstance(exc, InputError):
        return 400
    return 400


def create_app(
    workspace: Path | str | Workspace, *, server_side_signing: bool = False, secure_cookies: bool | None = None
) -> FastAPI:
    from dataward.log.witness import check_witness
    from dataward.web import routes_api, routes_pages

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    check_witness(ws)
    console = ConsoleState(ws, server_side_signing, secure_cookies)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        assert console.denials is not None
        await run_in_threadpool(console.denials.flush_all)  # what is pending when the console stops

    app = FastAPI(
        lifespan=lifespan,
        title="dataward console API",
        version="1",
        description="The dataward workflow over HTTP: Bearer tokens (`dataward token create`), "
        "the same JSON the CLI prints with --json.",
        docs_url=None,  # served below from the installed swagger-ui-bundle: the console loads nothing from outside
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.console = console
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["mark"] = mark_phrase
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _mount_api_docs(app)
    app.include_router(routes_api.router)
    app.include_router(routes_pages.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Error)
    async def _error(request: Request, exc: Error) -> Response:
        code = status_of(exc)
        if request.url.path.startswith("/api/"):
            headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            return JSONResponse({"error": str(exc), "advice": exc.advice or None}, status_code=code, headers=headers)
        return page_error(request, code, str(exc), exc.advice)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        agg = console.denials
        if agg is not None and agg.due():  # the first request after a minute writes that minute's counts
            await run_in_threadpool(agg.flush_due)
        response: Response = await call_next(request)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def mark_phrase(value: Any, phrase: Any) -> Markup:
    """``value`` HTML-escaped, with every occurrence of ``phrase`` (a finding's trigger) in ``<mark>``."""
    text = str(value)
    if not phrase or not isinstance(phrase, str):
        return escape(text)
    parts = text.split(phrase)
    return Markup(f"<mark>{escape(phrase)}</mark>").join(escape(p) for p in parts)  # noqa: S704 (escaped above)


API_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dataward console API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi="/api/v1/openapi.json"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script></body></html>
"""


def _mount_api_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs from the swagger-ui-py package (no CDN; the CSP forbids inline scripts, so
    the start-up call lives in static/api-docs.js). Without the package /api/docs is simply absent."""
    try:
        import swagger_ui  # type: ignore[import-untyped]
    except ImportError:
        return
    assets = Path(swagger_ui.__file__).parent / "static"  # Swagger UI 5 (reads OpenAPI 3.1, which FastAPI emits)
    app.mount("/api/docs/assets", StaticFiles(directory=str(assets)), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def _api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS_PAGE)


def page_error(request: Request, code: int, message: str, advice: str | None = None) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"code": code, "message": message, "advice": advice, "viewer": None, "csrf": ""},
        status_code=code,
    )
