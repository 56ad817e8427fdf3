"""The inbox: messages stored and acknowledged (ACK on store) but not yet applied.

Revision ID: 0009_inbox
Revises: 0008_operations
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_inbox"
down_revision = "0008_operations"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("message_id", ID, nullable=False, autoincrement=False),
        sa.Column("received_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name="fk_inbox_message_id_messages"),
        sa.PrimaryKeyConstraint("message_id", name="pk_inbox"),
    )


def downgrade() -> None:
    op.drop_table("inbox")
