"""What identity matching keeps in the store besides the blocking keys: term counts,
packed features, reviewers' decisions about pairs (tables in ``schema/workflow.py``).

Rules:
- Counts change in the transaction of the patient write that changes them, by
  increments (``INSERT … ON CONFLICT DO UPDATE SET count = count + n``), keys in sorted
  order so that two transactions lock the same rows in the same order (no deadlock on
  PostgreSQL).
- A candidate fetch reads only ``identity_features`` (the packed features scoring
  needs) for at most ``MAX_CANDIDATES`` patients, found by the blocking keys that
  ``lookup_plan`` keeps after reading their counts: two indexed statements and a third
  for the decisions when the registration is a stored patient.
- Reviewers' decisions correct the weights the engine starts with (``learned_weights``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from accord.store.db import Database
from accord.store.db.compiled import Runner
from accord.store.schema import (
    wf_identity_counts,
    wf_identity_decisions,
    wf_identity_features,
    wf_patient_blocks,
)
from accord.workflow.identity.compare import Features, features
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, Weights
from accord.workflow.identity.frequencies import (
    LEARNED_KEYS,
    POPULATION,
    Frequencies,
    count_keys,
    role_keys,
    term_keys,
)
from accord.workflow.identity.index import (
    MAX_CANDIDATES,
    home_key,
    lookup_keys,
    lookup_plan,
    pack,
    unpack,
)
from accord.workflow.identity.matcher import Candidates
from accord.workflow.identity.train import learn_from_decisions
from accord.workflow.model import Patient

_c, _f, _d, _b = (wf_identity_counts.c, wf_identity_features.c, wf_identity_decisions.c,
                  wf_patient_blocks.c)

COUNTS = select(_c.key, _c.count).where(_c.key.in_(bindparam("keys", expanding=True)))

# The candidate fetch's two statements take one plain parameter per key (``k0``, ``k1``
# …), built once per number of keys: it runs per new or changed patient, and an
# expanding ``IN`` is compiled again on every execution (most of the fetch's time, as
# measured) where these are compiled once (``accord.store.db.compiled``). The SQL is the
# one an expanding ``IN`` renders, so are the plans and the rows.
_COUNTS_OF: dict[int, Any] = {}
_FEATURES_OF: dict[int, Any] = {}


def _keyed(n: int) -> list[Any]:
    return [bindparam(f"k{i}", type_=_c.key.type) for i in range(n)]


def _counts_of(n: int) -> Any:
    stmt = _COUNTS_OF.get(n)
    if stmt is None:
        stmt = _COUNTS_OF[n] = select(_c.key, _c.count).where(_c.key.in_(_keyed(n)))
    return stmt


def _features_of(n: int) -> Any:
    stmt = _FEATURES_OF.get(n)
    if stmt is None:
        stmt = _FEATURES_OF[n] = select(_f.patient_id, _f.packed).where(
            _f.patient_id.in_(
                select(_b.patient_id)
                .where(_b.key.in_(_keyed(n)))
                .distinct()
                .limit(bindparam("limit"))
                .scalar_subquery()))
    return stmt


def _params(keys: Sequence[str], **more: Any) -> dict[str, Any]:
    return {**{f"k{i}": k for i, k in enumerate(keys)}, **more}


REJECTED = select(_d.a, _d.b).where(
    _d.decision == "distinct",
    or_(_d.a == bindparam("pid"), _d.b == bindparam("pid")))
DELETE_FEATURES = delete(wf_identity_features).where(_f.patient_id == bindparam("pid"))
_ADD: dict[str, Any] = {}


def identity_keys(patient: Patient, f: Features | None = None) -> tuple[str, ...]:
    """The counted keys of a patient: none for a tombstone (it is no one to match).
    ``f``: its features when the caller has them already."""
    if patient.merged_into is not None:
        return ()
    return count_keys(f if f is not None else features(patient.demographics))


def features_row(patient: Patient, f: Features | None = None) -> dict[str, Any] | None:
    """The ``identity_features`` row of a live patient (``f`` as for ``identity_keys``)."""
    if patient.merged_into is not None:
        return None
    return {"patient_id": patient.id,
            "packed": pack(f if f is not None else features(patient.demographics))}


def _add_statement(conn: Connection) -> Any:
    dialect = conn.dialect.name
    stmt = _ADD.get(dialect)
    if stmt is None:
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = make(wf_identity_counts)
        stmt = _ADD[dialect] = base.on_conflict_do_update(
            index_elements=["key"], set_={"count": wf_identity_counts.c.count
                                          + base.excluded["count"]})
    return stmt


def add_counts(conn: Connection, changes: Mapping[str, int], runner: Runner | None = None
               ) -> None:
    """Apply count changes (``frequencies.count_changes``), keys in sorted order."""
    rows = [{"key": k[:255], "count": n} for k, n in sorted(changes.items()) if n]
    if not rows:
        return
    stmt = _add_statement(conn)
    if runner is not None:
        runner.run(stmt, rows)
    else:
        conn.execute(stmt, rows)


def candidates(conn: Connection, runner: Runner, f: Features, *, exclude: str = "",
               limit: int = MAX_CANDIDATES) -> Candidates:
    """The registration's candidates, with the counts of its terms and the patients a
    reviewer said ``exclude`` is not (module rules)."""
    lookup = lookup_keys(f)
    asked = [POPULATION, *LEARNED_KEYS, *term_keys(f), *role_keys(f), *lookup]
    counts = {str(k): int(n) for k, n in runner.rows(_counts_of(len(asked)), _params(asked))}
    freqs = Frequencies(max(0, counts.get(POPULATION, 0)), counts)
    keys = lookup_plan(lookup, counts, limit=limit)
    found: tuple[tuple[str, Features], ...] = ()
    if keys:
        found = tuple((str(pid), unpack(packed)) for pid, packed in
                      runner.rows(_features_of(len(keys)), _params(keys, limit=limit + 1))
                      if pid != exclude)
    rejected: frozenset[str] = frozenset()
    if exclude:
        rejected = frozenset(b if a == exclude else a
                             for a, b in runner.rows(REJECTED, {"pid": exclude}))
    return Candidates(found, freqs, rejected)


def frequencies(conn: Connection, f: Features) -> Frequencies:
    """The counts of one patient's terms and home, and the population (for explaining
    a pair)."""
    rows = conn.execute(COUNTS, {"keys": [POPULATION, *LEARNED_KEYS, *term_keys(f),
                                          *role_keys(f), home_key(f)]})
    counts = {str(k): int(n) for k, n in rows}
    return Frequencies(max(0, counts.get(POPULATION, 0)), counts)


def decide(conn: Connection, a: str, b: str, decision: str, at: datetime,
           levels: Sequence[Sequence[Any]] = ()) -> None:
    """Remember a reviewer's decision about a pair ("distinct" or "same"); "" forgets it.
    ``levels``: the terms of its score when decided (field, level, weight, tf)."""
    first, second = sorted((a, b))
    conn.execute(delete(wf_identity_decisions).where(_d.a == first, _d.b == second))
    if decision:
        conn.execute(insert(wf_identity_decisions), {
            "a": first, "b": second, "decision": decision, "at": at,
            "levels": [list(level) for level in levels]})


def decisions(conn: Connection) -> Iterable[tuple[str, list[list[Any]]]]:
    """Every remembered decision with the terms the pair's score had (for training)."""
    for row in conn.execute(select(_d.decision, _d.levels)):
        yield str(row.decision), list(row.levels or [])


def learned_weights(database: Database, weights: Weights = DEFAULT_WEIGHTS) -> Weights:
    """``weights`` corrected by every decision reviewers made (``learn_from_decisions``):
    what the engine matches with from its start."""
    with database.read() as conn:
        return learn_from_decisions(weights, list(decisions(conn)))
