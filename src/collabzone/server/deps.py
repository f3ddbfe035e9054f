"""What every API route depends on: the server state and the calling party, authorised for a
scope by its bearer token (techniques' own routes use these too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from collabzone.model import Request as ZoneRequest
from collabzone.server._state import Caller, ServerState
from collabzone.server.auth import ALL_SCOPES

ID = r"^[A-Za-z0-9_:.-]{1,100}$"

oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes={s: s for s in sorted(ALL_SCOPES)}
        )
    ),
    auto_error=False,
)


def state_of(request: Request) -> ServerState:
    """The server's state (zone, settings, notifier, limits) of the app handling ``request``."""
    state: ServerState = request.app.state.cz
    return state


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require(scope: str) -> Callable[..., Caller]:
    """A dependency: the caller, if its token is valid and carries ``scope``."""

    def dependency(
        request: Request, authorization: Annotated[str | None, Depends(oauth2)]
    ) -> Caller:
        return state_of(request).authorise(
            bearer(authorization),
            scope,
            f"{request.method} {request.url.path}",
            request.client.host if request.client else "",
        )

    return dependency


Read = Annotated[Caller, Depends(require("zone:read"))]
Audit = Annotated[Caller, Depends(require("audit:read"))]
Submit = Annotated[Caller, Depends(require("requests:submit"))]
Decide = Annotated[Caller, Depends(require("requests:decide"))]
WriteData = Annotated[Caller, Depends(require("datasets:write"))]
Jobs = Annotated[Caller, Depends(require("jobs:run"))]
Operator = Annotated[Caller, Depends(require("parties:write"))]


def notify(request: Request, zone_request: ZoneRequest) -> ZoneRequest:
    """Tell the parties concerned that a request changed (their webhooks), and pass it on."""
    state_of(request).notifier.notify(zone_request)
    return zone_request
