"""Parties can be disabled and their secrets rotated; removed datasets leave a tombstone.

``parties.disabled_at`` is set while the operator has disabled a party (its secret and
every token it holds are refused); ``parties.secret_version`` counts rotations of its
secret, so tokens issued before a rotation stop verifying.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "dataset_tombstones",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("removed_at", sa.String(40), nullable=False),
    )
    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("disabled_at", sa.String(40), nullable=True))
        batch.add_column(
            sa.Column("secret_version", sa.Integer, nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.drop_column("secret_version")
        batch.drop_column("disabled_at")
    op.drop_table("dataset_tombstones")
