"""The JSON API: one route per zone operation, each acting as the token's party."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from pydantic import Field

from collabzone import audit_checkpoint as checkpoints
from collabzone.audit import Verification
from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.model import Agreement, Dataset, Party, Receipt, Release, RequestStatus
from collabzone.model import Request as ZoneRequest
from collabzone.server._responses import errors
from collabzone.server._result_view import request_progress
from collabzone.server._schemas import (
    NAME,
    AgreementIn,
    Body,
    CheckpointDoc,
    CompleteIn,
    Me,
    PartyIn,
    PartyOut,
    ReasonIn,
    RegisterIn,
    RemoteIn,
    SubmitIn,
    SubscriptionIn,
    VerificationOut,
    VerifyIn,
)
from collabzone.server._state import Caller, ServerState
from collabzone.server.auth import ALL_SCOPES
from collabzone.zone_base import SERVICES_KEY

UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
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

router = APIRouter(prefix="/v1", responses=errors(401, 403, 429))


def _notify(request: Request, zone_request: ZoneRequest) -> ZoneRequest:
    state_of(request).notifier.notify(zone_request)
    return zone_request


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


@router.get("/datasets", response_model=list[Dataset], tags=["datasets"])
def datasets(caller: Read) -> list[Dataset]:
    """Datasets this party owns or that an active agreement shares with it."""
    return caller.zone.datasets()


@router.post(
    "/datasets",
    response_model=Dataset,
    status_code=201,
    tags=["datasets"],
    responses=errors(400, 409, 413, 422),
)
def add_dataset(
    request: Request,
    caller: WriteData,
    name: Annotated[str, Form(pattern=NAME)],
    spec: Annotated[
        str, Form(min_length=1, max_length=1 << 20, description="dataset spec as JSON")
    ],
    file: Annotated[UploadFile, File(description="CSV or Parquet file")],
    description: Annotated[str | None, Form(max_length=2000)] = None,
) -> Dataset:
    """Upload a CSV or Parquet file (streamed to disk) as a dataset or a new version."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInputError(f"upload a file ending in one of {', '.join(UPLOAD_SUFFIXES)}")
    try:
        spec_doc = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"spec is not valid JSON (line {exc.lineno})") from None
    if not isinstance(spec_doc, dict):
        raise InvalidInputError("spec must be a JSON object with a `columns` list")
    spool = state_of(request).settings.state_dir / "uploads"
    with tempfile.NamedTemporaryFile(dir=spool, suffix=suffix, delete=False) as handle:
        shutil.copyfileobj(file.file, handle, 1 << 20)
        path = Path(handle.name)
    try:
        return caller.zone.add_dataset(name, path, spec_doc, description)
    finally:
        path.unlink(missing_ok=True)


@router.post(
    "/datasets/registered",
    response_model=Dataset,
    status_code=201,
    tags=["datasets"],
    responses=errors(400, 409, 413, 422),
)
def register_dataset(body: RegisterIn, caller: WriteData) -> Dataset:
    """Declare a dataset that stays at the owner's premises (its node runs the jobs)."""
    return caller.zone.register_dataset(
        body.name, body.spec, row_count=body.row_count, description=body.description
    )


@router.post(
    "/datasets/remote",
    response_model=Dataset,
    status_code=201,
    tags=["datasets"],
    responses=errors(400, 409, 413, 422),
)
def add_remote_dataset(body: RemoteIn, caller: WriteData) -> Dataset:
    """Register a table of the owner's warehouse (the URL is sealed, never shown)."""
    if body.spark is not None and not body.spark.startswith(("spark://", "sc://")):
        # a local Spark would read files of the zone's own host for whoever asked
        raise InvalidInputError(
            "the server reads Spark sources only through a cluster: spark://host:7077 or "
            "sc://host:15002 (local[n] is for embedded zones)"
        )
    return caller.zone.add_remote_dataset(
        body.name,
        body.spec,
        postgres=body.postgres,
        table=body.table,
        spark=body.spark,
        path=body.path,
        description=body.description,
    )


@router.delete("/datasets/{name}", status_code=204, tags=["datasets"], responses=errors(404, 422))
def remove_dataset(name: Annotated[str, PathParam(pattern=NAME)], caller: WriteData) -> None:
    """Delete one's own dataset and its data."""
    caller.zone.remove_dataset(name)


@router.get(
    "/agreements", response_model=list[Agreement], tags=["agreements"], responses=errors(422)
)
def agreements(
    caller: Read, dataset: Annotated[str | None, Query(pattern=NAME)] = None
) -> list[Agreement]:
    """Agreements governing data this party touches."""
    return caller.zone.agreements(dataset)


@router.post(
    "/agreements",
    response_model=Agreement,
    status_code=201,
    tags=["agreements"],
    responses=errors(400, 404, 409, 413, 422),
)
def add_agreement(body: AgreementIn, caller: WriteData) -> Agreement:
    """Sign an agreement on one's own dataset."""
    return caller.zone.add_agreement(
        body.dataset,
        grantees=body.grantees,
        technique=body.technique,
        purposes=body.purposes,
        rules=body.rules,
        approval=body.approval,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )


@router.get(
    "/agreements/{agreement_id}",
    response_model=Agreement,
    tags=["agreements"],
    responses=errors(404, 422),
)
def agreement(agreement_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> Agreement:
    """One agreement visible to this party."""
    return caller.zone.agreement(agreement_id)


@router.post(
    "/agreements/{agreement_id}/revoke",
    response_model=Agreement,
    tags=["agreements"],
    responses=errors(400, 404, 409, 413, 422),
)
def revoke_agreement(
    agreement_id: Annotated[str, PathParam(pattern=ID)], body: ReasonIn, caller: WriteData
) -> Agreement:
    """End an agreement now (owner only)."""
    return caller.zone.revoke_agreement(agreement_id, body.reason)


@router.post(
    "/requests",
    response_model=ZoneRequest,
    status_code=201,
    tags=["requests"],
    responses=errors(400, 404, 409, 413, 422),
)
def submit(request: Request, body: SubmitIn, caller: Submit) -> ZoneRequest:
    """Ask a question; it runs as far as the agreements let it go."""
    made = caller.zone.submit(body.technique, body.spec, body.purpose)
    assert isinstance(made, ZoneRequest)
    return _notify(request, made)


@router.post("/price", tags=["requests"], responses=errors(400, 404, 409, 413, 422))
def price(body: SubmitIn, caller: Submit) -> dict[str, Any]:
    """Dry run: what a request would touch, which rules apply, what it costs."""
    return caller.zone.price(body.technique, body.spec, body.purpose)


@router.get("/requests", response_model=list[ZoneRequest], tags=["requests"], responses=errors(422))
def requests(caller: Read, status: RequestStatus | None = None) -> list[ZoneRequest]:
    """Requests this party asked, must decide, or that touch its datasets."""
    return caller.zone.requests(status)


@router.get(
    "/requests/{request_id}",
    response_model=ZoneRequest,
    tags=["requests"],
    responses=errors(404, 422),
)
def one_request(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> ZoneRequest:
    """One request that concerns this party."""
    return caller.zone.request(request_id)


@router.post(
    "/requests/{request_id}/approve",
    response_model=ZoneRequest,
    tags=["requests"],
    responses=errors(400, 404, 409, 413, 422),
)
def approve(
    request: Request,
    request_id: Annotated[str, PathParam(pattern=ID)],
    body: ReasonIn,
    caller: Decide,
) -> ZoneRequest:
    """Approve a request touching one's dataset; the last approval runs it."""
    return _notify(request, caller.zone.approve(request_id, body.reason))


@router.post(
    "/requests/{request_id}/deny",
    response_model=ZoneRequest,
    tags=["requests"],
    responses=errors(400, 404, 409, 413, 422),
)
def deny(
    request: Request,
    request_id: Annotated[str, PathParam(pattern=ID)],
    body: ReasonIn,
    caller: Decide,
) -> ZoneRequest:
    """Deny a request touching one's dataset, with a reason."""
    return _notify(request, caller.zone.deny(request_id, body.reason))


@router.get(
    "/requests/{request_id}/result",
    response_model=Release,
    tags=["requests"],
    responses=errors(404, 409, 422),
)
def result(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> Release:
    """A released result with its privacy receipt."""
    return caller.zone.result(request_id)


@router.get("/requests/{request_id}/risk", tags=["requests"], responses=errors(404, 409, 422))
def risk(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> dict[str, Any]:
    """What the request would disclose if released now (its data owners and auditors)."""
    return caller.zone.request_risk(request_id)


@router.get("/requests/{request_id}/progress", tags=["requests"], responses=errors(404, 409, 422))
def progress(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> dict[str, Any]:
    """Where a running job stands (techniques that report it, e.g. federated: round x of
    n, clients, epsilon so far, evaluation metrics per round), from the audit events the
    caller may read."""
    zone_request = caller.zone.request(request_id)
    doc = request_progress(caller.zone, zone_request)
    if doc is None:
        raise ConflictError(f"{zone_request.technique} requests report no progress")
    return doc


@router.get("/requests/{request_id}/plan", tags=["requests"], responses=errors(404, 409, 422))
def plan(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> dict[str, Any]:
    """What the zone planned for the request and the requester's budget standing (the
    parties that may read the request)."""
    return caller.zone.request_plan(request_id)


@router.get(
    "/requests/{request_id}/receipt",
    response_model=Receipt,
    tags=["requests"],
    responses=errors(404, 409, 422),
)
def receipt(request_id: Annotated[str, PathParam(pattern=ID)], caller: Read) -> Receipt:
    """The privacy receipt of a released request."""
    return caller.zone.receipt(request_id)


@router.get("/catalogue", tags=["requests"], responses=errors(422))
def catalogue(caller: Read, mock_rows: Annotated[int, Query(ge=0, le=100)] = 5) -> dict[str, Any]:
    """What this party may see of the datasets shared with it."""
    return caller.zone.catalogue(mock_rows)


@router.get("/jobs", response_model=list[ZoneRequest], tags=["jobs"])
def jobs(caller: Jobs) -> list[ZoneRequest]:
    """Approved jobs waiting for this party's node."""
    return caller.zone.jobs()


@router.get("/jobs/{request_id}/context", tags=["jobs"], responses=errors(404, 409, 422))
def job_context(request_id: Annotated[str, PathParam(pattern=ID)], caller: Jobs) -> dict[str, Any]:
    """The stored plan and monitor history a node needs to run its job (node only)."""
    return caller.zone.job_context(request_id)


@router.post(
    "/jobs/{request_id}/complete",
    response_model=ZoneRequest,
    tags=["jobs"],
    responses=errors(400, 404, 409, 413, 422),
)
def complete_job(
    request: Request,
    request_id: Annotated[str, PathParam(pattern=ID)],
    body: CompleteIn,
    caller: Jobs,
) -> ZoneRequest:
    """Hand back a job's outcome; the zone filters, charges and releases it."""
    # Only the job's node gets past this (audited otherwise). It also keeps requests that
    # never had an owner-placed plan away from the core's complete(), which assumes one.
    caller.zone.job_context(request_id)
    done = caller.zone.complete_job(
        request_id,
        body.payload,
        body.spent,
        rows_suppressed=body.rows_suppressed,
        mechanism=body.mechanism,
        noise_scale=body.noise_scale,
        audit_updates=[u.model_dump() for u in body.audit_updates],
    )
    return _notify(request, done)


@router.get("/budget", tags=["audit"])
def budget(caller: Read) -> list[dict[str, Any]]:
    """Privacy budget spent and remaining per (party, dataset, period) this party may see."""
    return caller.zone.budget()


@router.get("/audit", tags=["audit"], responses=errors(422))
def audit_events(
    caller: Audit,
    subject: Annotated[
        str | None, Query(max_length=128, description="only events about it")
    ] = None,
) -> list[dict[str, Any]]:
    """The audit log this party may read (``subject``: only the events about one request,
    dataset or party)."""
    return caller.zone.audit_events(subject)


def _verification(result: Verification) -> VerificationOut:
    return VerificationOut(
        ok=result.ok,
        events=result.events,
        broken_at=result.broken_at,
        problem=result.problem,
        problems=list(result.problems),
        anchor=result.anchor,
    )


@router.get("/audit/verify", response_model=VerificationOut, tags=["audit"])
def verify_audit(caller: Audit) -> VerificationOut:
    """Recompute the hash chain and its signed head, and the ledger from the chain."""
    return _verification(caller.zone.verify_audit())


@router.post(
    "/audit/verify", response_model=VerificationOut, tags=["audit"], responses=errors(400, 413, 422)
)
def verify_audit_against(body: VerifyIn, caller: Audit) -> VerificationOut:
    """Verify as GET does, and that the log continues a checkpoint the caller kept."""
    against = checkpoints.from_dict(body.against.model_dump())
    return _verification(caller.zone.verify_audit(against=against))


@router.get("/audit/checkpoint", response_model=CheckpointDoc, tags=["audit"])
def audit_checkpoint(caller: Audit) -> CheckpointDoc:
    """A signed checkpoint of the audit log's head: fetch it now and then and keep it."""
    return CheckpointDoc.model_validate(caller.zone.audit_checkpoint().as_dict())


@router.get("/audit/export", tags=["audit"])
def audit_export(caller: Audit) -> list[dict[str, Any]]:
    """The verifiable export: header, events (others' redacted to hashes), checkpoint."""
    return caller.zone.audit_export()


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
