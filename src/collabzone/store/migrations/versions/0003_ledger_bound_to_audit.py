"""Budget debits name the audit event that charged them.

``budget_debits.event_id`` binds each ledger row to its request's ``request.released`` (or
``request.failed``) event, which lists the same debits in its hashed details; ``audit
verify`` recomputes the ledger from the chain and reports rows deleted or added by hand
(see audit_ledger.py). Rows written before this revision keep ``event_id`` empty and are
matched on their request, dataset and amounts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("budget_debits") as batch:
        batch.add_column(sa.Column("event_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("budget_debits") as batch:
        batch.drop_column("event_id")
