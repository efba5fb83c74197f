"""The console application: FastAPI, server-rendered pages, /api/v1 with Bearer tokens, static assets.

``create_app(workspace_path, server_side_signing=False)`` builds the app; ``dataward serve`` runs it with
uvicorn on 127.0.0.1 by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from dataward.errors import Error
from dataward.log.witness import check_witness
from dataward.web import _routes_api as routes_api
from dataward.web import _routes_pages as routes_pages
from dataward.web._request_state import HERE, ConsoleState, LoginRequired, page_error, status_of
from dataward.workspace import Workspace

__all__ = ["create_app", "mark_phrase"]


def create_app(
    workspace: Path | str | Workspace, *, server_side_signing: bool = False, secure_cookies: bool | None = None
) -> FastAPI:
    """The console app over ``workspace``: pages, /api/v1, static files, error pages and security headers."""
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
