"""What every console page shares: the session, CSRF tokens, templates and error pages.

The session is a signed, HttpOnly, SameSite=Strict cookie holding a short-lived access
token (the same JWTs as the API). Every form carries a CSRF token bound to the session.
Errors under ``/console`` are HTML pages (a browser never shows the API's raw JSON).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.server import _acting, _console_words
from collabzone.server._api import state_of
from collabzone.server._state import Caller

COOKIE = "cz_session"
SESSION_TTL = 3600
PREFIX = "/console"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = _console_words.when
templates.env.filters["status_word"] = _console_words.status_word
templates.env.filters["cost_words"] = _console_words.cost_words
templates.env.filters["action_words"] = _console_words.action_words
templates.env.filters["left_words"] = _console_words.left_words

ERROR_TITLES = {
    400: "That request was not understood",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "That conflicts with the zone's state",
    413: "That is too large",
    422: "Some input was not valid",
    429: "Too many attempts",
}


class SignIn(HTTPException):
    """Raised by a page that needs a session: the browser is sent to the sign-in page."""

    def __init__(self) -> None:
        super().__init__(303, "sign in first", headers={"Location": f"{PREFIX}/login"})


def caller_of(request: Request) -> Caller:
    """The signed-in party of this browser (acting as itself), or a redirect to sign in."""
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignIn
    try:
        principal = state.tokens.verify(token)
    except AuthenticationError:
        raise SignIn from None
    return Caller(_acting.acting_as(state.zone, principal.party), principal)


def csrf_of(request: Request, caller: Caller) -> str:
    """The CSRF token of this session (an HMAC of the session's token id)."""
    key = state_of(request).csrf_key
    return hmac.new(key, caller.principal.token_id.encode(), hashlib.sha256).hexdigest()[:32]


def check_csrf(request: Request, caller: Caller, given: str) -> None:
    """Refuse (and audit) a form whose CSRF token is not this session's."""
    if not hmac.compare_digest(csrf_of(request, caller), given):
        state_of(request).deny(caller.party.name, "console", "bad CSRF token")
        raise NotAuthorisedError("the form expired or came from another site: reload the page")


def page(
    request: Request, caller: Caller | None, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render template ``name`` for ``caller`` (the header shows who is signed in)."""
    extra: dict[str, Any] = {"me": caller.party if caller else None, "csrf": None}
    if caller is not None:
        extra["csrf"] = csrf_of(request, caller)
    return templates.TemplateResponse(request, name, {**extra, **context}, status_code=status_code)


def is_console(request: Request) -> bool:
    """Whether ``request`` is a browser's console page (errors are then HTML)."""
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse | RedirectResponse:
    """An HTML error page with the status, a title in plain words and the message (a
    redirect, such as "sign in first", stays a redirect)."""
    if 300 <= status < 400 and headers and "location" in headers:
        return RedirectResponse(headers["location"], status_code=status)
    title = ERROR_TITLES.get(status, "Something went wrong" if status >= 500 else "Refused")
    if status == 404 and message == "Not Found":  # Starlette's words for an unknown path
        message = f"There is no console page at {request.url.path}."
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"me": None, "csrf": None, "status": status, "title": title, "message": message},
        status_code=status,
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
