"""JSON API latency on a big store: order search by accession and by patient, a status
page deep in the list, the worklist of one station and day, patient by identifier.

Usage: ``.venv/bin/python bench/api.py [--orders N] [--rounds R] [--db URL]``

The store is filled directly through the workflow tables (``doc`` written by the same
codec the engine uses; one patient per two orders, one step per order over 40 stations
and 30 days), then each query is run ``R`` times, interleaved, two ways side by side:
the view's query alone (``accord.store.views``) and the whole HTTP route through the app
(authentication, audit write, JSON) with FastAPI's TestClient. Prints median and p99
and rewrites the ``api`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from accord.config import Config
from accord.runtime import build
from accord.store.schema.workflow import (
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
)
from accord.store.views.orders import OrderQuery
from accord.store.workflow import codec
from accord.workflow.model import (
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
)
from accord.workflow.status import Status

TOKEN = "bench-token-0123456789"
T0 = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
STATUSES = (Status.SCHEDULED, Status.COMPLETED, Status.FINAL, Status.IN_PROGRESS)


def _patient(n: int) -> Patient:
    return Patient(f"P-{n:012d}", (Identifier(f"MRN{n:08d}", "HOSP", "MR"),),
                   Demographics(name=PersonName(f"FAM{n % 5000:04d}", f"GIVEN{n % 97}"),
                                birth_date=date(1950 + n % 60, 1 + n % 12, 1 + n % 28),
                                sex="FM"[n % 2]))


def _order(n: int) -> Order:
    start = T0 + timedelta(days=n % 30, minutes=15 * (n % 40))
    step = ProcedureStep(f"SPS{n:08d}", "CT", (f"ST{n % 40:02d}",), start=start,
                         description="CT head")
    return Order(f"O-{n:012d}", f"P-{n // 2:012d}", STATUSES[n % len(STATUSES)],
                 accession=f"ACC{n:09d}", placer_number=f"PL{n:09d}",
                 study_instance_uid=f"1.2.826.0.1.3680043.10.543.{n}", procedure_code="CTH",
                 modality="CT", steps=(step,), source="RIS")


def fill(store: Any, orders: int) -> None:
    """Write ``orders`` orders and ``orders // 2`` patients in blocks."""
    engine = store.database.engine
    block = 5000
    for start in range(0, orders, block):
        ns = range(start, min(orders, start + block))
        pats = [_patient(n) for n in range(start // 2, (ns[-1] // 2) + 1) if n * 2 >= start]
        ords = [_order(n) for n in ns]
        with engine.begin() as conn:
            if pats:
                conn.execute(insert(wf_patients), [
                    {"id": p.id, "merged_into": None, "family": p.demographics.name.family.lower(),
                     "birth_date": "", "doc": codec.encode_patient(p)} for p in pats])
                conn.execute(insert(wf_patient_identifiers), [
                    {"value": p.identifiers[0].value, "authority": "HOSP", "type_code": "MR",
                     "patient_id": p.id, "position": 0} for p in pats])
            conn.execute(insert(wf_orders), [
                {"id": o.id, "patient_id": o.patient_id, "status": o.status.value,
                 "accession": o.accession, "placer_number": o.placer_number,
                 "filler_number": "", "requested_procedure_id": "",
                 "study_instance_uid": o.study_instance_uid, "source": "RIS", "held": False,
                 "updated_at": T0 + timedelta(seconds=n), "doc": codec.encode_order(o)}
                for n, o in zip(ns, ords, strict=True)])
            conn.execute(insert(wf_procedure_steps), [
                {"order_id": o.id, "sps_id": o.steps[0].sps_id,
                 "station_ae": o.steps[0].station_ae_titles[0], "modality": "CT",
                 "start_at": o.steps[0].start, "start_date": o.steps[0].start.strftime("%Y%m%d")
                 if o.steps[0].start else "", "status": o.status.value} for o in ords])


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(orders: int, rounds: int, url: str | None) -> str:
    data = Path(tempfile.mkdtemp(prefix="accord-bench-api-"))
    cfg = Config.model_validate({"store": {"data_dir": str(data), "url": url},
                                 "dicom": {"enabled": False}, "mllp": {"port": 0}})
    rt = build(cfg)
    started = time.perf_counter()
    fill(rt.store, orders)
    print(f"filled {orders} orders in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    from accord.web.api_json import encode_cursor
    from accord.web.app import create_app

    views = rt.views
    client = TestClient(create_app(rt, api_token=TOKEN, extra_routers=[]),
                        base_url="https://testserver")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deep = views.orders.search(OrderQuery(status="completed"),
                               limit=max(1, min(1000, orders // 8))).next_cursor
    assert deep is not None
    rnd = random.Random(7)

    def acc() -> str:
        return f"ACC{rnd.randrange(orders):09d}"

    def mrn() -> str:
        return f"MRN{rnd.randrange(orders // 2):08d}"

    day = (T0 + timedelta(days=3)).strftime("%Y%m%d")
    cases: list[tuple[str, Callable[[], Any], Callable[[], str]]] = [
        ("order by accession", lambda: views.orders.search(OrderQuery(accession=acc())),
         lambda: f"/api/orders?accession={acc()}"),
        ("orders of a patient (MRN)",
         lambda: views.orders.search(OrderQuery(patient_ids=tuple(
             views.patients.ids_by_identifier(mrn(), "HOSP")))),
         lambda: f"/api/orders?patient={mrn()}^^^HOSP"),
        ("orders by status, page 2 (100)",
         lambda: views.orders.search(OrderQuery(status="completed"), deep, limit=100),
         lambda: f"/api/orders?status=completed&limit=100&cursor={encode_cursor(deep)}"),
        ("worklist station+day (100)",
         lambda: views.worklist.steps(station="ST07", date=day, limit=100),
         lambda: f"/api/worklist?station=ST07&date={day}&limit=100"),
        ("patient by identifier", lambda: views.patients.search(identifier=mrn()),
         lambda: f"/api/patients?identifier={mrn()}"),
    ]
    timings: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, query, path in cases:
            t = time.perf_counter()
            query()
            timings.setdefault((name, "query"), []).append(time.perf_counter() - t)
            t = time.perf_counter()
            r = client.get(path(), headers=headers)
            timings.setdefault((name, "http"), []).append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    rt.store.close()
    lines = [f"{orders:,} orders, {orders // 2:,} patients, {rt.store.dialect}; {rounds} rounds "
             "(ms; HTTP = TestClient through auth, audit write, JSON)", "",
             "| query | query median | query p99 | HTTP median | HTTP p99 |",
             "|---|---:|---:|---:|---:|"]
    for name, _, _ in cases:
        qv, hv = timings[(name, "query")], timings[(name, "http")]
        lines.append(f"| {name} | {statistics.median(qv) * 1e3:.2f} | {_p(qv, 0.99) * 1e3:.2f} "
                     f"| {statistics.median(hv) * 1e3:.2f} | {_p(hv, 0.99) * 1e3:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--db", default=None, help="store URL (default: SQLite in a tmp dir)")
    args = ap.parse_args()
    table = run(args.orders, args.rounds, args.db)
    print(table)
    write_section("api", "## JSON API latency (bench/api.py)\n\n" + table)


if __name__ == "__main__":
    main()
