"""Patient identifiers: which patient a message's PID-3 names, and what a merge moves.

Rule: pure, no I/O, no clock. The workflow applies what these functions decide.

- Identifiers (PID-3 CX, HL7 v2.5.1 §2.A.14) are keyed by assigning authority (CX-4) and
  value (CX-1): the same value under two authorities names two different things. One
  authority is configured as authoritative; the others are cross-references.
- A merge (ADT^A40, HL7 v2.5.1 §3.3.40; older A34, A18; IHE ITI-8 in ITI TF-2a §3.8 and
  RAD-12 in Radiology's Patient Information Reconciliation) keeps the merged patient as a
  tombstone that still owns its retired identifiers, so a later message using one of
  them resolves to the survivor *and* is noticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from accord.errors import ApplyError
from accord.workflow.model import Address, Demographics, Identifier, Patient

IdentifierKey = tuple[str, str]  # (CX-4 assigning authority, CX-1 value)


def identifier_key(identifier: Identifier) -> IdentifierKey:
    """The lookup key of a CX: authority and value, surrounding blanks ignored."""
    return identifier.authority.strip(), identifier.value.strip()


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which known patient a message's identifiers name.

    ``patient_id`` is the live patient (tombstones followed to their survivor) or None.
    ``matched`` is the identifier that decided it, ``authoritative`` whether it came from
    the authoritative authority. ``merged_from`` lists the tombstones passed on the way
    (non-empty: the sender used a merged identifier, a ``merged_patient_reference``
    finding). ``conflicts`` are other live patients named by the remaining identifiers;
    ``unknown`` the identifiers the index has never seen.
    """

    patient_id: str | None
    matched: Identifier | None = None
    authoritative: bool = False
    merged_from: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    unknown: tuple[Identifier, ...] = ()


def resolve(
    identifiers: Iterable[Identifier],
    index: Mapping[IdentifierKey, str],
    *,
    authoritative: str = "",
    merged_into: Mapping[str, str] | None = None,
) -> Resolution:
    """Resolve PID-3 repetitions against ``index`` (identifier key -> patient id).

    Identifiers of the ``authoritative`` authority are tried first, then the
    cross-references in message order. ``merged_into`` maps a tombstone's id to its
    survivor; chains are followed.
    """
    ordered = sorted(identifiers, key=lambda i: i.authority.strip() != authoritative)
    redirects = merged_into or {}
    decided: str | None = None
    matched: Identifier | None = None
    merged_from: tuple[str, ...] = ()
    conflicts: list[str] = []
    unknown: list[Identifier] = []
    for identifier in ordered:
        found = index.get(identifier_key(identifier))
        if found is None:
            unknown.append(identifier)
            continue
        live, passed = _follow(found, redirects)
        if decided is None:
            decided, matched, merged_from = live, identifier, passed
        elif live != decided and live not in conflicts:
            conflicts.append(live)
    return Resolution(
        patient_id=decided,
        matched=matched,
        authoritative=matched is not None and matched.authority.strip() == authoritative,
        merged_from=merged_from,
        conflicts=tuple(conflicts),
        unknown=tuple(unknown),
    )


def _follow(patient_id: str, redirects: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    passed: list[str] = []
    while patient_id in redirects and patient_id not in passed:
        passed.append(patient_id)
        patient_id = redirects[patient_id]
    return patient_id, tuple(passed)


class IdentifierIndex:
    """Identifier key -> patient id, with tombstone redirects, kept in memory.

    An identifier names one patient: ``add`` never steals an identifier another patient
    holds, it reports it instead (an identifier conflict for the review queue).
    """

    def __init__(self, authoritative: str = "") -> None:
        self.authoritative = authoritative
        self._owner: dict[IdentifierKey, str] = {}
        self._keys: dict[str, tuple[IdentifierKey, ...]] = {}
        self._merged_into: dict[str, str] = {}

    def add(self, patient: Patient) -> tuple[Identifier, ...]:
        """Record a patient's identifiers; returns those already owned by someone else."""
        self.remove(patient.id)
        taken: list[Identifier] = []
        keys: list[IdentifierKey] = []
        for identifier in patient.identifiers:
            key = identifier_key(identifier)
            owner = self._owner.setdefault(key, patient.id)
            if owner == patient.id:
                keys.append(key)
            else:
                taken.append(identifier)
        self._keys[patient.id] = tuple(keys)
        if patient.merged_into is not None:
            self._merged_into[patient.id] = patient.merged_into
        return tuple(taken)

    def remove(self, patient_id: str) -> None:
        """Forget a patient's identifiers (and its redirect, if a tombstone)."""
        for key in self._keys.pop(patient_id, ()):
            if self._owner.get(key) == patient_id:
                del self._owner[key]
        self._merged_into.pop(patient_id, None)

    def owner(self, identifier: Identifier) -> str | None:
        """The patient (live or tombstone) holding ``identifier``."""
        return self._owner.get(identifier_key(identifier))

    def resolve(self, identifiers: Iterable[Identifier]) -> Resolution:
        """``resolve`` against this index."""
        return resolve(
            identifiers,
            self._owner,
            authoritative=self.authoritative,
            merged_into=self._merged_into,
        )

    def apply(self, plan: MergePlan) -> None:
        """Re-point identifiers as ``plan`` says (tombstone first, then the survivor)."""
        self.add(plan.tombstone)
        self.add(plan.survivor)


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What merging ``merged`` into ``survivor`` changes (ADT^A40 / A34 / A18).

    ``survivor`` and ``tombstone`` are the two patients after the merge. ``moved`` are
    cross-reference identifiers the survivor gains (authorities it had no identifier
    of); every other identifier of the merged patient stays on the tombstone so that a
    later message using it is redirected and recorded. ``filled`` names demographics
    fields copied from the merged patient into empty fields of the survivor.
    ``already_merged`` marks a resent merge: nothing changes.
    """

    survivor: Patient
    tombstone: Patient
    moved: tuple[Identifier, ...] = ()
    filled: tuple[str, ...] = ()
    already_merged: bool = False


def plan_merge(
    survivor: Patient,
    merged: Patient,
    *,
    authoritative: str = "",
    fill_missing: bool = False,
) -> MergePlan:
    """Plan the merge of ``merged`` (MRG-1) into ``survivor`` (PID-3); pure.

    Raises ApplyError (AE) for a merge that cannot be applied: a patient into itself,
    into a tombstone, or a patient already merged into someone else.
    """
    if survivor.id == merged.id:
        raise ApplyError("a patient cannot be merged into itself", location="MRG-1")
    if survivor.merged_into is not None:
        raise ApplyError("the surviving patient is itself merged", location="PID-3")
    if merged.merged_into == survivor.id:
        return MergePlan(survivor, merged, already_merged=True)
    if merged.merged_into is not None:
        raise ApplyError("the prior patient is already merged elsewhere", location="MRG-1")
    moved = _movable(survivor, merged, authoritative)
    demographics: Demographics = survivor.demographics
    filled: tuple[str, ...] = ()
    if fill_missing:
        demographics, filled = _fill(survivor.demographics, merged.demographics)
    return MergePlan(
        survivor=replace(
            survivor,
            identifiers=survivor.identifiers + moved,
            demographics=demographics,
        ),
        tombstone=replace(
            merged,
            identifiers=tuple(i for i in merged.identifiers if i not in moved),
            merged_into=survivor.id,
        ),
        moved=moved,
        filled=filled,
    )


def _movable(survivor: Patient, merged: Patient, authoritative: str) -> tuple[Identifier, ...]:
    """Cross-references of the merged patient from authorities the survivor has none of."""
    held = {(i.authority.strip(), i.type_code) for i in survivor.identifiers}
    have = {identifier_key(i) for i in survivor.identifiers}
    return tuple(
        i
        for i in merged.identifiers
        if i.authority.strip() != authoritative
        and (i.authority.strip(), i.type_code) not in held
        and identifier_key(i) not in have
    )


def _fill(into: Demographics, source: Demographics) -> tuple[Demographics, tuple[str, ...]]:
    """Copy the merged patient's values into the survivor's empty fields (not the name)."""
    empty: tuple[object, ...] = (None, "", Address())
    changes = {
        f.name: getattr(source, f.name)
        for f in fields(Demographics)
        if f.name != "name"
        and getattr(into, f.name) in empty
        and getattr(source, f.name) not in empty
    }
    return replace(into, **changes), tuple(sorted(changes))
