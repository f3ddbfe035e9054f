"""API routes about what is shared: datasets (upload, register, remote) and agreements."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam

from collabzone.errors import InvalidInputError
from collabzone.model import Agreement, Dataset
from collabzone.server._responses import errors
from collabzone.server._schemas import (
    NAME,
    AgreementIn,
    ReasonIn,
    RegisterIn,
    RemoteIn,
)
from collabzone.server.deps import (
    ID,
    Read,
    WriteData,
    state_of,
)

UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")

router = APIRouter(prefix="/v1", responses=errors(401, 403, 429))


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
