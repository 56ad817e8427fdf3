"""The workflow repository's statements, built once (``bindparam`` values per call).

Why: building a SQLAlchemy Core statement and its cache key costs about four times as
much as running it on SQLite (measured: ~180 µs built per call against ~45 µs prebuilt
for the identifier lookup), and ingest runs a dozen of them per message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from accord.store.schema import (
    wf_field_stats,
    wf_findings,
    wf_orders,
    wf_patient_blocks,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_reports,
    wf_trace_events,
    wf_visits,
    wf_worklist_log,
)

_p, _i, _b = wf_patients.c, wf_patient_identifiers.c, wf_patient_blocks.c
_o, _r, _f, _t = wf_orders.c, wf_reports.c, wf_findings.c, wf_trace_events.c

PATIENT = select(_p.doc).where(_p.id == bindparam("id"))
PATIENT_BY_IDENTIFIER = (
    select(_p.doc)
    .join(wf_patient_identifiers, _p.id == _i.patient_id)
    .where(_i.value == bindparam("value"), _i.authority == bindparam("authority"))
)
# Tombstones are left out by the caller: a ``merged_into IS NULL`` here makes SQLite's
# planner walk that index (every live patient) instead of the primary key.
CANDIDATES = select(_p.doc).where(
    _p.id.in_(
        select(_b.patient_id)
        .where(_b.key.in_(bindparam("keys", expanding=True)))
        .distinct()
        .limit(bindparam("limit"))
        .scalar_subquery()
    ),
)
DELETE_IDENTIFIERS = delete(wf_patient_identifiers).where(_i.patient_id == bindparam("pid"))
DELETE_BLOCKS = delete(wf_patient_blocks).where(_b.patient_id == bindparam("pid"))
INSERT_BLOCKS = insert(wf_patient_blocks)
LOG_PATIENT_ORDERS = insert(wf_worklist_log).from_select(
    ["order_id", "at"],
    select(_o.id, bindparam("at", type_=wf_worklist_log.c.at.type)).where(
        _o.patient_id == bindparam("pid")
    ),
)

VISIT = select(wf_visits.c.doc).where(wf_visits.c.visit_number == bindparam("number"))
VISITS_OF = (
    select(wf_visits.c.doc)
    .where(wf_visits.c.patient_id == bindparam("pid"))
    .order_by(wf_visits.c.visit_number)
)

ORDER = select(_o.doc).where(_o.id == bindparam("id"))
ORDER_KEYS = (
    "accession",
    "placer_number",
    "filler_number",
    "study_instance_uid",
    "requested_procedure_id",
)
ORDERS_BY: dict[str, Any] = {
    key: select(_o.doc).where(_o[key] == bindparam("value")).order_by(_o.id)
    for key in ORDER_KEYS
}
# The order numbers' unique indexes are partial (WHERE col <> ''): SQLite uses one only
# when the query repeats that condition, else it scans the table in id order.
for _key in ("accession", "placer_number", "filler_number", "study_instance_uid"):
    ORDERS_BY[_key] = ORDERS_BY[_key].where(_o[_key] != literal_column("''"))
ORDERS_BY["sps_id"] = (
    select(_o.doc)
    .where(
        _o.id.in_(
            select(wf_procedure_steps.c.order_id)
            .where(wf_procedure_steps.c.sps_id == bindparam("value"))
            .scalar_subquery()
        )
    )
    .order_by(_o.id)
)


def _order_number(key: str) -> ColumnElement[bool]:
    """``key = :v_<key>`` as :data:`ORDERS_BY` states it (partial-index condition kept)."""
    value = bindparam(f"v_{key}", type_=_o.accession.type)
    if key == "sps_id":
        return _o.id.in_(select(wf_procedure_steps.c.order_id)
                         .where(wf_procedure_steps.c.sps_id == value).scalar_subquery())
    column: ColumnElement[str] = _o[key]
    if key == "requested_procedure_id":
        return column == value
    return (column == value) & (column != literal_column("''"))


_ORDERS_BY_ANY: dict[tuple[str, ...], tuple[Select[Any], Select[Any]]] = {}


def orders_by_any(keys: tuple[str, ...], *, lock: bool) -> Select[Any]:
    """Orders with any of ``keys`` equal to its ``v_<key>`` parameter, by id: one
    statement for every number a message names (each OR term uses its own index)."""
    pair = _ORDERS_BY_ANY.get(keys)
    if pair is None:
        stmt = select(_o.doc).where(or_(*(_order_number(k) for k in keys))).order_by(_o.id)
        pair = _ORDERS_BY_ANY[keys] = (stmt, stmt.with_for_update(of=wf_orders))
    return pair[1] if lock else pair[0]


_REPORTS_BY_ANY: dict[tuple[str, ...], Select[Any]] = {}


def reports_by_any(keys: tuple[str, ...]) -> Select[Any]:
    """Reports (key columns and doc) with any of ``keys`` equal to ``v_<key>``, by id."""
    stmt = _REPORTS_BY_ANY.get(keys)
    if stmt is None:
        stmt = _REPORTS_BY_ANY[keys] = select(_r.doc).where(
            or_(*(_r[k] == bindparam(f"v_{k}") for k in keys))).order_by(_r.id)
    return stmt


ORDERS_OF = select(_o.doc).where(_o.patient_id == bindparam("pid")).order_by(_o.id)
DELETE_STEPS = delete(wf_procedure_steps).where(
    wf_procedure_steps.c.order_id == bindparam("oid")
)
_UPDATE_ORDER: dict[tuple[str, ...], Any] = {}


def update_order(moved: tuple[str, ...]) -> Any:
    """UPDATE of one order (``oid``): ``updated_at``, ``doc`` and the ``moved`` columns,
    each from its ``to_<column>`` parameter."""
    stmt = _UPDATE_ORDER.get(moved)
    if stmt is None:
        columns = (*moved, "updated_at", "doc")
        stmt = _UPDATE_ORDER[moved] = update(wf_orders).where(
            _o.id == bindparam("oid")).values(
            {c: bindparam(f"to_{c}", type_=_o[c].type) for c in columns})
    return stmt


UPDATE_STEPS = (
    update(wf_procedure_steps)
    .where(wf_procedure_steps.c.order_id == bindparam("oid"))
    .values(status=bindparam("to_status", type_=wf_procedure_steps.c.status.type),
            held=bindparam("to_held", type_=wf_procedure_steps.c.held.type))
)
INSERT_STEPS = insert(wf_procedure_steps)
INSERT_LOG = insert(wf_worklist_log)
# With the ids they were given, for a node that feeds its worklist from its own commits
# (``changes.py``); SQLite gives a single row's id without RETURNING (``lastrowid``).
INSERT_LOG_RETURNING = insert(wf_worklist_log).returning(wf_worklist_log.c.id)
LOG_PATIENT_ORDERS_RETURNING = LOG_PATIENT_ORDERS.returning(
    wf_worklist_log.c.id, wf_worklist_log.c.order_id)

REPORT_KEYS = ("accession", "placer_number", "filler_number", "order_id")
REPORTS_BY = {
    key: select(_r.doc).where(_r[key] == bindparam("value")).order_by(_r.id)
    for key in REPORT_KEYS
}
REPORTS_OF = select(_r.doc).where(_r.patient_id == bindparam("pid")).order_by(_r.id)

FINDING = select(_f.doc).where(_f.key == bindparam("key"))
FINDINGS_BY_ACCESSION = select(_f.doc).where(_f.accession == bindparam("value")).order_by(_f.id)
FINDINGS_BY_PATIENT = select(_f.doc).where(_f.patient_id == bindparam("value")).order_by(_f.id)

FIELD_STATS = select(
    wf_field_stats.c.message_type,
    wf_field_stats.c.path,
    wf_field_stats.c.seen,
    wf_field_stats.c.filled,
    wf_field_stats.c.streak,
    wf_field_stats.c.drifting,
).where(wf_field_stats.c.sender == bindparam("sender"))
FIELD_STATS_OF_TYPE = FIELD_STATS.where(wf_field_stats.c.message_type == bindparam("type"))

INSERT_TRACE = insert(wf_trace_events)
TRACE_BY_ORDER = select(_t.id, _t.doc).where(_t.order_id == bindparam("value"))
TRACE_BY_ACCESSION = select(_t.id, _t.doc).where(_t.accession == bindparam("value"))

# Inside a write transaction the rows a message reads and then rewrites are locked
# (PostgreSQL ``FOR UPDATE``; SQLite has one writer at a time and renders nothing), so
# two nodes — or an MPPS and an HL7 message — never update one order from the same old
# value. Reads outside a write transaction (``accord trace``) use the plain statements.
LOCKED: dict[Any, Any] = {
    stmt: stmt.with_for_update(of=table)
    for stmt, table in (
        (PATIENT, wf_patients),
        (PATIENT_BY_IDENTIFIER, wf_patients),
        (ORDER, wf_orders),
        (ORDERS_OF, wf_orders),
        *((stmt, wf_orders) for stmt in ORDERS_BY.values()),
    )
}
