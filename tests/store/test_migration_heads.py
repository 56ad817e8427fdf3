"""The migration chain is linear: exactly one head (several helpers add revisions)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from accord.store.migrations import alembic_config, head_revision


def test_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    assert heads[0] == head_revision()
