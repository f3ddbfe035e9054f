"""API routes about accountability: the privacy budget and the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from collabzone import audit_checkpoint as checkpoints
from collabzone.audit import Verification
from collabzone.server._responses import errors
from collabzone.server._schemas import (
    CheckpointDoc,
    VerificationOut,
    VerifyIn,
)
from collabzone.server.deps import (
    Audit,
    Read,
)

router = APIRouter(prefix="/v1", responses=errors(401, 403, 429))


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
