"""Fast at any age: `accord serve` on stores pre-loaded to production size, with a
realistic (skewed) population, against python-hl7's MLLP server in the same run.

The stores. For each size (``--sizes``, default 0, 100,000 and 1,000,000 patients and
as many orders), a store is loaded through the store's own bulk path
(``accord.store.workflow.bulk``), not MLLP: the ``skewed`` population of
``bench/population.py`` (about 40 postcodes, names by published frequency, 3% default
phones, 5% none, households, births over 90 years, one person in ten registered again
under a new MRN), one order per patient over the past year (``bench/exams.py``: a
radiology department's procedures; the last ones still scheduled, the rest reported,
some cancelled), their visits, reports, trace events, a finding per duplicate
registration, and the ADT^A04 and ORM^O01 that brought them (the gateway's messages,
search keys and dedupe claims). A ``uniform`` store of the same size (every field drawn
uniformly: the data that hides skew) is loaded too (``--uniform``, default: every size
but 0). The values are those the engine stores for these messages
(``tests/bench/test_exams.py``). Loading times are reported.

The runs, on each store: the default ``accord serve`` (no configuration) with 1 and 8
senders, original mode, each sender the whole life of its exams in order (ADT^A04 of a
new patient or ADT^A08 of a stored one, ORM^O01 NW, sometimes XO, SC/IP, SC/CM, ORU^R01;
one in twenty cancelled, ORC-1 CA); python-hl7's MLLP server (stores nothing, answers at
once) with the same messages in the same run, alternating; then ACK on store: the same
mix in enhanced mode (MSH-15 AL, MSH-16 NE), measuring the ACK rate and the applier's
drain rate (the backlog left when the burst ended, over the time the applier took to
empty it; the inbox's rows are counted from the store file, read-only). An engine that answers AA to
those messages has no store-first path: reported as not available.

Reported per store: msg/s, ACK p50/p99, server CPU ms per message, RSS; and each goal:
8 senders at least 1.2x python-hl7 at every size; at most 15% lost from empty to the
largest store; skewed within 20% of uniform; ACK p99 under 50 ms on the largest; ACK on
store with 8 senders at least 5x python-hl7; the applier drains at least as fast as the
default engine applies; RSS under 2 GB on the largest.

Usage::

    .venv/bin/python bench/aging.py                       # 0, 100k, 1M: see bench/RESULTS.md
    .venv/bin/python bench/aging.py --sizes 0,20000 --no-write   # while developing
    .venv/bin/python bench/aging.py --data ../aging-stores   # keep the stores, reuse

Results go to the ``aging`` section of bench/RESULTS.md unless ``--no-write``: write them
only from a run on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exams
import population
from _results import write_section
from engine_harness import Engine, SendReport, send
from ingest import peer_server
from population import Population, Registration

from accord.store import InboundMessage, open_store, sqlite_url
from accord.store.workflow.bulk import bulk_load
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.memory import RandomIds
from accord.workflow.model import Order, Patient, Report, Visit
from accord.workflow.status import Status
from accord.workflow.trace import Change, TraceEvent

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # population.TODAY, 08:00
SEED = 20261129
BATCH = 20_000
SCHEDULED_SHARE = 0.005  # of a year's orders, the last ones: still on the worklist
RUN_PATIENTS = 6_000  # registrations kept out of the store: the runs' new patients
MARKER = "aging-store.json"


# --------------------------------------------------------------------------- the stores


@dataclass
class Store:
    flavour: str
    size: int
    path: Path
    population: Population
    load_seconds: float = 0.0
    rows: int = 0
    session: int = 0  # runs on this store so far (a reused store gets new numbers)

    def save(self) -> None:
        (self.path / MARKER).write_text(json.dumps(
            {"seconds": self.load_seconds, "rows": self.rows, "session": self.session}))


def _history(r: Registration, e: exams.Exam, i: int, sent: datetime
             ) -> list[InboundMessage]:
    """The ADT^A04 and ORM^O01 that brought patient ``i`` and its order, as stored."""
    out = []
    for kind, cid, text in (
            ("ADT^A04", f"HA{i:09d}", population.adt(r, f"HA{i:09d}")),
            ("ORM^O01", f"HO{i:09d}", exams.orm(r, e, "NW", "SC", f"HO{i:09d}", sent))):
        out.append(InboundMessage(
            received_at=sent, raw=text.encode(), peer="10.1.2.3:51000", listener="mllp",
            sending_app=text.split("|")[2], sending_facility=population.AUTHORITY,
            receiving_app="ACCORD", receiving_facility=population.AUTHORITY,
            message_type=kind, control_id=cid, version="2.5.1", status="processed",
            ack_code="AA", ack=f"MSH|^~\\&|ACCORD|HOSP|RIS|HOSP|||ACK|{cid}A|P|2.5.1\r"
            f"MSA|AA|{cid}\r".encode(),
            outcome={"workflow": {"ack": "AA", "changes": [], "findings": [], "events": [],
                                  "error": "", "location": ""}, "routed": []},
            patient_ids=(r.mrn,), accessions=(e.accession,) if kind == "ORM^O01" else ()))
    return out


@dataclass
class _Chunk:
    patients: list[Patient] = field(default_factory=list)
    orders: list[tuple[Order, datetime]] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    history: list[InboundMessage] = field(default_factory=list)

    def rows(self) -> int:
        return (len(self.patients) + len(self.orders) + len(self.visits) + len(self.reports)
                + len(self.trace) + len(self.findings) + len(self.history))


def _chunk(pop: Population, numbers: range, size: int, first_of: dict[str, str],
           rng: random.Random, ids: RandomIds) -> _Chunk:
    c = _Chunk()
    year = timedelta(days=365)
    for i in numbers:
        r, person = pop.records[i], pop.persons[i]
        pid = ids.new_id("P")
        c.patients.append(exams.patient_of(r, pid))
        if person in first_of:  # a later registration of a known person
            c.findings.append(Finding(
                FindingKind.POTENTIAL_DUPLICATE_PATIENT, f"new patient {pid} resembles "
                f"{first_of[person]}", NOW - year, patient_id=pid, subject=first_of[person],
                score=0.9))
        else:
            first_of[person] = pid
        placed = NOW - year + year * (i / max(size, 1))
        scheduled = i >= size * (1 - SCHEDULED_SHARE)
        start = placed + timedelta(hours=rng.randrange(2, 72) if scheduled else 1)
        e = exams.exam(i, start, rng)
        order = exams.order_of(e, ids.new_id("O"), pid)
        ref = f"RIS/HO{i:09d}"
        c.trace.append(TraceEvent(placed, ref, "RIS", "ORC-1 NW, ORC-5 SC", order.id,
                                  e.accession, (Change("status", "", "scheduled"),)))
        if not scheduled:
            status = Status.CANCELLED if rng.random() < 0.03 else Status.FINAL
            order = exams.done(order, status)
            done_at = start + timedelta(hours=rng.randrange(1, 48))
            c.trace.append(TraceEvent(done_at, f"RIS/HR{i:09d}", "RIS",
                                      "OBR-25 F" if status is Status.FINAL else "ORC-1 CA",
                                      order.id, e.accession,
                                      (Change("status", "completed", status.value),)))
            if status is Status.FINAL:
                c.reports.append(exams.report_of(e, ids.new_id("R"), order, done_at))
        c.orders.append((order, placed))
        c.visits.append(exams.visit_of(e, pid))
        c.history += _history(r, e, i, placed)
    return c


def build(path: Path, flavour: str, size: int) -> Store:
    """The store of ``size`` patients and orders of ``flavour`` at ``path`` (reused when
    a previous run left it complete)."""
    pop = population.FLAVOURS[flavour](size + RUN_PATIENTS, SEED)
    store = Store(flavour, size, path, pop)
    marker = path / MARKER
    if marker.exists():
        saved = json.loads(marker.read_text())
        store.load_seconds, store.rows = saved["seconds"], saved["rows"]
        store.session = saved.get("session", 0) + 1
        store.save()
        print(f"  reusing {flavour} store of {size:,} at {path}", flush=True)
        return store
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    sql = open_store(sqlite_url(path))
    started = time.perf_counter()
    rng, ids, first_of = random.Random(SEED + size), RandomIds(), {}
    with bulk_load(sql.database) as load:
        for first in range(0, size, BATCH):
            c = _chunk(pop, range(first, min(size, first + BATCH)), size, first_of, rng, ids)
            load.patients(c.patients)
            load.visits(c.visits)
            load.orders(c.orders)
            load.reports(c.reports)
            load.trace(c.trace)
            load.findings(c.findings)
            load.history(c.history, [()] * len(c.history), NOW)
            load.commit()
            store.rows += c.rows()
            print(f"  {flavour} {min(size, first + BATCH):>9,} / {size:,} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    sql.close()
    store.load_seconds = time.perf_counter() - started
    store.save()
    return store


# --------------------------------------------------------------------------- the load


class Traffic:
    """The runs' messages: each exam's life, in order, on one sender (module doc)."""

    def __init__(self, store: Store) -> None:
        self._pop = store.population
        self._stored = store.size
        self._next_new = store.size  # registrations after the stored ones: new patients
        self._rng = random.Random(SEED + store.size + 7919 * (store.session + 1))
        # Exam numbers (accessions...) after the stored ones, and after those of earlier
        # sessions on a reused store; MSH-10s and new MRNs carry the session too.
        self._exam = 10_000_000 + store.size + 100_000 * store.session
        self._session = store.session
        self._runs = 0

    def _patient(self) -> tuple[Registration, str]:
        if self._stored and self._rng.random() < 0.4:
            r = self._pop.records[self._rng.randrange(self._stored)]
            if r.phone and self._rng.random() < 0.5:  # a new mobile number
                r = dataclasses.replace(r, phone=f"217{self._rng.randrange(2, 10)}"
                                                 f"{self._rng.randrange(10**6):06d}")
            return r, "A08"
        if self._next_new >= len(self._pop.records):
            raise RuntimeError("out of new registrations: raise RUN_PATIENTS")
        r = self._pop.records[self._next_new]
        self._next_new += 1
        if self._session:
            r = dataclasses.replace(r, mrn=f"{r.mrn}S{self._session}")
        return r, "A04"

    def life(self, tag: str, sent: datetime) -> list[str]:
        """One exam's messages (MSH-10 ``tag`` + a number)."""
        r, trigger = self._patient()
        self._exam += 1
        e = exams.exam(self._exam, sent + timedelta(minutes=self._rng.randrange(10, 600)),
                       self._rng)
        cid = iter(range(10))
        out = [population.adt(r, f"{tag}{next(cid)}", trigger, f"{sent:%Y%m%d%H%M%S}"),
               exams.orm(r, e, "NW", "SC", f"{tag}{next(cid)}", sent)]
        if self._rng.random() < 0.05:
            return [*out, exams.orm(r, e, "CA", "CA", f"{tag}{next(cid)}", sent)]
        if self._rng.random() < 0.1:
            later = replace_start(e, e.start + timedelta(hours=1))
            out.append(exams.orm(r, later, "XO", "SC", f"{tag}{next(cid)}", sent))
        out += [exams.orm(r, e, "SC", "IP", f"{tag}{next(cid)}", sent),
                exams.orm(r, e, "SC", "CM", f"{tag}{next(cid)}", sent),
                exams.oru(r, e, f"{tag}{next(cid)}", sent)]
        return out

    def messages(self, count: int, senders: int, enhanced: bool = False) -> list[bytes]:
        """About ``count`` messages for ``senders`` connections, laid out so that sender
        ``i`` (``messages[i::senders]``) sends whole exams in order."""
        self._runs += 1
        per_sender: list[list[str]] = [[] for _ in range(senders)]
        exam = 0
        while sum(len(p) for p in per_sender) < count:
            s = exam % senders
            per_sender[s] += self.life(f"G{self._session}R{self._runs}X{exam:06d}", NOW)
            exam += 1
        length = max(len(p) for p in per_sender)
        for n, p in enumerate(per_sender):  # pad with updates: the lists interleave evenly
            while len(p) < length:
                r, _ = self._patient()
                p.append(population.adt(r, f"G{self._session}R{self._runs}P{n}Y{len(p)}",
                                        "A08"))
        out = [p[k] for k in range(length) for p in per_sender]
        if enhanced:
            out = [_enhanced(text) for text in out]
        return [text.encode() for text in out]


def replace_start(e: exams.Exam, start: datetime) -> exams.Exam:
    return exams.Exam(e.n, e.procedure, start, e.study_uid, e.referring)


def _enhanced(text: str) -> str:
    """MSH-15 AL (accept acknowledgment always), MSH-16 NE (application ACK never): HL7
    v2.5.1 §2.9.3 enhanced mode, answered CA once stored."""
    msh, rest = text.split("\r", 1)
    fields = msh.split("|")
    fields += [""] * max(0, 16 - len(fields))
    fields[14], fields[15] = "AL", "NE"
    return "|".join(fields) + "\r" + rest


# --------------------------------------------------------------------------- the runs


@dataclass
class Result:
    store: Store
    accord: dict[int, list[SendReport]] = field(default_factory=dict)
    peer: dict[int, list[SendReport]] = field(default_factory=dict)
    enhanced: SendReport | None = None
    drain_rate: float | None = None  # msg/s: the backlog left by the burst, emptied
    drain_backlog: int = 0  # that backlog
    enhanced_note: str = ""
    peak_rss_mb: float = 0.0


def _median(reports: Sequence[SendReport], key: str) -> float:
    return statistics.median(getattr(r, key) for r in reports)


def run_store(store: Store, messages: int, rounds: int) -> Result:
    result = Result(store)
    traffic = Traffic(store)
    with Engine(data=store.path) as engine:
        peer = peer_server()
        try:
            engine.send(traffic.messages(min(messages, 400), 8))  # warm-up
            for _ in range(rounds):
                for senders in (1, 8):
                    batch = traffic.messages(messages, senders)
                    a = engine.send(batch, senders)
                    p = send(peer.port, peer.proc.pid, batch, senders)
                    if a.refused:
                        raise RuntimeError(f"refused: {a.refused[:3]!r}")
                    result.accord.setdefault(senders, []).append(a)
                    result.peer.setdefault(senders, []).append(p)
                    result.peak_rss_mb = max(result.peak_rss_mb, a.rss_mb)
                    print(f"    {store.flavour} {store.size:>9,} {senders} sender(s): "
                          f"accord {a.rate:6.0f} msg/s p99 {a.p99_ms:6.1f} ms "
                          f"{a.cpu_ms_per_message:5.2f} CPU ms/msg {a.rss_mb:5.0f} MB | "
                          f"python-hl7 {p.rate:6.0f} msg/s", flush=True)
            _ack_on_store(engine, traffic, messages, result)
        finally:
            peer.stop()
    return result


def _backlog(engine: Engine) -> int:
    """Messages stored and not yet applied (the inbox's rows), read from the store file
    by a read-only connection of this process: polled often, it costs the engine
    nothing, where ``/api/stats`` counts whole tables of a 1,000,000 store."""
    uri = f"file:{engine.data / 'accord.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])


def _ack_on_store(engine: Engine, traffic: Traffic, count: int, result: Result) -> None:
    """The burst answered on store, then the drain: the backlog left when the burst
    ended, over the time the applier took to empty it (while the senders send, the
    applier gives way to ingest)."""
    batch = traffic.messages(count, 8, enhanced=True)
    started = time.perf_counter()
    report = engine.send(batch, 8)
    ended, waiting = time.perf_counter(), _backlog(engine)
    if report.codes.get("CA", 0) == 0 or "backlog" not in engine.stats():
        result.enhanced_note = "not available (the engine answered " + ", ".join(
            sorted(report.codes)) + " and reports no backlog: no store-first path)"
        return
    result.enhanced = report
    result.peak_rss_mb = max(result.peak_rss_mb, report.rss_mb)
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        if _backlog(engine) == 0:
            now = time.perf_counter()
            result.drain_rate = (waiting / (now - ended) if waiting
                                 else len(batch) / (now - started))
            result.drain_backlog = waiting
            break
        time.sleep(0.05)
    else:
        result.enhanced_note = "the backlog did not empty within 10 minutes"
    print(f"    ACK on store: {report.rate:.0f} msg/s, drained at "
          f"{result.drain_rate or 0:.0f} msg/s ({result.drain_backlog} left by the burst)",
          flush=True)


# --------------------------------------------------------------------------- the report


def _rate(result: Result, senders: int, who: str = "accord") -> float:
    return _median((result.accord if who == "accord" else result.peer)[senders], "rate")


def report(results: list[Result], messages: int, rounds: int) -> str:
    lines = [
        "## At age (`bench/aging.py`)",
        "",
        f"`accord serve` (default configuration, SQLite) on stores pre-loaded through the "
        f"bulk path; python-hl7's MLLP server in the same run. {messages:,} messages per run "
        f"(whole exams: ADT^A04/A08, ORM^O01 NW/XO/SC/CA, ORU^R01), medians of {rounds} "
        f"round(s); Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| store | patients and orders | load | senders | accord msg/s | python-hl7 msg/s |"
        " ratio | ACK p50 ms | ACK p99 ms | CPU ms/msg | RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.store
        for senders in sorted(r.accord):
            a, p = _rate(r, senders), _rate(r, senders, "peer")
            load = f"{s.load_seconds:.0f} s" if s.size else "-"
            lines.append(
                f"| {s.flavour} | {s.size:,} | {load} | {senders} | {a:,.0f} | {p:,.0f} | "
                f"{a / p:.2f}× | {_median(r.accord[senders], 'p50_ms'):.1f} | "
                f"{_median(r.accord[senders], 'p99_ms'):.1f} | "
                f"{_median(r.accord[senders], 'cpu_ms_per_message'):.2f} | "
                f"{max(x.rss_mb for x in r.accord[senders]):,.0f} |")
    lines += ["", "ACK on store (enhanced mode, MSH-15 AL / MSH-16 NE, 8 senders):", ""]
    for r in results:
        s = r.store
        if r.enhanced is None:
            lines.append(f"- {s.flavour} {s.size:,}: {r.enhanced_note}")
            continue
        p = _rate(r, 8, "peer")
        lines.append(
            f"- {s.flavour} {s.size:,}: ACK {r.enhanced.rate:,.0f} msg/s "
            f"({r.enhanced.rate / p:.1f}× python-hl7), p99 {r.enhanced.p99_ms:.1f} ms; "
            f"applier drained the {r.drain_backlog:,} left by the burst at "
            f"{r.drain_rate or 0:,.0f} msg/s (default engine {_rate(r, 8):,.0f})")
    loads = [r.store for r in results if r.store.size]
    if loads:
        lines += ["", "Loading (bulk path, rows of every table, on this machine): " + "; ".join(
            f"{s.flavour} {s.size:,}: {s.load_seconds:.0f} s ({s.rows / s.load_seconds:,.0f} "
            f"values/s)" for s in loads if s.load_seconds)]
    lines += ["", "Goals:", *goals(results)]
    return "\n".join(lines)


def goals(results: list[Result]) -> list[str]:
    skewed = {r.store.size: r for r in results if r.store.flavour == "skewed"}
    uniform = {r.store.size: r for r in results if r.store.flavour == "uniform"}
    largest = max(skewed) if skewed else 0
    out = []

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    ratios = {n: _rate(r, 8) / _rate(r, 8, "peer") for n, r in sorted(skewed.items())}
    each = ", ".join(f"{n:,}: {x:.2f}×" for n, x in ratios.items())
    out.append(f"- 8 senders ≥ 1.2× python-hl7 at every size: "
               f"{verdict(min(ratios.values()) >= 1.2)} ({each})")
    if 0 in skewed and largest:
        kept = _rate(skewed[largest], 8) / _rate(skewed[0], 8)
        cpu0 = _median(skewed[0].accord[8], "cpu_ms_per_message")
        cpu1 = _median(skewed[largest].accord[8], "cpu_ms_per_message")
        out.append(f"- at most 15% lost from empty to {largest:,}: {verdict(kept >= 0.85)} "
                   f"({kept:.2f} of the empty store's msg/s; CPU per message "
                   f"{cpu0:.2f} → {cpu1:.2f} ms)")
    for n in sorted(set(skewed) & set(uniform)):
        ratio = _rate(skewed[n], 8) / _rate(uniform[n], 8)
        out.append(f"- skewed within 20% of uniform at {n:,}: {verdict(ratio >= 0.8)} "
                   f"({ratio:.2f})")
    if largest:
        p99 = _median(skewed[largest].accord[8], "p99_ms")
        out.append(f"- ACK p99 < 50 ms at {largest:,}: {verdict(p99 < 50)} ({p99:.1f} ms)")
        rss = skewed[largest].peak_rss_mb
        out.append(f"- RSS < 2 GB at {largest:,}: {verdict(rss < 2048)} ({rss:,.0f} MB)")
    enhanced = [r for r in skewed.values() if r.enhanced is not None]
    if not enhanced:
        out.append("- ACK on store ≥ 5× python-hl7, applier drains ≥ the default engine: "
                   "not measured (ACK on store not available)")
    for r in enhanced:
        assert r.enhanced is not None
        x = r.enhanced.rate / _rate(r, 8, "peer")
        drain = r.drain_rate or 0
        out.append(f"- {r.store.size:,}: ACK on store ≥ 5× python-hl7 {verdict(x >= 5)} "
                   f"({x:.1f}×); applier drains ≥ default engine {verdict(drain >= _rate(r, 8))}"
                   f" ({drain:,.0f} vs {_rate(r, 8):,.0f} msg/s)")
    return out


def _stores(args: argparse.Namespace, root: Path) -> Iterator[Store]:
    for size in args.sizes:
        flavours = ["skewed"] + (["uniform"] if size and size in args.uniform else [])
        for flavour in flavours:
            print(f"== {flavour} store of {size:,}", flush=True)
            yield build(root / f"{flavour}-{size}", flavour, size)


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default=[0, 100_000, 1_000_000])
    ap.add_argument("--uniform", type=_sizes, default=None,
                    help="sizes that also get a uniform store (default: every size but 0)")
    ap.add_argument("--messages", type=int, default=4_000, help="messages per run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=None,
                    help="keep the loaded stores here and reuse them on the next run")
    ap.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = ap.parse_args()
    if args.uniform is None:
        args.uniform = [n for n in args.sizes if n]
    root = args.data or Path(tempfile.mkdtemp(prefix="accord-aging-"))
    results = []
    try:
        for store in _stores(args, root):
            results.append(run_store(store, args.messages, args.rounds))
    finally:
        if args.data is None:
            shutil.rmtree(root, ignore_errors=True)
    text = report(results, args.messages, args.rounds)
    print(text)
    if not args.no_write:
        write_section("aging", text)


if __name__ == "__main__":
    main()
