"""HTTP routes of the zone's HE inbox (``app.include_router(router)`` in the server).

``PUT /v1/he/{recipient}/context`` (the recipient itself), ``GET /v1/he/{recipient}/context``
(any party, to encrypt under), ``PUT /v1/he/{recipient}/ciphertexts/{dataset}`` (the
dataset's owner; counted as an upload for the body limit and quota). Bodies are raw bytes
(``application/octet-stream``): TenSEAL's serialised context and ciphertexts. Each route
acts as the token's party through :mod:`._he_inbox`, which checks who may do what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from collabzone.errors import NotAuthorisedError
from collabzone.server._responses import errors
from collabzone.server.deps import Read, WriteData
from collabzone.techniques.mpc._he_inbox import deposit_as, public_context_of, publish_as

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
router = APIRouter(prefix="/v1/he", tags=["he_sum"], responses=errors(401, 403, 429))
OCTETS = "application/octet-stream"


@router.put("/{recipient}/context", status_code=204, responses=errors(400, 413, 422))
async def put_context(
    recipient: Annotated[str, PathParam(pattern=NAME)], request: Request, caller: Read
) -> Response:
    """Publish your own public CKKS context (you are the totals' recipient)."""
    if caller.party.name != recipient:
        raise NotAuthorisedError(f"only {recipient!r} publishes its own context")
    await run_in_threadpool(publish_as, caller.zone, await request.body())
    return Response(status_code=204)


@router.get("/{recipient}/context", responses=errors(404, 409, 422))
def get_context(recipient: Annotated[str, PathParam(pattern=NAME)], caller: Read) -> Response:
    """A recipient's public context, to encrypt your vector under at your premises."""
    return Response(public_context_of(caller.zone, recipient), media_type=OCTETS)


@router.put(
    "/{recipient}/ciphertexts/{dataset}", status_code=204, responses=errors(400, 409, 413, 422)
)
async def put_ciphertext(
    recipient: Annotated[str, PathParam(pattern=NAME)],
    dataset: Annotated[str, PathParam(pattern=NAME)],
    request: Request,
    caller: WriteData,
) -> Response:
    """Deposit your dataset's vector, encrypted under the recipient's public context."""
    await run_in_threadpool(deposit_as, caller.zone, recipient, dataset, await request.body())
    return Response(status_code=204)
