"""HTTP routes of the zone's share-package relay (``app.include_router(router)``).

``PUT /v1/mpc/relay/{server}/key`` (the compute server itself), ``GET .../key`` (any party,
to seal to), ``POST .../uploads/{dataset}`` (the dataset's owner; a sealed package,
counted as an upload for the body limit and quota), ``GET .../packages``,
``GET|DELETE .../packages/{package_id}`` (the server itself); report jobs for remote
compute servers: ``GET .../jobs`` and ``PUT .../jobs/{job_id}/share|error`` (the server
itself), ``GET /v1/mpc/relay/{recipient}/bundles/{sha256}`` (the recipient). Package and
share bodies are raw bytes (``application/octet-stream``): libsodium sealed boxes the zone
cannot open. Each route
acts as the token's party through :mod:`._relay_party`, which checks who may do what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from collabzone.errors import NotAuthorisedError
from collabzone.server._responses import errors
from collabzone.server.deps import Jobs, Read, WriteData
from collabzone.techniques.mpc._relay_party import (
    answer_as,
    bundle_as,
    jobs_as,
    key_of,
    post_as,
    publish_key_as,
    read_as,
    remove_as,
    waiting_as,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
PACKAGE = r"^[0-9a-f]{32}$"
router = APIRouter(prefix="/v1/mpc/relay", tags=["mpc"], responses=errors(401, 403, 429))
OCTETS = "application/octet-stream"
Server = Annotated[str, PathParam(pattern=NAME)]
PackageId = Annotated[str, PathParam(pattern=PACKAGE)]
JobId = Annotated[str, PathParam(pattern=PACKAGE)]


class Posted(BaseModel):
    """The id under which the relay filed a sealed package."""

    id: str


class Waiting(BaseModel):
    """A sealed package waiting in a server's mailbox: who posted it, for which dataset."""

    id: str
    provider: str
    dataset: str
    posted: int
    bytes: int


@router.put("/{server}/key", status_code=204, responses=errors(400, 404, 422))
async def put_key(server: Server, request: Request, caller: Read) -> Response:
    """Publish your relay public key (X25519, 32 bytes): as a compute server (packages are
    sealed to it) or as a recipient (output shares are sealed to it)."""
    if caller.party.name != server:
        raise NotAuthorisedError(f"only {server!r} publishes its own relay key")
    await run_in_threadpool(publish_key_as, caller.zone, await request.body())
    return Response(status_code=204)


@router.get("/{server}/key", responses=errors(404, 409, 422))
def get_key(server: Server, caller: Read) -> Response:
    """A compute server's relay public key, to seal its share package to."""
    return Response(key_of(caller.zone, server), media_type=OCTETS)


@router.post(
    "/{server}/uploads/{dataset}", status_code=201, responses=errors(400, 404, 409, 413, 422)
)
async def post_package(
    server: Server,
    dataset: Annotated[str, PathParam(pattern=NAME)],
    request: Request,
    caller: WriteData,
) -> Posted:
    """Post your dataset's share package for ``server``, sealed to its relay key."""
    body = await request.body()
    package_id = await run_in_threadpool(post_as, caller.zone, server, dataset, body)
    return Posted(id=package_id)


@router.get("/{server}/packages", responses=errors(404, 422))
def list_packages(server: Server, caller: Jobs) -> list[Waiting]:
    """The sealed packages waiting in your mailbox, oldest first."""
    return [Waiting(**meta) for meta in waiting_as(caller.zone, server)]


@router.get("/{server}/packages/{package_id}", responses=errors(404, 422))
def get_package(server: Server, package_id: PackageId, caller: Jobs) -> Response:
    """One sealed package of your mailbox (open it with your relay key)."""
    return Response(read_as(caller.zone, server, package_id), media_type=OCTETS)


@router.delete("/{server}/packages/{package_id}", status_code=204, responses=errors(404, 422))
def delete_package(server: Server, package_id: PackageId, caller: Jobs) -> Response:
    """Remove a package you stored: the relay keeps nothing after."""
    remove_as(caller.zone, server, package_id)
    return Response(status_code=204)


class Job(BaseModel):
    """A report a compute server is asked to run with the others."""

    id: str
    index: int
    servers: list[str]
    report: dict[str, object]


@router.get("/{server}/jobs", responses=errors(404, 422))
def list_jobs(server: Server, caller: Jobs) -> list[Job]:
    """The reports waiting for you (a compute server), oldest first."""
    return [Job(**job) for job in jobs_as(caller.zone, server)]


@router.put("/{server}/jobs/{job_id}/share", status_code=204, responses=errors(400, 404, 422))
async def put_share(server: Server, job_id: JobId, request: Request, caller: Jobs) -> Response:
    """Answer a job with your output share, sealed to the report's recipient."""
    body = await request.body()
    await run_in_threadpool(answer_as, caller.zone, server, job_id, share=body)
    return Response(status_code=204)


@router.put("/{server}/jobs/{job_id}/error", status_code=204, responses=errors(400, 404, 422))
async def put_error(server: Server, job_id: JobId, request: Request, caller: Jobs) -> Response:
    """Answer a job with why you refused or failed it (UTF-8 text)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    await run_in_threadpool(answer_as, caller.zone, server, job_id, error=text)
    return Response(status_code=204)


@router.get("/{recipient}/bundles/{sha256}", responses=errors(404, 422))
def get_bundle(
    recipient: Server,
    sha256: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")],
    caller: Read,
) -> Response:
    """A released report's bundle of output shares, each sealed to you (the recipient)."""
    return Response(bundle_as(caller.zone, recipient, sha256), media_type=OCTETS)
