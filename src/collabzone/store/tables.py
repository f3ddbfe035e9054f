"""The metadata schema (SQLAlchemy Core). Alembic revisions create it; see migrations/.

Timestamps are ISO-8601 UTC strings so they compare, sort and hash the same way on SQLite
and PostgreSQL; JSON columns hold lists and documents. Privacy amounts are stored as
decimal strings (exact, see budget.py).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

zone_info = Table(
    "zone_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

parties = Table(
    "parties",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("roles", JSON, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    Column("disabled_at", String(40)),
    Column("secret_version", Integer, nullable=False, server_default="1"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("columns", JSON, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("data_file", String(255), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
)

dataset_tombstones = Table(
    "dataset_tombstones",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("removed_at", String(40), nullable=False),
)

agreements = Table(
    "agreements",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("dataset", String(64), nullable=False, index=True),
    Column("owner", String(64), nullable=False),
    Column("grantees", JSON, nullable=False),
    Column("technique", String(64), nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("approval", String(16), nullable=False),
    Column("valid_from", String(40), nullable=False),
    Column("valid_until", String(40)),
    Column("revoked_at", String(40)),
    Column("revoke_reason", Text),
    Column("created_at", String(40), nullable=False),
)

requests = Table(
    "requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("requester", String(64), nullable=False, index=True),
    Column("technique", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("status", String(24), nullable=False, index=True),
    Column("datasets", JSON, nullable=False),
    Column("owners_to_approve", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("cost", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("placement", String(16), nullable=False),
    Column("node", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("worker", String(200)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("owner", String(64), primary_key=True),
    Column("approved", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", String(40), nullable=False),
)

releases = Table(
    "releases",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("payload", JSON, nullable=False),
    Column("monitor", JSON),
    Column("receipt", JSON, nullable=False),
    Column("released_to", JSON, nullable=False),
    Column("released_at", String(40), nullable=False),
)

budget_debits = Table(
    "budget_debits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False, index=True),
    Column("party", String(64), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("period", String(24), nullable=False),
    Column("epsilon", String(40), nullable=False),
    Column("delta", String(40), nullable=False),
    Column("rho", String(40), nullable=False),
    Column("at", String(40), nullable=False),
    # the audit event that charged this debit (None: written before 0003, see audit_ledger)
    Column("event_id", String(40)),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("id", String(40), nullable=False, unique=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False, index=True),
    Column("parties", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)

audit_state = Table(
    "audit_state",
    metadata,
    Column("space", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("state", LargeBinary, nullable=False),
)
