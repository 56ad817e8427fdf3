"""DICOM cost per operation: the engine's CPU per worklist C-FIND and per MPPS exam.

One ``accord serve`` (SQLite, the workflow on, the demo's procedure catalog) is given
``ORDERS`` orders over MLLP (the demo department's registrations and orders, its
mess left out), so each station's worklist of today holds ~``ORDERS``/7 steps. Then,
with nothing else sent, the engine's CPU time (/proc, all its threads) is read around:
- ``FINDS`` worklist C-FINDs as a modality sends them (station + today, the usual return
  keys; one association kept open), round robin over the stations;
- ``EXAMS`` MPPS exams: N-CREATE IN PROGRESS then N-SET COMPLETED for one order each
  (one association kept open), i.e. two MPPS operations per exam;
- ``IDLE`` associations opened, each echoed once, then kept open and quiet for
  ``IDLE_SECONDS``, as modalities keep theirs between exams: the engine's CPU a second,
  against the same window with none open.
The engine's idle work (housekeeping, alerts) in a window of the same length is read
first and taken off. Figures in ms of CPU per operation; printed, not written to
bench/RESULTS.md (a development measure: run it before and after a change, on the same
machine, and compare).

Run: .venv/bin/python bench/dicom_ops.py   (ORDERS, FINDS, EXAMS from the environment)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    Verification,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_harness import Engine, cpu_seconds

from accord.demo.department import demo_catalog
from accord.demo.modality import ScheduledStep, Station, completed, in_progress, worklist_query
from accord.demo.traffic import PROCEDURES, Department, SimOrder

ORDERS = int(os.environ.get("ORDERS", "350"))
FINDS = int(os.environ.get("FINDS", "300"))
EXAMS = int(os.environ.get("EXAMS", "150"))
IDLE = int(os.environ.get("IDLE", "7"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "10"))
STATIONS = tuple(Station(station, modality) for _, _, modality, station in PROCEDURES)


def orders(n: int) -> tuple[list[bytes], list[SimOrder]]:
    dept = Department(11, control_prefix=f"OPS{random.randrange(36**3):03X}-")
    messages: list[bytes] = []
    placed: list[SimOrder] = []
    while len(placed) < n:
        visit = dept.visit(datetime.now(UTC))
        if visit.order is None or visit.mess is not None:
            continue
        messages += [m.encode() for m in visit.messages]
        placed.append(visit.order)
    return messages, placed


def engine_cpu_ms(engine: Engine, work: object) -> float:
    """The engine's CPU (ms) while ``work()`` runs, less its idle CPU in as long."""
    t0, c0 = time.monotonic(), cpu_seconds(engine.pid)
    work()  # type: ignore[operator]
    busy, took = cpu_seconds(engine.pid) - c0, time.monotonic() - t0
    c1 = cpu_seconds(engine.pid)
    time.sleep(min(took, 10.0))
    idle = (cpu_seconds(engine.pid) - c1) * took / min(took, 10.0)
    return max(busy - idle, 0.0) * 1000


def cpu_per_second(engine: Engine, seconds: float) -> float:
    """The engine's CPU, in ms a second, over the next ``seconds``."""
    c0 = cpu_seconds(engine.pid)
    time.sleep(seconds)
    return (cpu_seconds(engine.pid) - c0) / seconds * 1000


def idle_associations(engine: Engine) -> tuple[float, float]:
    """The engine's CPU a second with no association open, then with ``IDLE`` open and
    quiet (each echoed once, as a modality checks its link, then left alone)."""
    alone = cpu_per_second(engine, IDLE_SECONDS)
    ae = AE(ae_title="OPSIDLE")
    ae.add_requested_context(Verification)
    held = [ae.associate("127.0.0.1", engine.dicom_port, ae_title="ACCORD")
            for _ in range(IDLE)]
    try:
        if not all(a.is_established and a.send_c_echo().Status == 0 for a in held):
            raise RuntimeError("an association was not accepted or not echoed")
        time.sleep(1.0)
        return alone, cpu_per_second(engine, IDLE_SECONDS)
    finally:
        for a in held:
            a.release()


def main() -> None:
    messages, placed = orders(ORDERS)
    config = json.dumps({"workflow": {"catalog": demo_catalog()}})
    with Engine(config=config) as engine:
        report = engine.send(messages, senders=4)
        print(f"{len(placed)} orders placed ({report.codes}); load {os.getloadavg()}")
        time.sleep(6)  # the worklist refreshed, the first answers of each entry encoded
        ae = AE(ae_title="OPSMWL")
        ae.add_requested_context(ModalityWorklistInformationFind)
        ae.add_requested_context(ModalityPerformedProcedureStep)
        assoc = ae.associate("127.0.0.1", engine.dicom_port, ae_title="ACCORD")
        today = f"{datetime.now(UTC):%Y%m%d}"
        answers = 0

        def finds() -> None:
            nonlocal answers
            for i in range(FINDS):
                query: Dataset = worklist_query(STATIONS[i % len(STATIONS)], today)
                answers += sum(1 for status, ds in assoc.send_c_find(
                    query, ModalityWorklistInformationFind) if ds is not None
                    and getattr(status, "Status", 0) in (0xFF00, 0xFF01))

        finds()  # warm: every entry's answer encoded once
        answers = 0
        find_ms = engine_cpu_ms(engine, finds)
        ok = 0

        def exams() -> None:
            nonlocal ok
            for n, order in enumerate(placed[:EXAMS]):
                step = ScheduledStep(f"{order.patient.family}^{order.patient.given}",
                                     order.patient.mrn, "", order.patient.birth_date,
                                     order.patient.sex, order.accession, order.study_uid,
                                     "", order.procedure[1], "", "")
                here = Station(order.procedure[3], order.procedure[2])
                uid = f"2.25.{random.getrandbits(120)}"
                s1, _ = assoc.send_n_create(in_progress(step, here, datetime.now(UTC),
                                                        f"PPS{n:08d}"),
                                            ModalityPerformedProcedureStep, uid)
                s2, _ = assoc.send_n_set(completed(step, here, datetime.now(UTC),
                                                   f"2.25.{random.getrandbits(120)}",
                                                   f"2.25.{random.getrandbits(120)}"),
                                         ModalityPerformedProcedureStep, uid)
                ok += (getattr(s1, "Status", -1), getattr(s2, "Status", -1)) == (0, 0)

        mpps_ms = engine_cpu_ms(engine, exams)
        assoc.release()
        alone, quiet = idle_associations(engine)
    print(f"C-FIND: {find_ms / FINDS:.2f} ms CPU per query, {answers / FINDS:.1f} answers "
          f"each ({find_ms / max(answers, 1):.3f} ms per answer)")
    print(f"MPPS: {mpps_ms / (2 * EXAMS):.2f} ms CPU per operation ({ok}/{EXAMS} exams "
          f"N-CREATE + N-SET answered 0000)")
    print(f"Idle: {IDLE} associations open and quiet, the engine {quiet:.1f} ms CPU a "
          f"second; none open, {alone:.1f} ms")
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
