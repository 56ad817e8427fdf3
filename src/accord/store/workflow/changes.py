"""The worklist changes a write transaction committed, handed to whoever keeps a worklist
in memory (the DICOM bridge) once they are durable.

Why: the bridge's worklist followed the store by reading every order the worklist log
named since its last look back from SQL (its document and its patient's, decoded and
indexed again), ~4,000 orders per 5 s at 800 msg/s, although this node had just written
each of them and still held them. Now the repository notes, for every worklist-log row
it writes, the order it saved and its patient; after the commit the bridge is told, and
reads back only the rows other nodes wrote.

Rules:
- A :class:`ChangeLog` belongs to one repository (one message) on one transaction. It
  is handed over by the transaction's after-commit hook (``SqlTx.after_commit``): a
  transaction rolled back hands nothing, a savepoint rolled back drops the hook it added
  (``SqlTx.savepoint``), so no order that was not committed can reach the worklist.
- Each change carries its worklist-log id: the reader applies changes in log order,
  its own and other nodes' alike, and one it cannot complete (a patient this message
  did not read) it reads back from the store as before.
- The patient of a change is the one the message read (locked) or saved last: what the
  transaction committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accord.workflow.model import Order, Patient


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One worklist-log row a committed transaction wrote: the order as saved (None when
    only its patient changed) and the patient as of that message (None: not known)."""

    log_id: int
    order_id: str
    order: Order | None
    patient: Patient | None


CommittedChanges = Callable[[Sequence[LoggedChange]], None]
"""Told, after each commit, the worklist-log rows it wrote, in log order."""


class ChangeLog:
    """The worklist-log rows of one repository, for ``sink`` after commit (module rules)."""

    def __init__(self, after_commit: Callable[[Callable[[], None]], None],
                 sink: CommittedChanges) -> None:
        self._after_commit = after_commit  # the transaction's (``SqlTx.after_commit``)
        self._sink = sink
        self._rows: list[tuple[int, str, Order | None, str]] = []
        self._patients: dict[str, Patient] = {}

    def saw(self, patient: Patient) -> None:
        """``patient`` was read or saved by the message: its latest state."""
        self._patients[patient.id] = patient

    def order(self, log_id: int, order: Order) -> None:
        self._note(log_id, order.id, order, order.patient_id)

    def patient_orders(self, rows: Sequence[tuple[int, str]], patient_id: str) -> None:
        """Rows logged because ``patient_id`` changed: its orders' items show it."""
        for log_id, order_id in rows:
            self._note(log_id, order_id, None, patient_id)

    def _note(self, log_id: int, order_id: str, order: Order | None, patient_id: str) -> None:
        if not self._rows:
            self._after_commit(self._hand_over)
        self._rows.append((log_id, order_id, order, patient_id))

    def _hand_over(self) -> None:
        rows, self._rows = self._rows, []
        self._sink(sorted(
            (LoggedChange(log_id, order_id, order, self._patients.get(patient_id))
             for log_id, order_id, order, patient_id in rows), key=lambda c: c.log_id))
