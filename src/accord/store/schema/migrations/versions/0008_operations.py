"""Operations: the store's daily size (``store_sizes``), and MPPS instances indexed by
their last update (retention prunes the oldest first).

Revision ID: 0008_operations
Revises: 0004_step_hold
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_operations"
down_revision = "0004_step_hold"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_sizes",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_store_sizes"),
    )
    op.create_index("ix_mpps_instances_updated_at", "mpps_instances", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_mpps_instances_updated_at", table_name="mpps_instances")
    op.drop_table("store_sizes")
