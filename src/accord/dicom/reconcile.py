"""Completed but not found: reconciliation decisions between orders and the PACS.

Rules: pure. The job (see :func:`accord.dicom.scu.reconcile`) asks the PACS and hands the
answers here; nothing in this module queries anything or reads a clock.
- An order completed more than ``after`` ago whose study the PACS does not know (neither
  by Study Instance UID nor by accession) -> ``completed_study_missing``.
- A study the PACS reports (queried by date) that no order knows, by Study Instance UID
  or accession -> ``study_without_order``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from accord.workflow.findings import FindingKind
from accord.workflow.model import Order

COMPLETED_STUDY_MISSING = FindingKind.COMPLETED_STUDY_MISSING.value
STUDY_WITHOUT_ORDER = FindingKind.STUDY_WITHOUT_ORDER.value


@dataclass(frozen=True, slots=True)
class StudyRecord:
    """One study-level C-FIND answer (PS3.4 C.6.2.1.2, Study Root)."""

    study_instance_uid: str
    accession: str = ""
    patient_id: str = ""
    study_date: str = ""  # YYYYMMDD
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompletedOrder:
    """An order and when it reached ``completed`` (from its trace)."""

    order: Order
    completed_at: datetime


@dataclass(frozen=True, slots=True)
class ReconcileFinding:
    """A finding as ``/api/findings`` lists it: kind, accession, detail."""

    kind: str
    accession: str
    study_instance_uid: str
    detail: str
    order_id: str | None = None


def due(orders: Iterable[CompletedOrder], now: datetime, after: timedelta) -> list[CompletedOrder]:
    """Orders completed at least ``after`` before ``now``: the PACS has had time."""
    return [c for c in orders if now - c.completed_at >= after]


def is_archived(order: Order, found: Sequence[StudyRecord]) -> bool:
    """True when the PACS knows the order's study, by Study Instance UID or accession."""
    return any(
        (order.study_instance_uid and s.study_instance_uid == order.study_instance_uid)
        or (order.accession and s.accession == order.accession)
        for s in found
    )


def completed_study_missing(
    completed: CompletedOrder, found: Sequence[StudyRecord], now: datetime
) -> ReconcileFinding | None:
    """The finding for a completed order whose study is not in the PACS, else None."""
    order = completed.order
    if is_archived(order, found):
        return None
    minutes = int((now - completed.completed_at).total_seconds() // 60)
    return ReconcileFinding(
        COMPLETED_STUDY_MISSING, order.accession, order.study_instance_uid,
        f"completed {minutes} min ago; the PACS has no study with this Study Instance UID "
        "or accession",
        order.id,
    )


def studies_without_order(
    studies: Iterable[StudyRecord], known_uids: Collection[str],
    known_accessions: Collection[str],
) -> list[ReconcileFinding]:
    """Findings for PACS studies that match no order by Study Instance UID or accession."""
    out: list[ReconcileFinding] = []
    for s in studies:
        if s.study_instance_uid in known_uids or (s.accession and s.accession in known_accessions):
            continue
        out.append(ReconcileFinding(
            STUDY_WITHOUT_ORDER, s.accession, s.study_instance_uid,
            f"study of {s.study_date or 'unknown date'} "
            f"({'/'.join(s.modalities) or 'no modality'}) matches no order",
        ))
    return out
