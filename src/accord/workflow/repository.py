"""The Repository protocol: what the engine reads and writes, and nothing more.

Rule: the engine sees state only through this protocol, so it stays pure. Two
implementations: ``accord.workflow.memory.MemoryRepository`` (embedded use and tests)
and the SQL one in ``accord.store`` (inside the ingest transaction). Lookups return
``None`` or an empty list, never raise; saves replace the stored value with the same id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from accord.workflow.findings import FieldStats, Finding
from accord.workflow.identity.matcher import Candidates
from accord.workflow.model import Demographics, Identifier, Order, Patient, Report, Visit
from accord.workflow.trace import TraceEvent


class Repository(Protocol):
    # --- patients -----------------------------------------------------------------------
    def patient(self, patient_id: str) -> Patient | None:
        """The patient with this Accord id (tombstones included)."""
        ...

    def patient_by_identifier(self, identifier: Identifier) -> Patient | None:
        """The patient holding this identifier (value and authority), tombstones included."""
        ...

    def candidates(self, demographics: Demographics, limit: int = 100) -> Sequence[Patient]:
        """Live patients that may be the same person (blocking; the matcher scores them)."""
        ...

    def identity_candidates(self, demographics: Demographics, *, exclude: str = "",
                            limit: int = 100) -> Candidates:
        """What identity matching scores for a registration: at most ``limit`` live
        patients found by the blocking keys that are not too common, as features, with
        the counts of the registration's terms; ``exclude`` (a stored patient being
        matched again) is left out and brings the pairs a reviewer rejected."""
        ...

    def save_patient(self, patient: Patient) -> None: ...

    def count_matched(self, changes: Mapping[str, int]) -> None:
        """Add one new registration's matching to the identity counts
        (``Assessment.changes``): the store learns the duplicate rate and m from them."""
        ...

    # --- visits -------------------------------------------------------------------------
    def visit(self, visit_number: str) -> Visit | None: ...

    def visits_of(self, patient_id: str) -> Sequence[Visit]: ...

    def save_visit(self, visit: Visit) -> None: ...

    # --- orders -------------------------------------------------------------------------
    def order(self, order_id: str) -> Order | None: ...

    def orders_by(self, key: str, value: str) -> Sequence[Order]:
        """Orders whose ``key`` (an ``OrderRef`` key; ``sps_id`` looks in the steps) is
        ``value``."""
        ...

    def order_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Order | None:
        """The order the first of ``numbers`` (``OrderRef.numbers()``, most specific
        first) that names one names: the first by id of :meth:`orders_by` for each
        (key, value) in turn. One lookup for all the numbers (ingest's hot path)."""
        ...

    def orders_of(self, patient_id: str) -> Sequence[Order]: ...

    def save_order(self, order: Order) -> None: ...

    # --- reports ------------------------------------------------------------------------
    def reports_by(self, key: str, value: str) -> Sequence[Report]:
        """Reports whose ``accession``, ``placer_number``, ``filler_number`` or
        ``order_id`` is ``value``."""
        ...

    def reports_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Sequence[Report]:
        """Every report one of ``numbers`` names (:meth:`reports_by`), each once: the
        first (key, value)'s by id, then the next's."""
        ...

    def reports_of(self, patient_id: str) -> Sequence[Report]: ...

    def save_report(self, report: Report) -> None: ...

    # --- findings, statistics, trace -----------------------------------------------------
    def finding(self, key: str) -> Finding | None:
        """The stored finding with this :attr:`Finding.key`."""
        ...

    def findings_about(self, accession: str = "", patient_id: str = "") -> Sequence[Finding]:
        ...

    def save_finding(self, finding: Finding) -> None: ...

    def field_stats(self, sender: str) -> FieldStats: ...

    def save_field_stats(self, stats: FieldStats) -> None: ...

    def add_trace(self, event: TraceEvent) -> None: ...

    def trace(self, order_id: str = "", accession: str = "") -> Sequence[TraceEvent]:
        """Events recorded for this order id or accession, oldest first."""
        ...
