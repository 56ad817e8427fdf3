"""Identity blocking by home and by birthday: the patients stored before the two rules
(``street``: house number and street; ``family_birthday``: family name with birth month
and day) get their keys and the keys' counts, as a save would file them
(``accord.store.workflow.identity``). Without them, a registration would find an older
patient by these rules only after an A08, and an A08 would take away counts that were
never added.

The keys of the two rules are first removed, so the backfill counts each patient once
whatever the earlier step left (0010's backfill counts every rule the code knows).

Revision ID: 0011_identity_keys
Revises: 0010_identity
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from alembic import op

from accord.store.schema.migrations.patient_docs import (
    forget_counts,
    insert_counts,
    live_patients,
)
from accord.workflow.identity.compare import features
from accord.workflow.identity.index import BLOCKING_RULES, stored_keys

revision = "0011_identity_keys"
down_revision = "0010_identity"
branch_labels = None
depends_on = None

RULES = ("street", "family_birthday")

_blocks = sa.table("patient_blocks", sa.column("key"), sa.column("patient_id"))


def _prefixes() -> tuple[str, ...]:
    return tuple(f"{BLOCKING_RULES.index(rule)}:" for rule in RULES)


def _forget(conn: sa.Connection) -> None:
    for prefix in _prefixes():
        conn.execute(sa.delete(_blocks).where(_blocks.c.key.like(f"{prefix}%")))
        forget_counts(conn, prefix)


def upgrade() -> None:
    conn = op.get_bind()
    _forget(conn)
    prefixes = _prefixes()
    counts: Counter[str] = Counter()
    for block in live_patients(conn):
        made: list[dict[str, Any]] = []
        for patient_id, demographics in block:
            keys = [k for k in stored_keys(features(demographics)) if k.startswith(prefixes)]
            counts.update(keys)
            made.extend({"key": k, "patient_id": patient_id} for k in keys)
        if made:
            conn.execute(sa.insert(_blocks), made)
    insert_counts(conn, counts)


def downgrade() -> None:
    _forget(op.get_bind())
