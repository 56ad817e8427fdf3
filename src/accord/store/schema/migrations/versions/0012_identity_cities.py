"""Identity counts by city: the patients stored before cities were counted get their
``city:`` term counted, as a save would count it (``accord.store.workflow.identity``).
Without it, a city shared by much of the registry would read as a rare one (its count
0) and a pair agreeing on it as strong evidence, and an A08 would take away a count
that was never added.

The city counts are first removed, so the backfill counts each patient once whatever
the earlier steps left (0010's backfill counts every term the code knows).

Revision ID: 0012_identity_cities
Revises: 0011_identity_keys
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections import Counter

from alembic import op

from accord.store.schema.migrations.patient_docs import (
    forget_counts,
    insert_counts,
    live_patients,
)
from accord.workflow.identity.compare import features
from accord.workflow.identity.frequencies import term_keys

revision = "0012_identity_cities"
down_revision = "0011_identity_keys"
branch_labels = None
depends_on = None

PREFIX = "city:"

def upgrade() -> None:
    conn = op.get_bind()
    forget_counts(conn, PREFIX)
    counts: Counter[str] = Counter()
    for block in live_patients(conn):
        for _, demographics in block:
            counts.update(k for k in term_keys(features(demographics)) if k.startswith(PREFIX))
    insert_counts(conn, counts)


def downgrade() -> None:
    forget_counts(op.get_bind(), PREFIX)
