"""API routes about who is calling and who takes part: the caller, the parties, their
notifications and the zone's keys (operator)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import Field

from collabzone.errors import NotAuthorisedError
from collabzone.model import Party
from collabzone.server._responses import errors
from collabzone.server._schemas import (
    NAME,
    Body,
    Me,
    PartyIn,
    PartyOut,
    ReasonIn,
    SubscriptionIn,
)
from collabzone.server.deps import (
    Operator,
    Read,
    state_of,
)
from collabzone.zone_base import SERVICES_KEY

router = APIRouter(prefix="/v1", responses=errors(401, 403, 429))


@router.get("/me", response_model=Me, tags=["identity"])
def me(caller: Read) -> Me:
    """The party this token acts for, its scopes and when the token expires."""
    return Me(
        name=caller.party.name,
        roles=[str(r) for r in caller.party.roles],
        scopes=sorted(caller.principal.scopes),
        token_expires_at=caller.principal.expires_at,
    )


@router.get("/parties", response_model=list[Party], tags=["parties"])
def parties(caller: Read) -> list[Party]:
    """Every party of the zone."""
    return caller.zone.parties()


@router.post(
    "/parties",
    response_model=PartyOut,
    status_code=201,
    tags=["parties"],
    responses=errors(400, 409, 413, 422),
)
def add_party(body: PartyIn, caller: Operator) -> PartyOut:
    """Register an organisation (operator); its secret is returned once."""
    party, secret = caller.zone.add_party(body.name, body.roles)
    return PartyOut(
        name=party.name,
        roles=[str(r) for r in party.roles],
        created_at=party.created_at,
        client_secret=secret,
    )


@router.post(
    "/parties/{name}/disable",
    response_model=Party,
    tags=["parties"],
    responses=errors(400, 404, 409, 413, 422),
)
def disable_party(
    request: Request,
    name: Annotated[str, PathParam(pattern=NAME)],
    body: ReasonIn,
    caller: Operator,
) -> Party:
    """Disable a party (operator): its secret and every token it holds are refused."""
    party = caller.zone.disable_party(name, body.reason)
    state_of(request).standing.forget(name)
    return party


@router.post(
    "/parties/{name}/enable",
    response_model=Party,
    tags=["parties"],
    responses=errors(404, 409, 422),
)
def enable_party(
    request: Request, name: Annotated[str, PathParam(pattern=NAME)], caller: Operator
) -> Party:
    """Let a disabled party act again (operator)."""
    party = caller.zone.enable_party(name)
    state_of(request).standing.forget(name)
    return party


@router.post(
    "/parties/{name}/rotate-secret",
    response_model=PartyOut,
    tags=["parties"],
    responses=errors(404, 409, 422),
)
def rotate_party_secret(
    request: Request, name: Annotated[str, PathParam(pattern=NAME)], caller: Operator
) -> PartyOut:
    """A new secret for a party (operator), shown once; old secret and tokens stop working."""
    party, secret = caller.zone.rotate_party_secret(name)
    state_of(request).standing.forget(name)
    return PartyOut(
        name=party.name,
        roles=[str(r) for r in party.roles],
        created_at=party.created_at,
        secret_version=party.secret_version,
        client_secret=secret,
    )


@router.get("/notifications", tags=["identity"])
def notifications(request: Request, caller: Read) -> dict[str, str]:
    """Where this party's notices go (set by the operator) and its webhook signing secret."""
    return state_of(request).notifier.subscription(caller.party.name)


OPERATOR_SETS_WEBHOOKS = (
    "webhook destinations are set by the zone's operator on the host "
    "(`collabzone webhook set PARTY --url URL`), never over the API: ask them; "
    "GET /v1/notifications shows yours and your signing secret"
)


@router.put("/notifications", tags=["identity"], deprecated=True, responses=errors(400, 413, 422))
def subscribe(request: Request, body: SubscriptionIn, caller: Read) -> dict[str, str]:
    """Refused for every party: a destination the server would connect to is the
    operator's to set (server-side request forgery), so this only explains where to go."""
    client = request.client.host if request.client else ""
    state_of(request).deny(
        caller.party.name, "PUT /v1/notifications", "webhook registration by a party", client
    )
    raise NotAuthorisedError(OPERATOR_SETS_WEBHOOKS)


# -- the zone's keys (operator; auditors may list) -------------------------------------------

KEY_NAME = r"^[a-z][a-z0-9_.:-]{0,120}$"


class RotateIn(Body):
    datasets: list[str] = Field(default_factory=list, max_length=1000)
    spec_zone: str | None = Field(default=None, max_length=200)


class DestroyIn(Body):
    version: int = Field(ge=1, le=2**31 - 1)


@router.get("/keys", tags=["keys"])
def key_inventory(caller: Read) -> list[dict[str, Any]]:
    """The zone's keys: names, versions, what each protects (never key material)."""
    return caller.zone.key_inventory()


@router.post("/keys/{name}/rotate", tags=["keys"], responses=errors(400, 404, 409, 413, 422))
def rotate_key(
    request: Request,
    name: Annotated[str, PathParam(pattern=KEY_NAME)],
    body: RotateIn,
    caller: Operator,
) -> dict[str, Any]:
    """Rotate a zone key and re-encrypt or re-key what it protects (resumable)."""
    summary = caller.zone.rotate_key(name, datasets=body.datasets, spec_zone=body.spec_zone)
    if name == SERVICES_KEY:  # new JWT and CSRF keys: every session ends now
        state_of(request).reload_service_keys()
    return summary


@router.post(
    "/keys/{name}/destroy",
    status_code=204,
    tags=["keys"],
    responses=errors(400, 404, 409, 413, 422),
)
def destroy_key(
    name: Annotated[str, PathParam(pattern=KEY_NAME)], body: DestroyIn, caller: Operator
) -> None:
    """Erase one old version of a zone key for good."""
    caller.zone.destroy_key(name, body.version)
