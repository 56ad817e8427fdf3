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

import json
from collections import Counter

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from accord.store.schema.migrations.patient_docs import demographics
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
BLOCK = 1000


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
    patients = sa.table("patients", sa.column("id"), sa.column("doc"),
                        sa.column("merged_into"))
    packed = sa.table("identity_features", sa.column("patient_id"), sa.column("packed"))
    counts: Counter[str] = Counter()
    last = ""
    while True:
        rows = conn.execute(
            sa.select(patients.c.id, patients.c.doc)
            .where(patients.c.id > last, patients.c.merged_into.is_(None))
            .order_by(patients.c.id).limit(BLOCK)).all()
        if not rows:
            break
        made = []
        for row in rows:
            doc = json.loads(row.doc) if isinstance(row.doc, str) else row.doc
            f = features(demographics(doc))
            counts.update(count_keys(f))
            counts[POPULATION] += 1
            made.append({"patient_id": row.id, "packed": pack(f)})
        if made:
            conn.execute(sa.insert(packed), made)
        last = rows[-1].id
    table = sa.table("identity_counts", sa.column("key"), sa.column("count"))
    items = [{"key": k[:255], "count": n} for k, n in sorted(counts.items()) if n]
    for start in range(0, len(items), BLOCK * 10):
        conn.execute(sa.insert(table), items[start:start + BLOCK * 10])


def downgrade() -> None:
    op.drop_index("ix_identity_decisions_b", table_name="identity_decisions")
    op.drop_table("identity_decisions")
    op.drop_table("identity_features")
    op.drop_table("identity_counts")
