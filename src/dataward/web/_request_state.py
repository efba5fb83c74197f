"""What every console request shares: the console's state, the signed-in session, errors as HTTP statuses.

Kept apart from :mod:`dataward.web.app` so that the routers import it, and the app imports the routers,
without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

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
from dataward.web._denials import DenialAggregator
from dataward.web.auth import Session, SessionStore, Viewer, viewer_for_token_id
from dataward.workspace import Workspace

__all__ = [
    "HERE",
    "SESSION_COOKIE",
    "ConsoleState",
    "LoginRequired",
    "deny_unauthenticated",
    "page_error",
    "page_session",
    "state",
    "status_of",
]

HERE = Path(__file__).parent
SESSION_COOKIE = "dw_session"


class LoginRequired(Exception):
    """A page was asked for without a (valid) session: redirect to the sign-in page."""


@dataclass
class ConsoleState:
    """One console's workspace, signing switch, cookie policy, browser sessions and denial counter."""

    ws: Workspace
    server_side_signing: bool
    secure_cookies: bool | None  # None: Secure when the request came over https
    sessions: SessionStore = field(default_factory=SessionStore)
    denials: DenialAggregator | None = None  # unauthenticated refusals, one log entry per address and minute

    def __post_init__(self) -> None:
        if self.denials is None:
            self.denials = DenialAggregator(self.ws)


def state(request: Request) -> ConsoleState:
    """The :class:`ConsoleState` of the app serving ``request``."""
    st = request.app.state.console
    assert isinstance(st, ConsoleState)
    return st


def deny_unauthenticated(request: Request, action: str, reason: str) -> None:
    """Count a refused request of someone not signed in (aggregated; see :mod:`dataward.web._denials`)."""
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


def page_error(request: Request, code: int, message: str, advice: str | None = None) -> HTMLResponse:
    """The error page for a refused or failed page request, with the error's one line and advice."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"code": code, "message": message, "advice": advice, "viewer": None, "csrf": ""},
        status_code=code,
    )
