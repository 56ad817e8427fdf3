"""No per-message cost grows with the store: each step a message (or the engine after
it) takes does the same work on a store of 1,000 patients and orders as on one of
100,000.

How it is measured: SQLite's virtual machine runs one instruction per row it visits
(a seek, a step of a scan, a column read, an index insert), so the instructions a
statement runs, counted with ``set_progress_handler(…, 1)``, are the rows it examined,
not only those it returned: a scan over the store shows as work that grows, an indexed
lookup as work that does not. Each statement's count is attributed to it through
``set_trace_callback``.

The steps (``STEPS``): ingesting an ADT^A04 of a new patient, an ADT^A08, an ORM^O01
NW, XO, SC and CA, an ORU^R01, an ORU naming an unknown order (a finding, and again: its
count), each through the real ingest (gateway record, search keys, dedupe claim, the
workflow's patients, orders, trace, findings and field-fill statistics, outbox rows);
the worklist refresh after each; an MPPS's lookup of the orders it references; a
delivery claim FIFO, per patient and as a run; the dashboard's figures the alert monitor
reads every few seconds; an ORM^O01 answered on store (enhanced mode), the applier's
batch that applies it, and the backlog. Every
statement of every step must do the same work at both sizes, up to ``SLACK`` (``GROWS``
names the one statement that may not, and why).

The stores are loaded through the bulk path (``accord.store.workflow.bulk``): patients
with identifiers and blocking keys, one order each (mostly done, some on the worklist),
a trace event per order, a finding per hundred patients, and the messages that brought
them with their delivered outbox rows.

To add a step (another helper's): a coroutine ``async def step(env: Env, tag: str)``
that does the work once, appended to ``STEPS`` with its name.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from accord.clock import ControlIds, FixedClock
from accord.config import Config, Destination
from accord.dicom.bridge import StoreWorklist
from accord.dicom.index import WorklistIndex
from accord.engine.applier import Applier
from accord.engine.ingest import Ingestor
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.mapping.dialect import Dialects
from accord.mllp.server import PeerInfo
from accord.store import InboundMessage, OutboxItem, open_store, sqlite_url
from accord.store.gateway.store import SqlStore
from accord.store.views.dashboard import DashboardView
from accord.store.workflow.bulk import bulk_load
from accord.store.workflow.repository import repository_for
from accord.store.workflow.worklist import SqlWorklistReader
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.identity import Matcher
from accord.workflow.memory import SequentialIds
from accord.workflow.model import (
    Address,
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
)
from accord.workflow.status import Status
from accord.workflow.trace import TraceEvent

SIZES = (1_000, 100_000)
# Instructions a statement may differ by: SQLite also counts the work of preparing a
# statement on a pooled connection that had not seen it yet, and of a page split. A
# statement that reads rows of the store differs by thousands at these sizes.
SLACK = 64
BATCH = 20_000
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PEER = PeerInfo("127.0.0.1", 40000)
DIALECTS = Dialects.from_config({})
DESTINATIONS = (
    Destination(name="pacs", host="127.0.0.1", port=9, send=("adt", "orders", "reports")),
    Destination(name="ris", host="127.0.0.1", port=9, send=("status",), per_patient=True),
)
# Loaded names are made of these syllables: none starts with Q or X, the first letters
# of the measured patients' names, so no blocking key of theirs finds a loaded patient.
SYL = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "do", "fa", "gu", "ha",
       "ji", "ko", "li", "mo", "nu", "pe", "ri", "su", "ta", "we", "yo", "ze")
DEFAULT_PHONE = "0000000000"


# --------------------------------------------------------------------------- counting

def _kind(sql: str) -> str:
    """A statement without its values (the trace callback gives it expanded)."""
    sql = re.sub(r"'(?:[^']|'')*'|X'[0-9A-Fa-f]*'", "?", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)
    sql = re.sub(r"\?(?:\s*,\s*\?)+", "?", " ".join(sql.split()))
    return sql[:160]


class Work:
    """VM instructions per statement on every SQLite connection of an engine."""

    def __init__(self, store: SqlStore) -> None:
        self._conns: list[Any] = []  # sqlite3 connections take no weak references
        self._counts: Counter[str] | None = None
        event.listen(store.database.engine, "connect", self._connected)
        store.database.engine.dispose()  # every connection from now on is seen

    def _connected(self, dbapi_conn: Any, _record: Any) -> None:
        self._conns.append(dbapi_conn)
        if self._counts is not None:
            self._watch(dbapi_conn, self._counts)

    @staticmethod
    def _watch(conn: Any, counts: Counter[str]) -> None:
        current = [""]

        def traced(sql: str) -> None:
            current[0] = _kind(sql)

        def tick() -> int:
            counts[current[0]] += 1
            return 0

        conn.set_trace_callback(traced)
        conn.set_progress_handler(tick, 1)

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        counts: Counter[str] = Counter()
        self._counts = counts
        for conn in list(self._conns):
            with suppress(sqlite3.ProgrammingError):  # closed since
                self._watch(conn, counts)
        try:
            yield counts
        finally:
            self._counts = None
            for conn in list(self._conns):
                with suppress(sqlite3.ProgrammingError):
                    conn.set_progress_handler(None, 1)
                    conn.set_trace_callback(None)


# --------------------------------------------------------------------------- the store

def _name(n: int, parts: int = 3) -> str:
    out = ""
    for _ in range(parts):
        out += SYL[n % len(SYL)]
        n //= len(SYL)
    return out.upper()


def loaded_patient(n: int) -> Patient:
    phone = DEFAULT_PHONE if n % 33 == 0 else f"217{n:07d}"
    return Patient(
        f"P-{n:032x}", (Identifier(f"M{n:08d}", "HOSP", "MR"),),
        Demographics(PersonName(_name(n, 4), _name(n * 7 + 3, 2)),
                     date(1940 + n % 80, 1 + n % 12, 1 + n % 28), "MF"[n % 2],
                     Address(f"{n % 997} {_name(n % 40)} ST", "", "SPRINGFIELD", "IL",
                             f"627{n % 40:02d}"), phone))


#: A department's orders a day: the store grows older at this rate, its days stay alike.
DAILY_ORDERS = 500


def loaded_order(n: int) -> Order:
    """A department's orders at a steady daily rate, newest first: order ``n`` is ``n``
    orders old, so the store's first thousand are its last two days and the rest is older
    history. A bigger store is an older one whose day holds the same work (a store that
    put every order on one day would measure the day's size, not the store's). Of the
    day's orders one in fifty is still on the worklist, the rest are done."""
    start = NOW - timedelta(minutes=n * 24 * 60 / DAILY_ORDERS)
    status = Status.SCHEDULED if n % 50 == 0 and n < DAILY_ORDERS else Status.FINAL
    if status is Status.SCHEDULED:
        start = NOW + timedelta(minutes=n % 600)
    step = ProcedureStep(f"S{n:09d}", "CT", ("CT1",), start=start, description="CT head")
    return Order(f"O-{n:032x}", f"P-{n:032x}", status, accession=f"A{n:09d}",
                 placer_number=f"PL{n:09d}", filler_number=f"A{n:09d}",
                 requested_procedure_id=f"RP{n:09d}", study_instance_uid=f"1.2.3.4.{n}",
                 procedure_code="CT-HEAD", procedure_description="CT head", modality="CT",
                 visit_number=f"V{n:09d}", steps=(step,), source="RIS")


def _history(n: int, order: Order) -> tuple[InboundMessage, tuple[OutboxItem, ...]]:
    cid = f"H{n:09d}"
    raw = (f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260101080000||ORM^O01|{cid}|P|2.5.1\r"
           f"PID|1||M{n:08d}^^^HOSP^MR\rORC|NW|{order.placer_number}\r").encode()
    record = InboundMessage(
        received_at=NOW - timedelta(days=1), raw=raw, sending_app="RIS",
        sending_facility="HOSP", receiving_app="ACCORD", receiving_facility="HOSP",
        message_type="ORM^O01", control_id=cid, version="2.5.1", status="processed",
        ack_code="AA", ack=b"MSA|AA|" + cid.encode(), outcome={"workflow": {"ack": "AA"}},
        patient_ids=(f"M{n:08d}",), accessions=(order.accession,))
    item = OutboxItem(destination="pacs", kind="orders", control_id=f"OUT{cid}",
                      payload=raw, patient_key=f"M{n:08d}^^^HOSP")
    return record, (item,)


def load(store: SqlStore, start: int, end: int) -> None:
    with bulk_load(store.database) as bulk:
        for first in range(start, end, BATCH):
            numbers = range(first, min(end, first + BATCH))
            orders = [loaded_order(n) for n in numbers]
            bulk.patients(loaded_patient(n) for n in numbers)
            bulk.orders((o, NOW - timedelta(days=1)) for o in orders)
            bulk.trace(TraceEvent(NOW - timedelta(days=1), f"RIS/H{n:09d}", "RIS",
                                  "ORC-1 NW (new order)", o.id, o.accession)
                       for n, o in zip(numbers, orders, strict=True))
            bulk.findings(Finding(FindingKind.POTENTIAL_DUPLICATE_PATIENT, "bench",
                                  NOW - timedelta(days=1), patient_id=f"P-{n:032x}",
                                  subject=f"P-{n + 1:032x}")
                          for n in numbers if n % 100 == 0)
            history = [_history(n, o) for n, o in zip(numbers, orders, strict=True)]
            bulk.history([h[0] for h in history], [h[1] for h in history], NOW)
            bulk.commit()


# --------------------------------------------------------------------------- messages

def _msh(kind: str, cid: str) -> str:
    return f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260302120000||{kind}|{cid}|P|2.5.1"


# The measured patients' own letters (a soundex code apiece), one per round, so that
# no patient of one round shares a blocking key with another's (nor with a loaded one:
# Q and X start no loaded name). Each patient's home holds its tag for the same reason
# (a house number and street are a blocking key).
ROUND_LETTERS = "BDLMR"


def _pid(tag: str, street: str = "1 QUIET LANE") -> str:
    k = int(tag[0])
    letter = ROUND_LETTERS[k]
    return (f"PID|1||Q{tag}^^^HOSP^MR||Q{letter}ORRA{tag}^X{letter}ANDER||1901020{k + 1}|M|||"
            f"{street} {tag}^^NOWHERE^IL^0{tag}||555{tag}")


def _pv1(tag: str) -> str:
    return "PV1|1|O|RAD^^^HOSP||||1234^WELBY^MARCUS|||||||||||" + f"|VQ{tag}"


def adt(tag: str, trigger: str, street: str = "1 QUIET LANE") -> bytes:
    return "\r".join([_msh(f"ADT^{trigger}^ADT_A01", f"{trigger}{tag}"),
                      f"EVN|{trigger}|20260302120000", _pid(tag, street), _pv1(tag)]).encode()


def orm(tag: str, order: str, control: str, status: str, when: str = "202603031000") -> bytes:
    acc = f"AQ{tag}{order}"
    obr = ["OBR", "1", f"PQ{tag}{order}^RIS", f"{acc}^PACS", "CT-HEAD^CT head^LOCAL",
           "", "", when, *[""] * 8, "1234^WELBY^MARCUS", "", acc, f"RQ{tag}{order}",
           f"SQ{tag}{order}", "CT1", "", "", "CT", "", "", f"1^^^{when}^^R"]
    return "\r".join([
        _msh("ORM^O01^ORM_O01", f"{control}{status}{tag}{order}"), _pid(tag), _pv1(tag),
        f"ORC|{control}|PQ{tag}{order}^RIS|{acc}^PACS||{status}||^^^{when}^^R"
        "||20260302120000|||1234^WELBY^MARCUS",
        "|".join(obr), f"ZDS|1.2.9.{tag}{order}^Accord^Application^DICOM"]).encode()


def oru(tag: str, order: str) -> bytes:
    acc = f"AQ{tag}{order}"
    return "\r".join([
        _msh("ORU^R01^ORU_R01", f"R{tag}{order}"), _pid(tag), _pv1(tag),
        f"ORC|RE|PQ{tag}{order}^RIS|{acc}^PACS||CM",
        f"OBR|1|PQ{tag}{order}^RIS|{acc}^PACS|CT-HEAD^CT head^LOCAL|||202603021200|||||||||"
        f"1234^WELBY^MARCUS||{acc}||||202603021200|||F",
        "OBX|1|TX|CT-HEAD^CT head^LOCAL|1|No acute abnormality.||||||F"]).encode()


# --------------------------------------------------------------------------- the steps

@dataclass
class Env:
    """One store at one size, with the engine parts the steps drive."""

    store: SqlStore
    ingestor: Ingestor
    worklist: StoreWorklist
    work: Work
    clock: FixedClock
    dashboard: DashboardView
    applier: Applier
    answers: list[bytes] = field(default_factory=list)

    async def send(self, payload: bytes) -> None:
        ack = await self.ingestor.handle(payload, PEER)
        assert b"MSA|AA|" in ack, ack
        self.answers.append(ack)


Step = Callable[[Env, str], Awaitable[None]]


def _ingest(make: Callable[[str], bytes]) -> Step:
    async def step(env: Env, tag: str) -> None:
        await env.send(make(tag))
    return step


def _enhanced(payload: bytes) -> bytes:
    """The message in enhanced mode (MSH-15 AL, MSH-16 NE): answered CA once stored."""
    msh, sep, rest = payload.partition(b"\r")
    return msh + b"|||AL|NE" + sep + rest


def _on_store(make: Callable[[str], bytes]) -> Step:
    async def step(env: Env, tag: str) -> None:
        ack = await env.ingestor.handle(_enhanced(make(tag)), PEER)
        assert b"MSA|CA|" in ack, ack
    return step


async def _apply(env: Env, tag: str) -> None:
    """The applier's batch: the message stored by the step before, applied."""
    assert await asyncio.to_thread(env.applier.apply_batch) == 1


async def _backlog(env: Env, tag: str) -> None:
    """The backlog the alert monitor and /metrics read every few seconds."""
    assert env.store.backlog() == (0, None)


async def _refresh(env: Env, tag: str) -> None:
    await asyncio.to_thread(env.worklist.refresh)


async def _mpps_lookup(env: Env, tag: str) -> None:
    """What an MPPS N-CREATE or N-SET reads: the orders its Scheduled Step Attributes
    reference by Study Instance UID, accession or SPS ID."""
    items = await asyncio.to_thread(env.worklist.referenced, study_uids=[f"1.2.9.{tag}1"],
                                    accessions=[f"AQ{tag}1"], sps_ids=[f"SPS{tag}"])
    assert items


async def _dashboard(env: Env, tag: str) -> None:
    """The alert monitor's read, every few seconds: the dashboard's figures."""
    env.clock.advance(5)
    figures = env.dashboard.figures(env.clock.now(), timedelta(minutes=60), ("pacs", "ris"))
    assert figures.interfaces


async def _claim_fifo(env: Env, tag: str) -> None:
    rows = env.store.claim("pacs", "n1", env.clock.now(), 60, limit=1)
    assert rows
    assert env.store.mark_delivered(rows[0].id, "n1", b"MSA|AA", env.clock.now())


async def _claim_per_patient(env: Env, tag: str) -> None:
    rows = env.store.claim("ris", "n1", env.clock.now(), 60, limit=8, per_patient=True)
    assert rows
    env.store.mark_delivered_many([(r.id, b"MSA|AA") for r in rows], "n1", env.clock.now())


async def _claim_run(env: Env, tag: str) -> None:
    rows = env.store.claim_run("pacs", "n1", env.clock.now(), 60, limit=100)
    assert rows
    env.store.mark_delivered_many([(r.id, b"MSA|AA") for r in rows], "n1", env.clock.now())


STEPS: list[tuple[str, Step]] = [
    ("ADT^A04 new patient", _ingest(lambda t: adt(t, "A04"))),
    ("worklist refresh after A04", _refresh),
    ("ADT^A08 demographics", _ingest(lambda t: adt(t, "A08", "2 QUIET LANE"))),
    ("ORM^O01 NW", _ingest(lambda t: orm(t, "1", "NW", "SC"))),
    ("worklist refresh after NW", _refresh),
    ("MPPS lookup (referenced orders)", _mpps_lookup),
    ("ORM^O01 NW (second order)", _ingest(lambda t: orm(t, "2", "NW", "SC"))),
    ("ORM^O01 XO reschedule", _ingest(lambda t: orm(t, "1", "XO", "SC", "202603031100"))),
    ("worklist refresh after XO", _refresh),
    ("ORM^O01 SC in progress", _ingest(lambda t: orm(t, "1", "SC", "IP"))),
    ("ORM^O01 CA", _ingest(lambda t: orm(t, "2", "CA", "CA"))),
    ("worklist refresh after CA", _refresh),
    ("ORU^R01 final", _ingest(lambda t: oru(t, "1"))),
    ("ORU^R01 unknown order (finding)", _ingest(lambda t: oru(t, "9"))),
    ("ORU^R01 unknown order again", _ingest(
        lambda t: oru(t, "9").replace(b"|R", b"|S", 1))),
    ("delivery claim FIFO", _claim_fifo),
    ("delivery claim per patient", _claim_per_patient),
    ("delivery claim run", _claim_run),
    ("dashboard figures (alert monitor)", _dashboard),
    ("ORM^O01 NW, ACK on store (CA)", _on_store(lambda t: orm(t, "3", "NW", "SC"))),
    ("applier batch (that NW applied)", _apply),
    ("backlog (alert monitor)", _backlog),
]

# Statements whose work is allowed to grow, and why. Open findings by kind, on the
# dashboard: one count per kind over the open findings (an index range, no table row
# read), every few seconds, not per message.
GROWS = {"SELECT findings.kind, count(*) AS count_1 FROM findings WHERE findings.resolution":
         "the dashboard counts the open findings by kind"}


async def measure(env: Env, tag: str) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for name, step in STEPS:
        with env.work.counting() as counts:
            await step(env, tag)
        out[name] = counts
    await asyncio.to_thread(_drain, env)
    return out


def _drain(env: Env) -> None:
    """Every outbox row delivered: each round starts from the same queues."""
    for dest in DESTINATIONS:
        while rows := env.store.claim_run(dest.name, "n1", env.clock.now(), 60, limit=500):
            env.store.mark_delivered_many([(r.id, b"MSA|AA") for r in rows], "n1",
                                          env.clock.now())


@contextmanager
def environment(path: Path) -> Iterator[Env]:
    store = open_store(sqlite_url(path))
    assert isinstance(store, SqlStore)
    ids = ControlIds("OUT")
    processor = WorkflowProcessor(
        dialects=DIALECTS, outbound=Outbound(DESTINATIONS, DIALECTS, ids),
        ids=SequentialIds(), repository=repository_for, matcher=Matcher())
    clock = FixedClock(NOW)
    ingestor = Ingestor(store, clock, ids, processor, Config())
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    applier = Applier(store, clock, ids, processor, "n1", hold=60.0, ack_route=lambda *_: None)
    try:
        yield Env(store, ingestor, worklist, Work(store), clock, DashboardView(store.database),
                  applier)
    finally:
        store.close()


def _differences(small: Counter[str], big: Counter[str]) -> list[str]:
    return [f"{kind}: {small[kind]} -> {big[kind]}"
            for kind in sorted(set(small) | set(big))
            if abs(big[kind] - small[kind]) > SLACK and not kind.startswith(tuple(GROWS))]


@pytest.mark.slow
async def test_no_step_does_more_work_on_a_bigger_store(tmp_path: Path) -> None:
    results: list[dict[str, Counter[str]]] = []
    with environment(tmp_path / "data") as env:
        loaded = 0
        for n, size in enumerate(SIZES):
            started = time.perf_counter()
            await asyncio.to_thread(load, env.store, loaded, size)
            print(f"loaded {size - loaded} in {time.perf_counter() - started:.1f} s")
            loaded = size
            await asyncio.to_thread(env.worklist.load)
            env.clock.advance(7200)  # the last round's messages leave the dashboard's hour
            await measure(env, f"{2 * n}{size:06d}")  # warm-up: first rows, caches
            results.append(await measure(env, f"{2 * n + 1}{size:06d}"))
        await env.ingestor.close()
    small, big = results
    for name, _ in STEPS:  # shown with -s: the work of each step at both sizes
        print(f"{name:36} {sum(small[name].values()):8} {sum(big[name].values()):8}")
    report = {name: _differences(small[name], big[name]) for name, _ in STEPS}
    grown = {name: diff for name, diff in report.items() if diff}
    assert not grown, "\n".join(
        f"{name}:\n  " + "\n  ".join(diff) for name, diff in grown.items())
    for name, _ in STEPS:  # every step did something, at both sizes
        assert sum(small[name].values()) > 0 and sum(big[name].values()) > 0, name


# --------------------------------------------------------- another destination's backlog

def _claim_work(store: SqlStore, work: Work) -> Counter[str]:
    """The instructions of one delivery run claimed for ``pacs`` and of the claim that
    settles it, as a delivery worker makes them."""
    with work.counting() as counts:
        _, run = store.settle_and_claim_run([], "pacs", "n1", NOW, 60, limit=1)
        _, after = store.settle_and_claim_run([(run[0].id, b"MSA|AA")], "pacs", "n1", NOW,
                                              60, limit=1)
    store.release_many([r.id for r in after], "n1")  # the queue's head is free again
    return counts


def test_a_claim_does_the_same_work_whatever_another_destinations_backlog(
        tmp_path: Path) -> None:
    """A destination that is down for a weekend queues its messages; the others' claims
    read their own queue's head and no more (``ix_outbox_open``), so their cost does not
    grow with that backlog."""
    store = open_store(sqlite_url(tmp_path))
    try:
        work = Work(store)
        measured = []
        for backlog in (10, 5_000):
            with store.transaction() as tx:  # the down destination's queue grows
                tx.enqueue([OutboxItem(destination="ris", payload=b"MSH|",
                                       control_id=f"R{backlog}-{i}", kind="status")
                            for i in range(backlog)], NOW)
                tx.enqueue([OutboxItem(destination="pacs", payload=b"MSH|",
                                       control_id=f"P{backlog}-{i}", kind="adt")
                            for i in range(3)], NOW)
            _claim_work(store, work)  # warm-up: statements prepared on this connection
            measured.append(_claim_work(store, work))
        small, big = measured
        assert sum(small.values()) > 0
        assert not _differences(small, big), _differences(small, big)
    finally:
        store.close()
