"""The web console for owners and auditors: server-rendered HTML, no script needed.

Sign in with the party token (see :mod:`._console_base` for the session, the scoped
authorisation of every page and CSRF). Pages: the pending list (each request in one
sentence, its cost next to what remains of each budget, approve / deny with a reason in
place); a request page in plain words (what the analyst would receive, the rewritten SQL,
the risk if approved, the decision); history, the audit log and the budgets
(:mod:`._console_pages`); the operator's parties page (disable / enable / rotate-secret).
Errors are HTML pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collabzone.errors import AuthenticationError, CollabzoneError, error_info
from collabzone.model import Party, RequestStatus
from collabzone.model import Request as ZoneRequest
from collabzone.server import _console_pages
from collabzone.server._console_base import (
    COOKIE,
    HERE,
    LOGIN_COOKIE,
    PREFIX,
    SESSION_TTL,
    caller_of,
    check_csrf,
    check_login_csrf,
    login_page,
    page,
    secure_cookies,
)
from collabzone.server._console_words import pretty_sql, receives, standings
from collabzone.server._result_view import shown_progress, shown_result
from collabzone.server._state import Caller, RateLimited
from collabzone.server.auth import scopes_for
from collabzone.server.deps import state_of

__all__ = ["COOKIE", "router", "sign_in"]

router = APIRouter(prefix=PREFIX, include_in_schema=False)
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def _awaits(request: ZoneRequest, party: str) -> bool:
    return (
        request.status is RequestStatus.AWAITING_APPROVAL
        and party in request.owners_to_approve
        and party not in {d.owner for d in request.decisions}
    )


def _plain(caller: Caller, request: ZoneRequest) -> dict[str, Any]:
    """A request in plain words: the sentence, the compiled form, cost against budgets."""
    plan = caller.zone.request_plan(request.id)
    details = plan["details"] if isinstance(plan["details"], dict) else {}
    sql = details.get("governed_sql")
    return {
        "sentence": receives(
            request.technique, request.requester, request.datasets, plan["outputs"], details
        ),
        "governed_sql": pretty_sql(sql) if isinstance(sql, str) else None,
        "standings": standings(request.cost, plan["standing"]),
    }


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's stylesheet and its one optional script (local times)."""
    if name not in STATIC:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(
        (HERE / "static" / name).read_bytes(),
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return login_page(request)


@router.post("/login", response_model=None)
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Sign in with a party token.

    The form must carry the CSRF token bound to this browser's sign-in nonce (login CSRF,
    see :func:`._console_base.login_page`); failed sign-ins count towards the same
    brute-force limits as ``/oauth/token`` (429 with Retry-After once locked out).
    """
    state = state_of(request)
    client = request.client.host if request.client else ""
    if not check_login_csrf(request, csrf):
        state.deny("anonymous", "console.login", "sign-in form without a valid CSRF token", client)
        return login_page(
            request, "The sign-in form expired or came from another site: sign in again.", 403
        )
    try:
        party = state.sign_in(token.strip(), "console.login", client)
    except AuthenticationError:
        return login_page(request, "That token matches no party.", 401)
    except RateLimited as exc:
        refused = login_page(request, f"{exc.detail}.", 429)
        refused.headers.update(exc.headers or {})
        return refused
    response = sign_in(request, party)
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


def sign_in(request: Request, party: Party) -> RedirectResponse:
    """Start a console session for ``party`` (after a token or an identity provider)."""
    state = state_of(request)
    issued = state.tokens.issue(party, scopes_for(party), ttl=SESSION_TTL)
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        COOKIE,
        issued["access_token"],
        max_age=SESSION_TTL,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path=PREFIX,
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)]) -> RedirectResponse:
    caller = caller_of(request)
    check_csrf(request, caller, csrf)
    state_of(request).tokens.revoked.revoke(caller.principal.token_id, caller.principal.expires_at)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("/", response_class=HTMLResponse)
def pending(request: Request) -> HTMLResponse:
    caller = caller_of(request)
    waiting = [r for r in caller.zone.requests() if _awaits(r, caller.party.name)]
    waiting.sort(key=lambda r: r.created_at)
    return page(
        request,
        caller,
        "pending.html",
        requests=[(r, _plain(caller, r)) for r in waiting],
    )


def _detail(
    request: Request, caller: Caller, zone_request: ZoneRequest, error: str | None, status: int
) -> HTMLResponse:
    receipt = None
    if zone_request.status is RequestStatus.RELEASED:
        receipt = caller.zone.receipt(zone_request.id)
    can_decide = _awaits(zone_request, caller.party.name)
    # an owner about to decide sees what the answer would disclose with earlier ones
    risk = caller.zone.request_risk(zone_request.id) if can_decide else None
    return page(
        request,
        caller,
        "request.html",
        status_code=status,
        r=zone_request,
        plain=_plain(caller, zone_request),
        receipt=receipt,
        result=shown_result(caller.zone, zone_request),
        progress=shown_progress(caller.zone, zone_request),
        can_decide=can_decide,
        risk=risk,
        error=error,
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def detail(request: Request, request_id: str) -> HTMLResponse:
    caller = caller_of(request)
    return _detail(request, caller, caller.zone.request(request_id), None, 200)


@router.post("/requests/{request_id}/{decision}", response_model=None)
def decide(
    request: Request,
    request_id: str,
    decision: str,
    reason: Annotated[str, Form(max_length=2000)],
    csrf: Annotated[str, Form(max_length=64)],
    back: Annotated[str, Form(max_length=16)] = "request",
) -> Response:
    caller = caller_of(request, "requests:decide")
    check_csrf(request, caller, csrf)
    if decision not in ("approve", "deny"):
        raise HTTPException(404, "no such decision")
    try:
        if decision == "approve":
            decided = caller.zone.approve(request_id, reason)
        else:
            decided = caller.zone.deny(request_id, reason)
    except CollabzoneError as exc:
        # the page again, with why; the status says it too (scripts and proxies must not
        # read a refused decision as a success)
        return _detail(
            request,
            caller,
            caller.zone.request(request_id),
            exc.message,
            error_info(exc).http_status,
        )
    state_of(request).notifier.notify(decided)
    target = f"{PREFIX}/" if back == "pending" else f"{PREFIX}/requests/{request_id}"
    return RedirectResponse(target, status_code=303)


@router.get("/parties", response_class=HTMLResponse)
def parties_page(request: Request) -> HTMLResponse:
    """The operator's view of every party, with disable / enable / rotate-secret."""
    caller = caller_of(request, "parties:write")
    return page(request, caller, "parties.html", parties=caller.zone.parties(), error=None)


@router.post("/parties/{name}/{action}", response_class=HTMLResponse)
def party_action(
    request: Request,
    name: str,
    action: str,
    csrf: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Disable, enable or re-key a party (operator); a new secret is shown once."""
    caller = caller_of(request, "parties:write")
    check_csrf(request, caller, csrf)
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
    return page(
        request,
        caller,
        "parties.html",
        status_code=status,
        parties=caller.zone.parties(),
        error=error,
        secret=secret,
        secret_for=name,
    )


router.include_router(_console_pages.router)
