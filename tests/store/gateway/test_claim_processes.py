"""Several delivery nodes (real processes) claim from one destination at once: no row is
handed out twice, FIFO holds per destination, and per patient in per-patient mode."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from accord.store.gateway.store import SqlStore

from ..conftest import T0
from ..factories import item
from . import claim_worker

NODES = 3


def _run_nodes(
    store_url: str, per_patient: bool, runs: bool = False
) -> tuple[list[int], list[str]]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(NODES, mp_context=ctx) as pool:
        futures = [
            pool.submit(claim_worker.run, store_url, "pacs", f"node{i}", per_patient, runs)
            for i in range(NODES)
        ]
        results = [f.result(timeout=240) for f in futures]
    claimed = [row_id for ids, _ in results for row_id in ids]
    problems = [p for _, found in results for p in found]
    return claimed, problems


def _delivery_order(store: SqlStore, patient: str | None = None) -> list[int]:
    rows = [r for r in store.list_outbox(limit=1000).items if patient in (None, r.patient_key)]
    assert all(r.status == "delivered" and r.delivered_at for r in rows)
    return [r.id for r in sorted(rows, key=lambda r: (r.delivered_at, r.id))]


@pytest.mark.slow
def test_three_nodes_fifo_per_destination(store: SqlStore, store_url: str) -> None:
    with store.transaction() as tx:
        ids = tx.enqueue([item(n=n) for n in range(100)], T0)
    claimed, problems = _run_nodes(store_url, per_patient=False)
    assert problems == []
    assert sorted(claimed) == ids  # every row exactly once
    assert _delivery_order(store) == ids


@pytest.mark.slow
def test_three_nodes_fifo_runs(store: SqlStore, store_url: str) -> None:
    with store.transaction() as tx:
        ids = tx.enqueue([item(n=n) for n in range(100)], T0)
    claimed, problems = _run_nodes(store_url, per_patient=False, runs=True)
    assert problems == []
    assert sorted(claimed) == ids
    assert _delivery_order(store) == ids


@pytest.mark.slow
def test_three_nodes_per_patient(store: SqlStore, store_url: str) -> None:
    patients = [f"P{k}" for k in range(12)]
    with store.transaction() as tx:
        ids = tx.enqueue(
            [item(n=n, patient=patients[(n * 7) % len(patients)]) for n in range(200)], T0
        )
    claimed, problems = _run_nodes(store_url, per_patient=True)
    assert problems == []
    assert sorted(claimed) == ids
    for patient in patients:
        order = _delivery_order(store, patient)
        assert order == sorted(order)
