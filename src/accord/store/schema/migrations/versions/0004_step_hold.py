"""Procedure steps carry their order's hold flag (as they carry its status), so the
worklist is cut on ``procedure_steps`` alone, held orders left out by the same query.

Revision ID: 0004_step_hold
Revises: 0003_web
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_step_hold"
down_revision = "0003_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("procedure_steps", sa.Column("held", sa.Boolean(), nullable=False,
                                               server_default=sa.text("false")))
    op.execute("UPDATE procedure_steps SET held = true "
               "WHERE order_id IN (SELECT id FROM orders WHERE held = true)")


def downgrade() -> None:
    with op.batch_alter_table("procedure_steps") as batch:  # SQLite rebuilds the table
        batch.drop_column("held")
