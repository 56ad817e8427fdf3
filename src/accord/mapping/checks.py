"""Checks that catch real mistakes in an order before a modality shows it wrongly: the
message against an HL7 profile (IHE Scheduled Workflow by default), and a scheduled
start too far in the past.

Rules:
- Each check is a finding about the order (its accession), never a refusal: the order
  is applied as it was read (and answered AA), and the worklist flags it with a link to
  the finding. Findings are kept per order, so a sender that keeps sending the same
  mistake counts up one finding per order, not one per message.
- Only new and changed orders are checked (ORC-1 NW and XO, SIU^S12 and S13): a status
  update does not carry the whole order.
- The profile check runs the profile's own rules (required segments and fields, their
  timestamps, tables: what a modality's worklist depends on), not the field-by-field
  format checks of ``accord validate`` (a fraction of the cost, on every order), and
  reports its errors only, at most :data:`SHOWN` of them in the detail.
- Pure: the time comes in ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from accord.hl7 import Message, validate
from accord.workflow.commands import OrderData
from accord.workflow.findings import Finding, FindingKind

SHOWN = 5


@dataclass(frozen=True, slots=True)
class Checks:
    """Which checks run (``workflow.checks``): the profile (None: no profile check) and
    the largest age of a scheduled start, in hours."""

    profile: str | None = "ihe-swf"
    max_schedule_age_hours: float = 24.0


class FindingFactory(Protocol):
    """What makes a finding seen in the message (``segments.Context.finding``)."""

    def __call__(self, kind: FindingKind, detail: str, *, accession: str = "",
                 subject: str = "") -> Finding: ...


def profile_problems(msg: Message, profile: str | None) -> list[str]:
    """The profile's errors in ``msg``, as ``LOCATION text`` (none without a profile)."""
    if not profile:
        return []
    return [f"{p.location or '-'} {p.message}"
            for p in validate(msg, profile=profile, rules_only=True) if p.severity == "error"]


def order_findings(checks: Checks | None, problems: list[str], data: OrderData, *,
                   now: datetime, finding: FindingFactory) -> list[Finding]:
    """The findings of one new or changed order: ``problems`` (its message's profile
    errors, read once per message) and a scheduled start older than allowed."""
    if checks is None:
        return []
    found = []
    accession = data.ref.accession
    if problems:
        shown = "; ".join(problems[:SHOWN]) + (
            f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else "")
        found.append(finding(
            FindingKind.PROFILE_VIOLATION,
            f"the {checks.profile} profile finds {len(problems)} error(s): {shown}",
            accession=accession, subject=checks.profile or ""))
    limit = now - timedelta(hours=checks.max_schedule_age_hours)
    starts = [s.start for s in data.steps if s.start is not None]
    if starts and min(starts) < limit:
        start = min(starts)
        days = (now - start).total_seconds() / 86400
        found.append(finding(
            FindingKind.SCHEDULED_IN_PAST,
            f"scheduled for {start:%Y-%m-%d %H:%M} UTC, {days:.1f} days before it was "
            f"received (more than {checks.max_schedule_age_hours:g} hours)",
            accession=accession, subject="schedule"))
    return found
