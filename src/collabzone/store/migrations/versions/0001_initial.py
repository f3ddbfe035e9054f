"""The initial metadata schema.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(40), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "zone_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "parties",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
    )
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("data_file", sa.String(255), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("grantees", sa.JSON, nullable=False),
        sa.Column("technique", sa.String(64), nullable=False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("approval", sa.String(16), nullable=False),
        _ts("valid_from"),
        _ts("valid_until", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.Column("revoke_reason", sa.Text),
        _ts("created_at"),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("requester", sa.String(64), nullable=False, index=True),
        sa.Column("technique", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("status", sa.String(24), nullable=False, index=True),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("owners_to_approve", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("cost", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("placement", sa.String(16), nullable=False),
        sa.Column("node", sa.String(64)),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "decisions",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("at"),
    )
    op.create_table(
        "releases",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("monitor", sa.JSON),
        sa.Column("receipt", sa.JSON, nullable=False),
        sa.Column("released_to", sa.JSON, nullable=False),
        _ts("released_at"),
    )
    op.create_table(
        "budget_debits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False, index=True),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("period", sa.String(24), nullable=False),
        sa.Column("epsilon", sa.String(40), nullable=False),
        sa.Column("delta", sa.String(40), nullable=False),
        sa.Column("rho", sa.String(40), nullable=False),
        _ts("at"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        _ts("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("parties", sa.JSON, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_events",
        "budget_debits",
        "releases",
        "decisions",
        "requests",
        "agreements",
        "datasets",
        "parties",
        "zone_info",
    ):
        op.drop_table(table)
