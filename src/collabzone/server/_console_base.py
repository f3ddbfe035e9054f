"""What every console page shares: the session, CSRF tokens, templates and error pages.

The session is a signed, HttpOnly, SameSite=Strict cookie holding a short-lived access
token (the same JWTs as the API), authorised on every page by the same
:meth:`ServerState.authorise` as the REST routes, with the page's scope. Every form carries
a CSRF token bound to the session; the sign-in form one bound to a pre-session nonce
cookie (login CSRF).
Errors under ``/console`` are HTML pages (a browser never shows the API's raw JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.server import _console_words
from collabzone.server._headers import is_https
from collabzone.server._state import Caller
from collabzone.server.deps import state_of

COOKIE = "cz_session"
SESSION_TTL = 3600
LOGIN_COOKIE = "cz_login"
LOGIN_TTL = 1800
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


def caller_of(request: Request, scope: str = "zone:read") -> Caller:
    """The session's caller, authorised for ``scope`` exactly as the REST API would be
    (or a redirect to sign in).

    The cookie holds an ordinary access token, so the console goes through the same
    :meth:`ServerState.authorise` as every ``/v1`` route: revocation, the party's current
    state, the token's scopes and rate limits. A narrowed token (say ``zone:read`` copied
    from an API client into the cookie) cannot approve here any more than over REST.
    """
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignIn
    try:
        return state.authorise(
            token,
            scope,
            f"console {request.method} {request.url.path}",
            request.client.host if request.client else "",
        )
    except AuthenticationError:
        raise SignIn from None


def secure_cookies(request: Request) -> bool:
    """Whether the console's cookies are marked ``Secure`` (configured, or over TLS)."""
    return state_of(request).settings.secure_cookies or is_https(request)


def csrf_of(request: Request, caller: Caller) -> str:
    """The CSRF token of this session (an HMAC of the session's token id)."""
    key = state_of(request).csrf_key
    return hmac.new(key, caller.principal.token_id.encode(), hashlib.sha256).hexdigest()[:32]


def check_csrf(request: Request, caller: Caller, given: str) -> None:
    """Refuse (and audit) a form whose CSRF token is not this session's."""
    if not hmac.compare_digest(csrf_of(request, caller), given):
        state_of(request).deny(caller.party.name, "console", "bad CSRF token")
        raise NotAuthorisedError("the form expired or came from another site: reload the page")


def login_csrf(request: Request, nonce: str) -> str:
    """The sign-in form's CSRF token, bound to the pre-session nonce cookie."""
    key = state_of(request).csrf_key
    return hmac.new(key, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def check_login_csrf(request: Request, given: str) -> bool:
    """Whether the sign-in form came from this site's own form page (its nonce cookie)."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    return bool(nonce) and hmac.compare_digest(login_csrf(request, nonce or ""), given)


def login_page(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    """The sign-in form, bound to a pre-session nonce (login CSRF).

    A foreign page could otherwise post its own party's token to the sign-in form and sign
    the owner's browser in as that party. The form therefore carries a token bound to a
    nonce cookie that only this form page sets (SameSite=Strict, so a cross-site post
    arrives without it).
    """
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    oidc = getattr(request.app.state, "oidc", None) is not None
    response = page(
        request,
        None,
        "login.html",
        status_code=status_code,
        error=error,
        oidc=oidc,
        csrf=login_csrf(request, nonce),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_TTL,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path=f"{PREFIX}/login",
    )
    return response


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
