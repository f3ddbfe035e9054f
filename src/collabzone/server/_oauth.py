"""The OAuth2 endpoints: client-credentials token (RFC 6749 4.4) and revocation (RFC 7009)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from collabzone.errors import AuthenticationError, CollabzoneError, NotAuthorisedError
from collabzone.server._responses import ErrorOut, OAuthErrorOut, errors
from collabzone.server._state import RateLimited
from collabzone.server.auth import scopes_for
from collabzone.server.deps import state_of

router = APIRouter(prefix="/oauth", tags=["oauth2"])


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="collabzone"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, _, password = decoded.partition(":")
    return unquote(user), unquote(password)


@router.post(
    "/token",
    responses={
        **errors(401, model=OAuthErrorOut),
        **errors(400, model=OAuthErrorOut | ErrorOut),  # RFC 6749, or an unreadable body
        **errors(413, 422, 429),
    },
)
def token(
    request: Request,
    grant_type: Annotated[
        str,  # not a Literal: any other value gets RFC 6749's 400 unsupported_grant_type
        Form(max_length=100, json_schema_extra={"enum": ["client_credentials"]}),
    ],
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=1000)] = None,
) -> Any:
    """Exchange a party's name and secret for a short-lived access token (a signed JWT)."""
    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    wait = state.limiter.acquire(f"ip:{client}")
    if wait:
        raise RateLimited(wait)
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "use grant_type=client_credentials")
    basic_id, basic_secret = _basic(request)
    client_id = client_id or basic_id
    client_secret = client_secret or basic_secret
    if not client_secret:
        state.deny("anonymous", "oauth.token", "no client secret", client)
        return _oauth_error(401, "invalid_client", "give client_id and client_secret")
    try:
        party = state.sign_in(client_secret, "oauth.token", client, client_id)
    except AuthenticationError:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    try:
        scopes = scopes_for(party, scope)
    except CollabzoneError as exc:
        state.deny(party.name, "oauth.token", "scope beyond the party's roles", client)
        return _oauth_error(400, "invalid_scope", exc.message)
    return JSONResponse(state.tokens.issue(party, scopes), headers={"Cache-Control": "no-store"})


@router.post("/revoke", responses=errors(400, 401, 403, 413, 422, 429))
def revoke(request: Request, token: Annotated[str, Form(min_length=1, max_length=4000)]) -> Any:
    """Revoke an access token: its own bearer, the same party, or the operator may."""
    state = state_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, bearer = header.partition(" ")
    client = request.client.host if request.client else ""
    caller = state.authenticate(
        bearer.strip() if scheme.lower() == "bearer" else None, "revoke", client
    )
    try:
        target = state.tokens.verify(token)
    except AuthenticationError:
        return JSONResponse({}, status_code=200)  # RFC 7009: unknown tokens are not an error
    if target.party.name != caller.party.name and "parties:write" not in caller.scopes:
        state.deny(caller.party.name, "revoke", "another party's token", client)
        raise NotAuthorisedError("only the token's party or the operator can revoke it")
    state.tokens.revoked.revoke(target.token_id, target.expires_at)
    return JSONResponse({}, status_code=200)
