"""Applying order messages: place, update, cancel, status (IHE RAD TF-2 RAD-2/3/4/13).

Rules:
- An order is found by any of its numbers (accession, placer, filler, Study Instance
  UID, requested procedure ID, SPS ID), in that order. A resent NW for a known order
  updates it, never duplicates it. A *different* order claiming a known number (other
  patient, other placer number, or other procedure code) is a ``duplicate_order``
  finding and is refused (AE 205): two orders must never share a worklist key.
- A status, cancel or update for an order never received is an ``unknown_order``
  finding; it is answered AA (kept for review) unless the dialect says reject (AE 204).
- Every status change goes through :func:`apply_status`, by the table of
  :mod:`accord.workflow.status`: a forbidden move is a finding, not applied. A
  discontinue before acquisition started is a cancel (status rule 2).
- A new order without a Study Instance UID gets one by the dialect's policy: generated
  under the UID root, or derived from the accession (as dcm4chee offers).
- A new order resolves the ``unknown_order`` findings about its accession; reports that
  arrived before it are linked by the engine (:func:`accord.workflow.reports.link_reports`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from accord.workflow.commands import CancelOrder, OrderData, OrderRef, PlaceOrder, UpdateOrder
from accord.workflow.events import OrderForwarded, OrderStatusChanged
from accord.workflow.findings import Finding, FindingKind, resolve
from accord.workflow.model import Order, Patient, ProcedureStep
from accord.workflow.outcome import Refusal, Rejected, Session
from accord.workflow.patients import ensure_patient, find_patient, record_visit
from accord.workflow.status import PERFORMED, Status, allowed, refusal_kind
from accord.workflow.trace import Change

_DETAILS = ("procedure_code", "procedure_description", "coding_system", "modality",
            "body_part", "priority", "referring_physician", "reason")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a status change was asked for: who said it, in which message, with what code."""

    at: datetime
    source: str = ""  # sending system (MSH-3) or "MPPS" / "console"
    message: str = ""  # message ref: SENDER/MSH-10
    code: str = ""  # the sender's words, e.g. "ORC-1 SC, ORC-5 CM" or "OBR-25 F"


def apply_status(order: Order, new: Status, evidence: Evidence) -> Order | Finding:
    """``order`` in status ``new``, or the Finding that explains why not.

    The same status gives the same order back (status rule 0). A move the table forbids
    is not applied; the finding names both statuses and the evidence (status rule 5).
    """
    if allowed(order.status, new):
        return order if order.status == new else replace(order, status=new)
    said = f" ({evidence.code})" if evidence.code else ""
    return Finding(
        kind=FindingKind(refusal_kind(order.status, new)),
        detail=f"{order.status.value} → {new.value}{said} is not allowed; not applied",
        first_seen=evidence.at,
        accession=order.accession,
        patient_id=order.patient_id,
        subject=f"{order.status.value}->{new.value}",
        source=evidence.source,
        messages=(evidence.message,) if evidence.message else (),
    )


def find_order(s: Session, ref: OrderRef) -> Order | None:
    """The order any of ``ref``'s numbers names, most specific number first."""
    return s.repo.order_by_numbers(ref.numbers())


def set_status(s: Session, order: Order, new: Status, code: str) -> Order:
    """``order`` moved to ``new`` if the table allows it, else a finding (not applied)."""
    result = apply_status(order, new, Evidence(s.now, s.source, s.message_ref, code))
    if not isinstance(result, Order):
        s.finding(result)
        s.trace(order, code, rules=[result.detail], outcome="not applied")
        return order
    if result.status != order.status:
        s.repo.save_order(result)
        s.trace(result, code, changes=[Change("status", order.status.value, new.value)])
        s.changed(f"order {order.id}: {order.status.value} → {new.value}")
        patient = s.repo.patient(result.patient_id)
        if patient is not None:
            s.emit(OrderStatusChanged(result, patient, order.status, new, s.source))
    return result


def unknown(s: Session, ref: OrderRef, said: str, patient_id: str = "") -> None:
    """Record an ``unknown_order`` finding; AE 204 when the dialect rejects them."""
    reject = s.policy.unknown_order == "reject"
    s.new_finding(
        FindingKind.UNKNOWN_ORDER,
        f"{said} for an order never received ({ref.describe()})"
        + ("; not applied (policy: reject)" if reject else "; kept for review"),
        accession=ref.accession, patient_id=patient_id, subject=ref.describe())
    s.trace(None, said, accession=ref.accession, outcome="unknown order",
            rules=[f"no order has {ref.describe()}"])
    if reject:
        raise Rejected(Refusal(s.policy.accession_location,
                               f"no order with {ref.describe()}", error_code="204"))


def _claims_other(order: Order, patient: Patient, data: OrderData) -> str:
    """Why ``data`` is a different order from ``order`` though they share a number."""
    if order.patient_id != patient.id:
        return f"it is {order.patient_id}'s order, the message names {patient.id}"
    placer = data.ref.placer_number
    if placer and order.placer_number and placer != order.placer_number:
        return f"placer number {order.placer_number} ≠ {placer}"
    accession = data.ref.accession
    if accession and order.accession and accession != order.accession:
        return f"accession {order.accession} ≠ {accession}"
    code = data.procedure_code
    if code and order.procedure_code and code != order.procedure_code:
        return f"procedure {order.procedure_code} ≠ {code}"
    return ""


def place(s: Session, cmd: PlaceOrder) -> Order | None:
    """ORC-1 NW / SIU^S12: a new order, or a resend that updates the known one. Returns
    the new order (None for a resend), whose earlier reports the caller links."""
    patient = ensure_patient(s, cmd.patient, trigger=cmd.code, update=False)
    existing = find_order(s, cmd.order.ref)
    if existing is not None:
        why = _claims_other(existing, patient, cmd.order)
        if why:
            s.new_finding(
                FindingKind.DUPLICATE_ORDER,
                f"a different order claims {cmd.order.ref.describe()} of {existing.id}: {why}",
                accession=existing.accession, patient_id=patient.id, subject=existing.id)
            s.trace(existing, f"{cmd.code} (another order)", outcome="not applied",
                    rules=[f"refused: {why}"])
            raise Rejected(Refusal(s.policy.accession_location,
                                   f"duplicate order number ({why})", error_code="205"))
        order = _update_details(s, existing, cmd.order, f"{cmd.code} (resent)")
        if allowed(order.status, cmd.status):
            set_status(s, order, cmd.status, cmd.code)
        else:
            s.trace(order, f"{cmd.code} (resent)", outcome="status kept", rules=[
                f"status stays {order.status.value}: a resent NW never moves an order back"])
        return None
    if cmd.visit is not None:
        record_visit(s, patient, cmd.visit)
    order = _new_order(s, cmd, patient)
    s.repo.save_order(order)
    s.trace(order, cmd.code, changes=[Change("status", "", order.status.value)],
            rules=cmd.order.rules, outcome="held" if order.hold_reason else "applied")
    s.changed(f"order {order.id} placed ({order.status.value})")
    s.emit(OrderForwarded(order, patient, "new"))
    _resolve_unknown(s, order)
    return order


def _new_order(s: Session, cmd: PlaceOrder, patient: Patient) -> Order:
    d, ref = cmd.order, cmd.order.ref
    order_id = s.ids.new_id("O")
    uid, rules = ref.study_instance_uid, list(d.rules)
    if not uid:
        root = s.policy.uid_root
        if s.policy.study_uid_policy == "accession" and root and ref.accession:
            digits = "".join(str(ord(c)) if not c.isdigit() else c for c in ref.accession)
            uid = f"{root}.{digits.lstrip('0') or '0'}"[:64]
        else:
            uid = s.ids.new_uid(root)
        rules.append(f"Study Instance UID {uid} made by policy {s.policy.study_uid_policy}")
    base = ref.requested_procedure_id or ref.accession or order_id
    steps = tuple(
        step if step.sps_id else replace(step, sps_id=f"{base}.{n}")
        for n, step in enumerate(d.steps or (ProcedureStep(""),), start=1)
    )
    return Order(
        id=order_id, patient_id=patient.id, status=cmd.status, accession=ref.accession,
        placer_number=ref.placer_number, filler_number=ref.filler_number,
        requested_procedure_id=ref.requested_procedure_id or base, study_instance_uid=uid,
        visit_number=cmd.visit.visit_number if cmd.visit else "", steps=steps,
        source=s.source, hold_reason=d.hold_reason,
        **{k: getattr(d, k) for k in _DETAILS},
    )


def _update_details(s: Session, order: Order, d: OrderData, said: str) -> Order:
    """``order`` with the non-empty details of ``d`` (numbers, codes, steps)."""
    values: dict[str, object] = {k: getattr(d, k) for k in _DETAILS if getattr(d, k)}
    for key, value in d.ref.numbers():
        if key != "sps_id" and not getattr(order, key):
            values[key] = value
    if d.steps and any(st.start or st.station_ae_titles for st in d.steps):
        values["steps"] = tuple(
            _merge_step(new, order.steps[n] if n < len(order.steps) else None)
            for n, new in enumerate(d.steps)
        )
    if d.procedure_code:  # the code was mapped again: its hold (or none) is current
        values["hold_reason"] = d.hold_reason
    changes = [
        Change(k, _text(getattr(order, k)), _text(v))
        for k, v in values.items() if getattr(order, k) != v
    ]
    if not changes:
        s.trace(order, said, outcome="no change", rules=_still_true(d.rules, order))
        return order
    updated = replace(order, **values)  # type: ignore[arg-type]
    s.repo.save_order(updated)
    s.trace(updated, said, changes=changes, rules=_still_true(d.rules, updated))
    s.changed(f"order {order.id} updated ({', '.join(c.attribute for c in changes)})")
    patient = s.repo.patient(updated.patient_id)
    if patient is not None:
        s.emit(OrderForwarded(updated, patient, "update"))
    return updated


def _still_true(rules: tuple[str, ...], order: Order) -> tuple[str, ...]:
    """Mapping notes, less "not on any worklist" when the stored steps kept a station."""
    if any(st.station_ae_titles for st in order.steps):
        return tuple(r for r in rules if not r.startswith("not on any worklist"))
    return rules


def _merge_step(new: ProcedureStep, old: ProcedureStep | None) -> ProcedureStep:
    """A step as re-sent: new values where given, the stored ones where left empty."""
    if old is None:
        return new
    return replace(
        new, sps_id=new.sps_id or old.sps_id, status=old.status,
        station_ae_titles=new.station_ae_titles or old.station_ae_titles,
        start=new.start or old.start, modality=new.modality or old.modality,
        station_name=new.station_name or old.station_name,
        location=new.location or old.location,
        protocol_code=new.protocol_code or old.protocol_code,
        description=new.description or old.description,
        performing_physician=new.performing_physician or old.performing_physician,
    )


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return "; ".join(
            f"{st.sps_id} {','.join(st.station_ae_titles) or '-'} "
            f"{st.start.isoformat() if st.start else '-'}"
            for st in value if isinstance(st, ProcedureStep))
    return str(value)


def update(s: Session, cmd: UpdateOrder) -> None:
    """ORC-1 XO/SC (ORC-5), SIU^S13/S14: new details, and the status if one is given."""
    order = find_order(s, cmd.order.ref)
    if order is None:
        known = find_patient(s, cmd.patient) if cmd.patient.identifiers else None
        unknown(s, cmd.order.ref, cmd.code, known.id if known else "")
        return
    order = _update_details(s, order, cmd.order, cmd.code)
    status = cmd.status
    if status is None and order.status is Status.ORDERED and _on_worklist(order):
        status = Status.SCHEDULED  # time and station now known: it is on the worklist
    if status is not None:
        set_status(s, order, status, cmd.code)


def _on_worklist(order: Order) -> bool:
    step = order.steps[0] if order.steps else None
    return (step is not None and step.start is not None and bool(step.station_ae_titles)
            and not order.hold_reason)


def cancel(s: Session, cmd: CancelOrder) -> None:
    """ORC-1 CA/OC/DC/OD, SIU^S15/S17/S26 (status rules 2 and 5)."""
    order = find_order(s, cmd.ref)
    if order is None:
        unknown(s, cmd.ref, cmd.code)
        return
    target = cmd.status
    if target is Status.DISCONTINUED and order.status not in PERFORMED:
        target = Status.CANCELLED  # nothing was started: a discontinue is a cancel
    changed = set_status(s, order, target, cmd.code + (f" ({cmd.reason})" if cmd.reason else ""))
    if changed is not order:
        patient = s.repo.patient(changed.patient_id)
        if patient is not None:
            s.emit(OrderForwarded(changed, patient, "cancel"))


def _resolve_unknown(s: Session, order: Order) -> None:
    """The order arrived: what was said about it before (``unknown_order``) is resolved."""
    for f in s.repo.findings_about(accession=order.accession):
        if f.kind is FindingKind.UNKNOWN_ORDER and f.resolution.value == "open":
            s.repo.save_finding(resolve(f, s.now, f"order {order.id} arrived"))
