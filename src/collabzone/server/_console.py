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
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from collabzone.errors import AuthenticationError, CollabzoneError, NotAuthorisedError
from collabzone.model import Party, RequestStatus
from collabzone.model import Request as ZoneRequest
from collabzone.server import _acting
from collabzone.server._api import state_of
from collabzone.server._chart import budget_series, svg_chart
from collabzone.server._state import Caller
from collabzone.server.auth import scopes_for

COOKIE = "cz_session"
SESSION_TTL = 3600
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)


class _SignIn(HTTPException):
    def __init__(self) -> None:
        super().__init__(303, "sign in first", headers={"Location": "/console/login"})


def _caller(request: Request) -> Caller:
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise _SignIn
    try:
        principal = state.tokens.verify(token)
    except AuthenticationError:
        raise _SignIn from None
    return Caller(_acting.acting_as(state.zone, principal.party), principal)


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


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    oidc = getattr(request.app.state, "oidc", None) is not None
    return _page(request, None, "login.html", error=None, oidc=oidc)


@router.post("/login", response_model=None)
def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
    state = state_of(request)
    try:
        party = _acting.authenticate(state.zone, token.strip())
    except AuthenticationError:
        return _page(request, None, "login.html", error="That token matches no party.")
    return sign_in(request, party)


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
        secure=state.settings.secure_cookies,
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
    caller = _caller(request)
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
        return _page(
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
    state_of(request).notifier.notify(decided)
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/history", response_class=HTMLResponse)
def history(request: Request) -> HTMLResponse:
    caller = _caller(request)
    everything = sorted(caller.zone.requests(), key=lambda r: r.created_at, reverse=True)
    return _page(request, caller, "history.html", requests=everything)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    caller = _caller(request)
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


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
