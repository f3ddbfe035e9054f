"""Request bodies of the JSON API (responses reuse the domain models of model.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[a-z][a-z0-9_]{0,62}$"
HEX = r"^[0-9a-f]*$"
BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"


def _technique_enum(schema: dict[str, Any]) -> None:
    """Document the registered techniques as the allowed values (computed when the schema
    is generated, so techniques registered by plugins are listed too)."""
    from collabzone.techniques import registry

    schema["enum"] = registry.names()


TECHNIQUE = Field(min_length=1, max_length=100, json_schema_extra=_technique_enum)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyIn(Body):
    name: str = Field(pattern=NAME, description="lowercase name, also the OAuth2 client_id")
    roles: list[str] = Field(min_length=1, max_length=5)


class PartyOut(BaseModel):
    """A new party and its secret (shown once: the OAuth2 client_secret)."""

    name: str
    roles: list[str]
    created_at: dt.datetime
    secret_version: int = 1
    client_secret: str


class RegisterIn(Body):
    name: str = Field(pattern=NAME)
    spec: dict[str, Any]
    row_count: int = Field(ge=0, le=10**12)
    description: str | None = Field(default=None, max_length=2000)


class RemoteIn(Body):
    name: str = Field(pattern=NAME)
    spec: dict[str, Any]
    postgres: str | None = Field(default=None, min_length=1, max_length=4000, repr=False)
    table: str | None = Field(default=None, min_length=1, max_length=300)
    spark: str | None = Field(default=None, min_length=1, max_length=4000, repr=False)
    path: str | None = Field(default=None, min_length=1, max_length=4000)
    description: str | None = Field(default=None, max_length=2000)


class AgreementIn(Body):
    dataset: str = Field(pattern=NAME)
    grantees: list[Annotated[str, Field(pattern=NAME)]] = Field(min_length=1, max_length=100)
    technique: str = TECHNIQUE
    purposes: list[str] = Field(min_length=1, max_length=100)
    rules: dict[str, Any] = Field(default_factory=dict)
    approval: Literal["auto", "manual"] = "auto"
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=2000)


class SubmitIn(Body):
    technique: str = TECHNIQUE
    spec: dict[str, Any] = Field(default_factory=dict)
    purpose: str = Field(default="", max_length=2000)


class AuditUpdateIn(Body):
    """A node's new disclosure-audit state of one of its job's spaces (state: base64)."""

    space: str = Field(min_length=1, max_length=400)
    base_version: int | None = Field(default=None, ge=1)
    state: str


class CompleteIn(Body):
    payload: dict[str, Any]
    spent: dict[str, dict[str, float]] | None = None
    rows_suppressed: int | None = Field(default=None, ge=0)
    """Cells the node withheld, if saying so is safe (None: not disclosed)."""
    mechanism: str | None = None
    noise_scale: float | None = None
    audit_updates: list[AuditUpdateIn] = Field(default_factory=list, max_length=100)


class SubscriptionIn(Body):
    url: str | None = Field(default=None, max_length=2000)
    email: str | None = Field(default=None, max_length=320)


class Me(BaseModel):
    name: str
    roles: list[str]
    scopes: list[str]
    token_expires_at: int


class VerificationOut(BaseModel):
    ok: bool
    events: int
    broken_at: int | None = None
    problem: str | None = None
    problems: list[str] = Field(default_factory=list)
    anchor: str | None = None


class CheckpointDoc(Body):
    """A signed checkpoint of the audit log's head (see collabzone.audit_checkpoint)."""

    format: Literal["collabzone-checkpoint/1"]
    zone: str = Field(max_length=200)
    size: int = Field(ge=0, le=2**62)
    head: str = Field(max_length=64, pattern=HEX)
    at: str = Field(max_length=40)
    key_version: int = Field(ge=1, le=2**31 - 1)
    public_key: str = Field(max_length=64, pattern=BASE64)
    signature: str = Field(max_length=128, pattern=BASE64)


class VerifyIn(Body):
    against: CheckpointDoc
