"""Applying results: ORU^R01 reports linked to their orders (IHE RAD TF-2 RAD-28/RAD-32).

Rules:
- One report per order: a later ORU for the same order (preliminary, then final, then
  a correction) updates it; the order's status follows (``orders.set_status``), and a
  report whose status move the table forbids (final → preliminary) is not applied.
- A report for an order never received is kept unlinked, with an ``unknown_order``
  finding (AA; AE 204 when the dialect rejects them); when the order arrives the engine
  links it (:func:`link_reports`), and the order takes the report's status.
- A report whose visit (PV1-19) differs from its order's is a ``visit_mismatch``
  finding; it is still linked, to the order its numbers name.
- OBR-25 X (no result, order cancelled) cancels the order; after acquisition that is
  ``cancelled_but_performed``.
"""

from __future__ import annotations

from dataclasses import replace

from accord.workflow.commands import ReportResult
from accord.workflow.events import ReportForwarded
from accord.workflow.findings import FindingKind
from accord.workflow.model import Order, Report
from accord.workflow.orders import find_order, set_status, unknown
from accord.workflow.outcome import Session
from accord.workflow.patients import find_patient
from accord.workflow.status import allowed
from accord.workflow.trace import Change


def check_visit(s: Session, order: Order, visit_number: str) -> None:
    """A ``visit_mismatch`` finding when the report's visit is not the order's."""
    if visit_number and order.visit_number and visit_number != order.visit_number:
        s.new_finding(
            FindingKind.VISIT_MISMATCH,
            f"report names visit {visit_number}, its order {order.id} belongs to visit "
            f"{order.visit_number}",
            accession=order.accession, patient_id=order.patient_id, subject=visit_number,
            location="PV1-19")


def _existing(s: Session, order: Order | None, cmd: ReportResult) -> Report | None:
    """The order's report, else the first report (by id) a number of the message names,
    most specific number first, that has no order or this one. One read for all."""
    numbers = [(k, v) for k, v in cmd.ref.numbers()
               if v and k in ("accession", "placer_number", "filler_number")]
    own = [("order_id", order.id)] if order is not None else []
    if not numbers and not own:
        return None
    found = sorted(s.repo.reports_by_numbers([*own, *numbers]), key=lambda r: r.id)
    if order is not None:
        mine = [r for r in found if r.order_id == order.id]
        if mine:
            return mine[0]
    for key, value in numbers:
        for r in found:
            if getattr(r, key) == value and (
                    r.order_id is None or (order is not None and r.order_id == order.id)):
                return r
    return None


def record_report(s: Session, cmd: ReportResult) -> None:
    """ORU^R01: store or update the report; move the order's status (module rules)."""
    order = find_order(s, cmd.ref)
    patient = find_patient(s, cmd.patient) if cmd.patient is not None else None
    old = _existing(s, order, cmd)
    if old is not None and not allowed(old.status, cmd.status):
        s.new_finding(
            FindingKind.STATUS_REGRESSION,
            f"report {old.id} is {old.status.value}; {cmd.code} ({cmd.status.value}) "
            "is not allowed after it; not applied",
            accession=old.accession, patient_id=old.patient_id,
            subject=f"report {old.status.value}->{cmd.status.value}")
        s.trace(order, cmd.code, accession=old.accession, outcome="not applied",
                rules=[f"report status {old.status.value} → {cmd.status.value} not allowed"])
        return
    if order is None:
        unknown(s, cmd.ref, cmd.code, patient.id if patient else "")
    report = Report(
        id=old.id if old else s.ids.new_id("R"),
        accession=cmd.ref.accession or (order.accession if order else ""),
        status=cmd.status, text=cmd.text or (old.text if old else ""),
        interpreter=cmd.interpreter or (old.interpreter if old else ""),
        observed_at=cmd.observed_at, visit_number=cmd.visit_number,
        order_id=order.id if order else None,
        patient_id=order.patient_id if order else (patient.id if patient else ""),
        placer_number=cmd.ref.placer_number, filler_number=cmd.ref.filler_number,
        source=s.source,
    )
    s.repo.save_report(report if old is None else replace(report, id=old.id))
    s.changed(f"report {report.id} {'updated' if old else 'stored'} ({cmd.status.value})")
    before = old.status.value if old else ""
    if order is None:
        return
    s.trace(order, cmd.code, changes=[Change("report", before, cmd.status.value)])
    check_visit(s, order, cmd.visit_number)
    set_status(s, order, cmd.status, cmd.code)
    patient_now = s.repo.patient(order.patient_id)
    s.emit(ReportForwarded(report, order, patient_now))


def link_reports(s: Session, order: Order) -> None:
    """Reports kept before ``order`` arrived are linked to it now (out of order is
    normal), each checked for its visit and moving the order's status."""
    numbers = [(key, value) for key, value in (
        ("accession", order.accession), ("placer_number", order.placer_number),
        ("filler_number", order.filler_number)) if value]
    pending = {r.id: r for r in s.repo.reports_by_numbers(numbers) if r.order_id is None}
    for report in pending.values():
        linked = replace(report, order_id=order.id, patient_id=order.patient_id,
                         accession=report.accession or order.accession)
        s.repo.save_report(linked)
        s.trace(order, f"report {report.id} (received earlier) linked",
                changes=[Change("report", "", report.status.value)])
        check_visit(s, order, linked.visit_number)
        order = set_status(s, order, report.status, f"report {report.id} ({report.status.value})")
