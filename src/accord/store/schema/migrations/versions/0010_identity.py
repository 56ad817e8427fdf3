"""Identity matching at scale: term and blocking-key counts (``identity_counts``), the
packed features scoring reads (``identity_features``), reviewers' decisions about pairs
(``identity_decisions``).

The backfill reads the live patients block by block and files each one's features and
counted keys, as a save would (``accord.store.workflow.identity``).

Revision ID: 0010_identity
Revises: 0009_inbox
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from accord.store.schema.migrations.patient_docs import insert_counts, live_patients
from accord.workflow.identity.compare import features
from accord.workflow.identity.frequencies import POPULATION, count_keys
from accord.workflow.identity.index import pack

revision = "0010_identity"
down_revision = "0009_inbox"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ACCORD_ID = 64


def upgrade() -> None:
    op.create_table(
        "identity_counts",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_identity_counts"),
    )
    op.create_table(
        "identity_features",
        sa.Column("patient_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("packed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name="pk_identity_features"),
    )
    op.create_table(
        "identity_decisions",
        sa.Column("a", sa.String(ACCORD_ID), nullable=False),
        sa.Column("b", sa.String(ACCORD_ID), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("levels", JSON, nullable=False),
        sa.PrimaryKeyConstraint("a", "b", name="pk_identity_decisions"),
    )
    op.create_index("ix_identity_decisions_b", "identity_decisions", ["b"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    packed = sa.table("identity_features", sa.column("patient_id"), sa.column("packed"))
    counts: Counter[str] = Counter()
    for block in live_patients(conn):
        made = []
        for patient_id, demographics in block:
            f = features(demographics)
            counts.update(count_keys(f))
            counts[POPULATION] += 1
            made.append({"patient_id": patient_id, "packed": pack(f)})
        conn.execute(sa.insert(packed), made)
    insert_counts(conn, counts)


def downgrade() -> None:
    op.drop_index("ix_identity_decisions_b", table_name="identity_decisions")
    op.drop_table("identity_decisions")
    op.drop_table("identity_features")
    op.drop_table("identity_counts")
