"""Domain types of the zone: parties, datasets, agreements, requests, receipts.

These are plain values (frozen pydantic models). The store turns them into rows and back;
policy and techniques read them; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """What a party does in the zone."""

    PROVIDER = "provider"
    ANALYST = "analyst"
    MEDIATOR = "mediator"
    COMPUTE = "compute"
    """One of the independent MPC servers; holds only secret shares (techniques.mpc)."""
    AUDITOR = "auditor"
    OPERATOR = "operator"


class ColumnClass(StrEnum):
    """How a column may be used; decides which techniques may read or release it."""

    IDENTIFIER = "identifier"
    JOIN_KEY = "join_key"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    MEASURE = "measure"
    DIMENSION = "dimension"
    LABEL = "label"
    OTHER = "other"


class ColumnType(StrEnum):
    """Logical column types accepted at ingest (mapped to DuckDB types)."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


class Approval(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    CHECKED = "checked"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RUNNING = "running"
    RELEASED = "released"
    REFUSED = "refused"
    FAILED = "failed"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Party(Frozen):
    """An organisation taking part in the zone.

    ``disabled_at`` is set while the operator has disabled the party (nothing it holds is
    accepted); ``secret_version`` counts rotations of its secret.
    """

    name: str
    roles: tuple[Role, ...]
    created_at: dt.datetime
    disabled_at: dt.datetime | None = None
    secret_version: int = 1

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class Column(Frozen):
    """One column of a dataset: its type, class and the value domain it declares.

    ``domain`` is what the owner declares public about the column's values: a list of
    categories, or ``{"min": ..., "max": ...}`` for numbers and dates. Mock samples and
    public DP partitions are drawn from it, never from the data.
    """

    name: str
    type: ColumnType
    column_class: ColumnClass = Field(alias="class")
    domain: list[Any] | dict[str, Any] | None = None
    nullable: bool = True
    unique: bool = False
    """Every value occurs at most once (checked at ingest): on the entity column of a table
    with one row per person, DP needs no contribution bounding for queries on it alone."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Dataset(Frozen):
    """A table owned by a provider, held encrypted in the zone."""

    name: str
    owner: str
    columns: tuple[Column, ...]
    row_count: int
    version: int
    description: str = ""
    created_at: dt.datetime

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def columns_of(self, column_class: ColumnClass) -> list[Column]:
        return [c for c in self.columns if c.column_class == column_class]


class Agreement(Frozen):
    """What an owner allows on one dataset: for whom, which technique, why, until when."""

    id: str
    dataset: str
    owner: str
    grantees: tuple[str, ...]
    """Party names, or ``role:<role>`` for every party with that role."""
    technique: str
    purposes: tuple[str, ...]
    """Allowed purposes; ``*`` allows any stated purpose."""
    rules: dict[str, Any]
    approval: Approval
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None = None
    revoke_reason: str | None = None
    created_at: dt.datetime

    def grants(self, party: Party) -> bool:
        for grantee in self.grantees:
            if grantee == party.name or grantee == "*":
                return True
            if grantee.startswith("role:") and grantee[5:] in party.roles:
                return True
        return False

    def is_active(self, at: dt.datetime) -> bool:
        return (
            self.revoked_at is None
            and self.valid_from <= at
            and (self.valid_until is None or at < self.valid_until)
        )

    def allows_purpose(self, purpose: str) -> bool:
        return "*" in self.purposes or purpose in self.purposes


class Decision(Frozen):
    """An owner's manual decision on a request."""

    owner: str
    approved: bool
    reason: str
    at: dt.datetime


class Request(Frozen):
    """The unit of work: one question asked through one technique."""

    id: str
    requester: str
    technique: str
    spec: dict[str, Any]
    purpose: str
    status: RequestStatus
    datasets: tuple[str, ...] = ()
    owners_to_approve: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()
    reasons: tuple[str, ...] = ()
    cost: dict[str, Any] = Field(default_factory=dict)
    runs_at: str = "zone"
    created_at: dt.datetime
    updated_at: dt.datetime


class Receipt(Frozen):
    """What every released result carries: how it was protected and what it cost."""

    request_id: str
    technique: str
    rules_applied: dict[str, Any]
    rows_suppressed: int | None = None
    """How many cells were withheld, when the technique may say; None: not disclosed (an
    exact count of what was held back is itself a disclosure about small groups)."""
    mechanism: str | None
    noise_scale: float | None
    budget_spent: dict[str, dict[str, float]]
    """Per dataset: {"epsilon": ..., "delta": ..., "rho": ...} spent by this release."""
    budget_remaining: dict[str, dict[str, float | None]]
    audit_event_id: str
    released_to: tuple[str, ...]
    released_at: dt.datetime
    notes: tuple[str, ...] = ()


class Release(Frozen):
    """A released result and its receipt, as the requester (or an owner) reads it."""

    request_id: str
    payload: dict[str, Any]
    receipt: Receipt
