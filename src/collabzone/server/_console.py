"""The web console for owners and auditors: server-rendered HTML, no script needed.

Sign in with the party token; the session is a signed, HttpOnly, SameSite=Strict cookie
holding a short-lived access token (the same JWTs as the API, revoked on sign-out). Every
form carries a CSRF token bound to the session. Pages: pending requests with the exact
spec, what they touch and cost; approve / deny with a reason; history; the audit log with
its verification status; privacy budget per party over time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from collabzone.errors import (
    AuthenticationError,
    CollabzoneError,
    NotAuthorisedError,
    error_info,
)
from collabzone.model import Party, RequestStatus
from collabzone.model import Request as ZoneRequest
from collabzone.server._api import state_of
from collabzone.server._chart import budget_series, svg_chart
from collabzone.server._headers import is_https
from collabzone.server._state import Caller, RateLimited
from collabzone.server.auth import scopes_for

COOKIE = "cz_session"
SESSION_TTL = 3600
LOGIN_COOKIE = "cz_login"
LOGIN_TTL = 1800
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)


class _SignIn(HTTPException):
    def __init__(self) -> None:
        super().__init__(303, "sign in first", headers={"Location": "/console/login"})


def _caller(request: Request, scope: str = "zone:read") -> Caller:
    """The session's caller, authorised for ``scope`` exactly as the REST API would be.

    The cookie holds an ordinary access token, so the console goes through the same
    :meth:`ServerState.authorise` as every ``/v1`` route: revocation, the party's current
    state, the token's scopes and rate limits. A narrowed token (say ``zone:read`` copied
    from an API client into the cookie) cannot approve here any more than over REST.
    """
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise _SignIn
    try:
        return state.authorise(
            token,
            scope,
            f"console {request.method} {request.url.path}",
            request.client.host if request.client else "",
        )
    except AuthenticationError:
        raise _SignIn from None


def _csrf(request: Request, caller: Caller) -> str:
    key = state_of(request).csrf_key
    return hmac.new(key, caller.principal.token_id.encode(), hashlib.sha256).hexdigest()[:32]


def _check_csrf(request: Request, caller: Caller, given: str) -> None:
    if not hmac.compare_digest(_csrf(request, caller), given):
        state_of(request).deny(caller.party.name, "console", "bad CSRF token")
        raise NotAuthorisedError("the form expired or came from another site: reload the page")


def _page(request: Request, caller: Caller | None, name: str, **context: Any) -> HTMLResponse:
    extra: dict[str, Any] = {"me": caller.party if caller else None}
    if caller is not None:
        extra["csrf"] = _csrf(request, caller)
    return templates.TemplateResponse(request, name, {**extra, **context})


def _awaits(request: ZoneRequest, party: str) -> bool:
    return (
        request.status is RequestStatus.AWAITING_APPROVAL
        and party in request.owners_to_approve
        and party not in {d.owner for d in request.decisions}
    )


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The sign-in form, bound to a pre-session nonce (login CSRF, see :func:`login`)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    oidc = getattr(request.app.state, "oidc", None) is not None
    page = _page(
        request, None, "login.html", error=error, oidc=oidc, csrf=_login_csrf(request, nonce)
    )
    page.status_code = status
    page.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_TTL,
        httponly=True,
        samesite="strict",
        secure=state_of(request).settings.secure_cookies or is_https(request),
        path="/console/login",
    )
    return page


def _login_csrf(request: Request, nonce: str) -> str:
    key = state_of(request).csrf_key
    return hmac.new(key, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_model=None)
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Sign in with a party token.

    Login CSRF: a foreign page could otherwise post its own party's token here and sign
    the owner's browser in as that party (whatever the owner then uploads or approves
    lands with the attacker). The form therefore carries a token bound to a nonce cookie
    that only this site's own form page sets (SameSite=Strict, so a cross-site post
    arrives without it).
    """
    state = state_of(request)
    client = request.client.host if request.client else ""
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not hmac.compare_digest(_login_csrf(request, nonce), csrf):
        state.deny("anonymous", "console.login", "sign-in form without a valid CSRF token", client)
        return _login_page(
            request, "The sign-in form expired or came from another site: sign in again.", 403
        )
    try:
        party = state.sign_in(token.strip(), "console.login", client)
    except AuthenticationError:
        return _login_page(request, "That token matches no party.", 401)
    except RateLimited as exc:
        page = _login_page(request, f"{exc.detail}.", 429)
        page.headers.update(exc.headers or {})
        return page
    response = sign_in(request, party)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


def sign_in(request: Request, party: Party) -> RedirectResponse:
    """Start a console session for ``party`` (after a token or an identity provider)."""
    state = state_of(request)
    issued = state.tokens.issue(party, scopes_for(party), ttl=SESSION_TTL)
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(
        COOKIE,
        issued["access_token"],
        max_age=SESSION_TTL,
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies or is_https(request),
        path="/console",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)]) -> RedirectResponse:
    caller = _caller(request)
    _check_csrf(request, caller, csrf)
    state_of(request).tokens.revoked.revoke(caller.principal.token_id, caller.principal.expires_at)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/", response_class=HTMLResponse)
def pending(request: Request) -> HTMLResponse:
    caller = _caller(request)
    waiting = [r for r in caller.zone.requests() if _awaits(r, caller.party.name)]
    return _page(request, caller, "pending.html", requests=waiting, dumps=_dumps)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def detail(request: Request, request_id: str) -> HTMLResponse:
    caller = _caller(request)
    zone_request = caller.zone.request(request_id)
    receipt = None
    if zone_request.status is RequestStatus.RELEASED:
        receipt = caller.zone.receipt(request_id)
    can_decide = _awaits(zone_request, caller.party.name)
    # an owner about to decide sees what the answer would disclose with earlier ones
    risk = caller.zone.request_risk(request_id) if can_decide else None
    return _page(
        request,
        caller,
        "request.html",
        r=zone_request,
        receipt=receipt,
        can_decide=can_decide,
        risk=risk,
        dumps=_dumps,
        error=None,
    )


@router.post("/requests/{request_id}/{decision}", response_model=None)
def decide(
    request: Request,
    request_id: str,
    decision: str,
    reason: Annotated[str, Form(max_length=2000)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    caller = _caller(request, "requests:decide")
    _check_csrf(request, caller, csrf)
    if decision not in ("approve", "deny"):
        raise HTTPException(404, "no such decision")
    try:
        if decision == "approve":
            decided = caller.zone.approve(request_id, reason)
        else:
            decided = caller.zone.deny(request_id, reason)
    except CollabzoneError as exc:
        zone_request = caller.zone.request(request_id)
        page = _page(
            request,
            caller,
            "request.html",
            r=zone_request,
            receipt=None,
            can_decide=_awaits(zone_request, caller.party.name),
            risk=None,
            dumps=_dumps,
            error=exc.message,
        )
        # the page explains the refusal; the status says it too (scripts and proxies
        # must not read a refused decision as a success)
        page.status_code = error_info(exc).http_status
        return page
    state_of(request).notifier.notify(decided)
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/history", response_class=HTMLResponse)
def history(request: Request) -> HTMLResponse:
    caller = _caller(request)
    everything = sorted(caller.zone.requests(), key=lambda r: r.created_at, reverse=True)
    return _page(request, caller, "history.html", requests=everything)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    caller = _caller(request, "audit:read")
    verification = caller.zone.verify_audit()
    events = caller.zone.audit_events()[-300:]
    return _page(
        request,
        caller,
        "audit.html",
        verification=verification,
        events=list(reversed(events)),
        dumps=_dumps,
    )


@router.get("/budget", response_class=HTMLResponse)
def budget_page(request: Request) -> HTMLResponse:
    caller = _caller(request)
    requester_of = {r.id: r.requester for r in caller.zone.requests()}
    series = budget_series(caller.zone.audit_events(), requester_of)
    return _page(
        request,
        caller,
        "budget.html",
        chart=svg_chart(series),
        rows=caller.zone.budget(),
    )


@router.get("/parties", response_class=HTMLResponse)
def parties_page(request: Request) -> HTMLResponse:
    """The operator's view of every party, with disable / enable / rotate-secret."""
    caller = _caller(request, "parties:write")
    return _page(request, caller, "parties.html", parties=caller.zone.parties(), error=None)


@router.post("/parties/{name}/{action}", response_class=HTMLResponse)
def party_action(
    request: Request,
    name: str,
    action: str,
    csrf: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Disable, enable or re-key a party (operator); a new secret is shown once."""
    caller = _caller(request, "parties:write")
    _check_csrf(request, caller, csrf)
    secret = None
    status = 200
    error = None
    try:
        if action == "disable":
            caller.zone.disable_party(name, reason)
        elif action == "enable":
            caller.zone.enable_party(name)
        elif action == "rotate-secret":
            secret = caller.zone.rotate_party_secret(name)[1]
        else:
            raise HTTPException(404, "no such action")
    except CollabzoneError as exc:
        error, status = exc.message, error_info(exc).http_status
    state_of(request).standing.forget(name)
    page = _page(
        request,
        caller,
        "parties.html",
        parties=caller.zone.parties(),
        error=error,
        secret=secret,
        secret_for=name,
    )
    page.status_code = status
    return page


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
