"""API routes about questions: submit, price, decide, results, risk, progress, receipts,
the catalogue, and the node agents' jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from collabzone.errors import ConflictError
from collabzone.model import Receipt, Release, RequestStatus
from collabzone.model import Request as ZoneRequest
from collabzone.server._responses import errors
from collabzone.server._result_view import request_progress
from collabzone.server._schemas import (
    CompleteIn,
    ReasonIn,
    SubmitIn,
)
from collabzone.server.deps import (
    ID,
    Decide,
    Jobs,
    Read,
    Submit,
    notify,
)

router = APIRouter(prefix="/v1", responses=errors(401, 403, 429))


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
    return notify(request, made)


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
    return notify(request, caller.zone.approve(request_id, body.reason))


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
    return notify(request, caller.zone.deny(request_id, body.reason))


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
    return notify(request, done)
