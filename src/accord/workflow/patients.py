"""Applying ADT: patients and visits (IHE ITI/RAD Patient Information Reconciliation).

Rules:
- Identifiers carry their authority; the authoritative authority's identifier is tried
  first, cross-references after. An identifier the index knows names that patient; a
  tombstone (``merged_into``) is followed to its survivor, and the use of a merged
  identifier is a ``merged_patient_reference`` finding (or AE when the policy says so).
- A new patient is scored against the stored ones by the identity matcher (a parameter:
  ``accord.workflow.identity.Matcher`` in production); every pair it returns is a
  ``potential_duplicate_patient`` finding, with the terms of its score. A patient whose
  demographics change (A08) is matched again, one finding per pair whichever side
  came first; a pair a reviewer marked "not a duplicate" is never proposed again.
  Nothing is merged on demographics.
- A merge (A40/A34/A18) re-points visits, orders and reports, keeps the merged patient
  as a tombstone, and is sent downstream (``PatientMerged`` → ADT^A40).
- ADT is the source of demographics; orders create a patient they name if unknown, but
  never overwrite demographics. A field a message leaves empty keeps its stored value.
"""

from __future__ import annotations

from dataclasses import fields, replace

from accord.errors import ApplyError
from accord.workflow.commands import ChangeIdentifier, MergePatients, PatientData, VisitData
from accord.workflow.events import PatientChanged, PatientMerged
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.identity import plan_merge
from accord.workflow.model import Demographics, Identifier, Patient, Visit
from accord.workflow.outcome import Refusal, Rejected, Session
from accord.workflow.trace import Change


def _ordered(s: Session, identifiers: tuple[Identifier, ...]) -> list[Identifier]:
    return sorted(identifiers, key=lambda i: i.authority != s.policy.authority)


def _live(s: Session, patient: Patient) -> tuple[Patient, Patient | None]:
    """Follow ``merged_into`` to the survivor; also return the first tombstone passed."""
    tombstone: Patient | None = None
    seen = {patient.id}
    while patient.merged_into is not None:
        survivor = s.repo.patient(patient.merged_into)
        if survivor is None or survivor.id in seen:
            break
        tombstone = tombstone or patient
        seen.add(survivor.id)
        patient = survivor
    return patient, tombstone


def find_patient(s: Session, data: PatientData, location: str = "PID-3") -> Patient | None:
    """The live patient the identifiers name, or None (see the module rules)."""
    for ident in _ordered(s, data.identifiers):
        found = s.repo.patient_by_identifier(ident)
        if found is None:
            continue
        live, tombstone = _live(s, found)
        if tombstone is not None:
            _merged_reference(s, ident, tombstone, live, location)
        return live
    return None


def _merged_reference(
    s: Session, ident: Identifier, tombstone: Patient, live: Patient, location: str
) -> None:
    text = (f"{location} {ident.value}^^^{ident.authority} names patient {tombstone.id}, "
            f"merged into {live.id}")
    reject = s.policy.merged_reference == "reject"
    s.new_finding(
        FindingKind.MERGED_PATIENT_REFERENCE,
        text + ("; not applied (policy: reject)" if reject else f"; applied to {live.id}"),
        patient_id=live.id, subject=f"{ident.authority}:{ident.value}", location=location,
    )
    if reject:
        raise Rejected(Refusal(location, text, error_code="204"))


def _fill(old: Demographics, new: Demographics) -> Demographics:
    """``new``, keeping ``old`` values where ``new`` is empty (senders omit fields)."""
    values = {
        f.name: getattr(new, f.name) or getattr(old, f.name)
        for f in fields(Demographics)
    }
    if not any((new.name.family, new.name.given)):
        values["name"] = old.name
    return Demographics(**values)


def ensure_patient(
    s: Session, data: PatientData, *, trigger: str, update: bool
) -> Patient:
    """The patient ``data`` names, created if unknown; demographics updated if ``update``."""
    live = find_patient(s, data)
    if live is None:
        return _create(s, data, trigger)
    changed = live
    for ident in data.identifiers:
        owner = s.repo.patient_by_identifier(ident)
        if owner is None:
            changed = replace(changed, identifiers=(*changed.identifiers, ident))
        elif _live(s, owner)[0].id != live.id:
            s.new_finding(
                FindingKind.POTENTIAL_DUPLICATE_PATIENT,
                f"one PID-3 names two patients: {ident.value}^^^{ident.authority} is "
                f"{owner.id}'s, the others are {live.id}'s",
                patient_id=live.id, subject=owner.id, score=1.0,
            )
    if update:
        changed = replace(changed, demographics=_fill(live.demographics, data.demographics))
    if changed.demographics != live.demographics:
        _propose_duplicates(s, changed)
    if changed != live:
        s.repo.save_patient(changed)
        s.changed(f"patient {live.id} updated ({trigger})")
        s.emit(PatientChanged(changed, created=False))
    return changed


def _propose_duplicates(s: Session, patient: Patient, *, new: bool = False) -> None:
    """Findings for the stored patients the matcher finds ``patient`` resembles."""
    if s.matcher is None:
        return
    found = s.repo.identity_candidates(patient.demographics,
                                       exclude="" if new else patient.id)
    assessed = s.matcher.assess(patient.demographics, found)
    if new:  # a stored patient matched again (A08) is not a new registration
        s.repo.count_matched(assessed.changes())
    for match in assessed.proposed:
        pair = (patient.id, match.patient_id)
        if not new:  # the pair's finding may be the other way round, from its creation
            first = Finding(FindingKind.POTENTIAL_DUPLICATE_PATIENT, "", s.now,
                            patient_id=match.patient_id, subject=patient.id, source=s.source)
            if s.repo.finding(first.key) is not None:
                pair = (match.patient_id, patient.id)
        s.new_finding(
            FindingKind.POTENTIAL_DUPLICATE_PATIENT,
            f"{'new ' if new else ''}patient {patient.id} resembles {match.patient_id} "
            f"(probability {match.probability:.2f}; agree: "
            f"{', '.join(match.agreeing) or '-'}; disagree: "
            f"{', '.join(match.disagreeing) or '-'}"
            f"{f'; {match.relation}' if match.relation else ''}); not merged",
            patient_id=pair[0], subject=pair[1], score=match.probability,
            explanation=tuple((t.name, t.level, t.weight, t.tf) for t in match.fields),
        )


def _create(s: Session, data: PatientData, trigger: str) -> Patient:
    patient = Patient(s.ids.new_id("P"), data.identifiers, data.demographics)
    _propose_duplicates(s, patient, new=True)
    s.repo.save_patient(patient)
    s.changed(f"patient {patient.id} created ({trigger})")
    s.emit(PatientChanged(patient, created=True))
    return patient


def record_visit(s: Session, patient: Patient, data: VisitData) -> Visit:
    """Create or update the visit PV1-19 names, for this patient."""
    old = s.repo.visit(data.visit_number)
    if old is not None and old.patient_id != patient.id:
        owner, _ = _live(s, s.repo.patient(old.patient_id) or patient)
        if owner.id != patient.id:
            s.new_finding(
                FindingKind.VISIT_MISMATCH,
                f"PV1-19 {data.visit_number} is a visit of {old.patient_id}, but the message "
                f"names {patient.id}; the visit was left with {old.patient_id}",
                patient_id=patient.id, subject=data.visit_number, location="PV1-19",
            )
            return old
    new = Visit(
        visit_number=data.visit_number, patient_id=patient.id,
        patient_class=data.patient_class or (old.patient_class if old else ""),
        location=data.location or (old.location if old else ""),
        attending=data.attending or (old.attending if old else ""),
        admitted_at=data.admitted_at or (old.admitted_at if old else None),
        discharged_at=data.discharged_at or (old.discharged_at if old else None),
    )
    if new != old:
        s.repo.save_visit(new)
        s.changed(f"visit {new.visit_number} {'updated' if old else 'created'}")
    return new


def merge(s: Session, cmd: MergePatients) -> None:
    """A40/A34/A18: merge MRG-1's patient into PID-3's (IHE ITI TF-2 §3.8, RAD-12)."""
    merged = next(
        (p for i in cmd.merged if (p := s.repo.patient_by_identifier(i)) is not None), None)
    survivor = None
    for ident in _ordered(s, cmd.survivor.identifiers):
        if (found := s.repo.patient_by_identifier(ident)) is not None:
            survivor = _live(s, found)[0]
            break
    if merged is None:
        ensure_patient(s, cmd.survivor, trigger=cmd.trigger, update=True)
        s.changed(f"{cmd.trigger}: MRG-1 names no known patient; nothing to merge")
        return
    if survivor is None:
        # The survivor's identifier is new: the prior patient simply takes it on.
        renamed = replace(
            merged, identifiers=cmd.survivor.identifiers + merged.identifiers,
            demographics=_fill(merged.demographics, cmd.survivor.demographics))
        s.repo.save_patient(renamed)
        s.changed(f"{cmd.trigger}: patient {merged.id} takes the identifiers of PID-3")
        s.emit(PatientChanged(renamed, created=False))
        return
    try:
        plan = plan_merge(survivor, merged, authoritative=s.policy.authority)
    except ApplyError as exc:
        raise Rejected(Refusal(exc.location, str(exc), error_code="207")) from exc
    if plan.already_merged:
        s.changed(f"{cmd.trigger}: {merged.id} was already merged into {survivor.id}")
        return
    winner = replace(plan.survivor,
                     demographics=_fill(plan.survivor.demographics, cmd.survivor.demographics))
    s.repo.save_patient(plan.tombstone)
    s.repo.save_patient(winner)
    _repoint(s, merged.id, winner.id, cmd.trigger)
    s.changed(f"patient {merged.id} merged into {winner.id} ({cmd.trigger})")
    s.emit(PatientMerged(winner, plan.tombstone))


def _repoint(s: Session, old: str, new: str, trigger: str) -> None:
    """Move visits, orders and reports of ``old`` to ``new`` (tracing each order)."""
    for v in s.repo.visits_of(old):
        s.repo.save_visit(replace(v, patient_id=new))
    for o in s.repo.orders_of(old):
        moved = replace(o, patient_id=new)
        s.repo.save_order(moved)
        s.trace(moved, f"ADT^{trigger}: patient merged",
                changes=[Change("patient", old, new)])
    for r in s.repo.reports_of(old):
        s.repo.save_report(replace(r, patient_id=new))


def change_identifier(s: Session, cmd: ChangeIdentifier) -> None:
    """A47: MRG-1's identifier becomes PID-3's on the same patient (§3.3.47)."""
    holder = s.repo.patient_by_identifier(cmd.old)
    owner = s.repo.patient_by_identifier(cmd.new)
    if holder is None:
        if owner is not None:
            s.changed(f"A47: {cmd.new.value} already in place (resend)")
            return
        raise Rejected(Refusal(
            "MRG-1", f"MRG-1 {cmd.old.value}^^^{cmd.old.authority} names no known patient",
            error_code="204"))
    patient, _ = _live(s, holder)
    if owner is not None and _live(s, owner)[0].id != patient.id:
        s.new_finding(
            FindingKind.POTENTIAL_DUPLICATE_PATIENT,
            f"A47 would give {cmd.new.value}^^^{cmd.new.authority} to {patient.id}, but "
            f"{owner.id} holds it; not applied",
            patient_id=patient.id, subject=owner.id, score=1.0)
        return
    idents = tuple(cmd.new if i == cmd.old else i for i in holder.identifiers)
    if cmd.new not in idents:
        idents = (cmd.new, *idents)
    changed = replace(holder, identifiers=idents)
    s.repo.save_patient(changed)
    s.changed(f"patient {holder.id}: identifier {cmd.old.value} → {cmd.new.value} (A47)")
    s.emit(PatientChanged(changed, created=False))
