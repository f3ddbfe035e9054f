"""Disclosure-audit state per protected space, and the worker that holds a request.

``audit_state`` keeps, per audited space (a protected dataset's entities, seen by every
analyst or by one), the atoms of everything released so far as one versioned blob;
releases update it with compare-and-swap in the release transaction.
``requests.worker`` names the process (host, pid, start time) that carries a request
through its zone-side steps, so that a zone opening after a crash can fail the requests
a dead process left half-way (nothing released, nothing charged).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "audit_state",
        sa.Column("space", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("worker", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("worker")
    op.drop_table("audit_state")
