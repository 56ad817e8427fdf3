"""One inbound message, start to finish in pure code: map it, then apply it.

``apply_message`` is what ingest calls inside its store transaction (with the SQL
repository) and what the scenario tests call with the in-memory one.
"""

from __future__ import annotations

from datetime import datetime

from accord.hl7 import Message
from accord.mapping.checks import Checks
from accord.mapping.dialect import Dialect
from accord.mapping.inbound import Mapped, map_message
from accord.mapping.procedures import Catalog
from accord.workflow.engine import Request, apply_commands
from accord.workflow.outcome import IdSource, Matcher, Outcome, Policy
from accord.workflow.repository import Repository


def policy_of(dialect: Dialect) -> Policy:
    """The engine's view of a dialect's policies."""
    return Policy(
        unknown_order=dialect.unknown_order,
        merged_reference=dialect.merged_reference,
        study_uid_policy=dialect.study_uid_policy,
        uid_root=dialect.uid_root,
        authority=dialect.authority,
        accession_location=dialect.accession,
        drift_threshold=dialect.drift_threshold,
    )


def apply_message(
    repo: Repository, msg: Message, dialect: Dialect, *, now: datetime, ids: IdSource,
    catalog: Catalog | None = None, matcher: Matcher | None = None,
    checks: Checks | None = None,
) -> Outcome:
    """Map ``msg`` in ``dialect`` and apply it to ``repo`` (see ``accord.workflow.engine``)."""
    mapped = map_message(msg, dialect, now=now, catalog=catalog, checks=checks)
    return apply_mapped(repo, mapped, dialect, now=now, ids=ids, matcher=matcher)


def apply_mapped(
    repo: Repository, mapped: Mapped, dialect: Dialect, *, now: datetime, ids: IdSource,
    matcher: Matcher | None = None,
) -> Outcome:
    """Apply a message already mapped (:func:`~accord.mapping.inbound.map_message`, which
    needs no state, so ingest runs it before the store transaction)."""
    request = Request(
        source=mapped.source, message_ref=mapped.message_ref,
        message_type=mapped.message_type, at=now, commands=mapped.commands,
        findings=mapped.findings, refusal=mapped.refusal, field_values=mapped.field_values,
    )
    return apply_commands(repo, request, ids=ids, policy=policy_of(dialect), matcher=matcher)
