"""An in-memory Repository: the embedded/test implementation of the workflow state.

Dictionaries keyed by id with small indexes; ``candidates`` blocks on the first letter of
the family name or the birth date, the way a SQL index would. Also
:class:`SequentialIds`, a deterministic id/UID source for tests and simulations.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

from accord.clock import uid_from_uuid
from accord.workflow.findings import FieldStats, Finding, FindingKind, Resolution
from accord.workflow.identity.compare import features
from accord.workflow.identity.frequencies import (
    LEARNED_KEYS,
    POPULATION,
    Frequencies,
    count_keys,
    role_keys,
    term_keys,
)
from accord.workflow.identity.index import lookup_keys, lookup_plan, stored_keys
from accord.workflow.identity.matcher import Candidates
from accord.workflow.model import Demographics, Identifier, Order, Patient, Report, Visit
from accord.workflow.trace import TraceEvent


class MemoryRepository:
    """Everything in dictionaries; satisfies ``accord.workflow.repository.Repository``."""

    def __init__(self) -> None:
        self.patients: dict[str, Patient] = {}
        self.visits: dict[str, Visit] = {}
        self.orders: dict[str, Order] = {}
        self.reports: dict[str, Report] = {}
        self.findings: dict[str, Finding] = {}
        self.stats: dict[str, FieldStats] = {}
        self.events: list[TraceEvent] = []
        self._by_identifier: dict[tuple[str, str], str] = {}
        self._order_keys: dict[tuple[str, str], set[str]] = {}  # (key, value) -> order ids
        self._report_keys: dict[tuple[str, str], set[str]] = {}  # (key, value) -> report ids
        self._counts: Counter[str] = Counter()  # identity counts of the live patients

    # --- patients -----------------------------------------------------------------------
    def patient(self, patient_id: str) -> Patient | None:
        return self.patients.get(patient_id)

    def patient_by_identifier(self, identifier: Identifier) -> Patient | None:
        pid = self._by_identifier.get((identifier.value, identifier.authority))
        return self.patients.get(pid) if pid else None

    def candidates(self, demographics: Demographics, limit: int = 100) -> Sequence[Patient]:
        family = demographics.name.family[:1].upper()
        found: list[Patient] = []
        for p in self.patients.values():
            if p.merged_into is not None:
                continue
            d = p.demographics
            same_initial = bool(family) and d.name.family[:1].upper() == family
            same_birth = demographics.birth_date is not None and d.birth_date == (
                demographics.birth_date
            )
            if same_initial or same_birth:
                found.append(p)
                if len(found) >= limit:
                    break
        return found

    def identity_candidates(self, demographics: Demographics, *, exclude: str = "",
                            limit: int = 100) -> Candidates:
        f = features(demographics)
        lookup = lookup_keys(f)
        counts = {k: self._counts[k] for k in (POPULATION, *LEARNED_KEYS, *term_keys(f),
                                                *role_keys(f), *lookup)}
        keys = set(lookup_plan(lookup, counts, limit=limit))
        found = tuple((p.id, features(p.demographics)) for p in self.patients.values()
                      if p.merged_into is None and p.id != exclude
                      and keys.intersection(stored_keys(features(p.demographics))))
        rejected = frozenset(
            other for x in self.findings.values()
            if x.kind is FindingKind.POTENTIAL_DUPLICATE_PATIENT
            and x.resolution is Resolution.IGNORED and exclude in (x.patient_id, x.subject)
            for other in (x.patient_id, x.subject) if other != exclude) if exclude else (
            frozenset())
        return Candidates(found[:limit], Frequencies(counts[POPULATION], counts), rejected)

    def _count(self, patient: Patient | None, sign: int) -> None:
        if patient is None or patient.merged_into is not None:
            return
        for key in (POPULATION, *count_keys(features(patient.demographics))):
            self._counts[key] += sign

    def count_matched(self, changes: Mapping[str, int]) -> None:
        self._counts.update(changes)

    def save_patient(self, patient: Patient) -> None:
        old = self.patients.get(patient.id)
        self._count(old, -1)
        self._count(patient, 1)
        if old is not None:
            for ident in old.identifiers:
                if self._by_identifier.get((ident.value, ident.authority)) == patient.id:
                    del self._by_identifier[(ident.value, ident.authority)]
        self.patients[patient.id] = patient
        for ident in patient.identifiers:
            self._by_identifier[(ident.value, ident.authority)] = patient.id

    # --- visits -------------------------------------------------------------------------
    def visit(self, visit_number: str) -> Visit | None:
        return self.visits.get(visit_number)

    def visits_of(self, patient_id: str) -> Sequence[Visit]:
        return [v for v in self.visits.values() if v.patient_id == patient_id]

    def save_visit(self, visit: Visit) -> None:
        self.visits[visit.visit_number] = visit

    # --- orders -------------------------------------------------------------------------
    def order(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def orders_by(self, key: str, value: str) -> Sequence[Order]:
        if not value:
            return []
        return [self.orders[i] for i in sorted(self._order_keys.get((key, value), ()))]

    def order_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Order | None:
        for key, value in numbers:
            found = self.orders_by(key, value)
            if found:
                return found[0]
        return None

    def orders_of(self, patient_id: str) -> Sequence[Order]:
        return [o for o in self.orders.values() if o.patient_id == patient_id]

    def save_order(self, order: Order) -> None:
        old = self.orders.get(order.id)
        if old is not None:
            for k in _order_keys(old):
                self._order_keys.get(k, set()).discard(old.id)
        self.orders[order.id] = order
        for k in _order_keys(order):
            self._order_keys.setdefault(k, set()).add(order.id)

    # --- reports ------------------------------------------------------------------------
    def reports_by(self, key: str, value: str) -> Sequence[Report]:
        if not value:
            return []
        return [self.reports[i] for i in sorted(self._report_keys.get((key, value), ()))]

    def reports_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Sequence[Report]:
        found = {r.id: r for key, value in numbers for r in self.reports_by(key, value)}
        return list(found.values())

    def reports_of(self, patient_id: str) -> Sequence[Report]:
        return [r for r in self.reports.values() if r.patient_id == patient_id]

    def save_report(self, report: Report) -> None:
        old = self.reports.get(report.id)
        if old is not None:
            for k in _report_keys(old):
                self._report_keys.get(k, set()).discard(old.id)
        self.reports[report.id] = report
        for k in _report_keys(report):
            self._report_keys.setdefault(k, set()).add(report.id)

    # --- findings, statistics, trace -----------------------------------------------------
    def finding(self, key: str) -> Finding | None:
        return self.findings.get(key)

    def findings_about(self, accession: str = "", patient_id: str = "") -> Sequence[Finding]:
        return [
            f for f in self.findings.values()
            if (accession and f.accession == accession)
            or (patient_id and f.patient_id == patient_id)
        ]

    def save_finding(self, finding: Finding) -> None:
        self.findings[finding.key] = finding

    def field_stats(self, sender: str) -> FieldStats:
        return self.stats.get(sender) or FieldStats(sender)

    def save_field_stats(self, stats: FieldStats) -> None:
        self.stats[stats.sender] = stats

    def add_trace(self, event: TraceEvent) -> None:
        self.events.append(event)

    def trace(self, order_id: str = "", accession: str = "") -> Sequence[TraceEvent]:
        found = [
            e for e in self.events
            if (order_id and e.order_id == order_id) or (accession and e.accession == accession)
        ]
        return sorted(found, key=lambda e: e.at)


def _order_keys(order: Order) -> list[tuple[str, str]]:
    keys = [(k, getattr(order, k)) for k in _ORDER_NUMBERS if getattr(order, k)]
    return keys + [("sps_id", st.sps_id) for st in order.steps if st.sps_id]


def _report_keys(report: Report) -> list[tuple[str, str]]:
    return [(k, v) for k in ("accession", "placer_number", "filler_number", "order_id")
            if (v := getattr(report, k))]


_ORDER_NUMBERS = ("accession", "placer_number", "filler_number", "study_instance_uid",
                  "requested_procedure_id")


class SequentialIds:
    """Deterministic ids (``P1``, ``O1``…) and UIDs under a root: for tests and demos."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._uids = itertools.count(1)

    def new_id(self, kind: str) -> str:
        counter = self._counters.setdefault(kind, itertools.count(1))
        return f"{kind}{next(counter)}"

    def new_uid(self, root: str) -> str:
        return f"{root}.{next(self._uids)}" if root else f"2.25.{next(self._uids)}"


class RandomIds:
    """Random ids (UUID4) and UIDs: a UID root gets a UUID-derived suffix, else 2.25."""

    def new_id(self, kind: str) -> str:
        return f"{kind}-{uuid.uuid4().hex}"

    def new_uid(self, root: str) -> str:
        u = uuid.uuid4()
        if not root:
            return uid_from_uuid(u)
        # PS3.5 §9.1: at most 64 characters; keep as many UUID digits as fit.
        return f"{root}.{u.int}"[:64].rstrip(".")
