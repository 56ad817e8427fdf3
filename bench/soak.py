"""Soak: ``accord serve`` for ``SOAK_SECONDS`` (default 3600) under a realistic mix, then
checks that it stayed flat and delivered everything exactly once.

What runs against one engine (SQLite store, the workflow on, the demo's procedure
catalog; all on 127.0.0.1):
- a RIS over ``SENDERS`` MLLP connections at ``SOAK_RATE`` msg/s (default 200), each
  patient's messages on one connection in order: per exam a registration (A04, or A08
  for a returning patient) and an order (ORM^O01 NW) from the demo's department
  (:meth:`accord.demo.traffic.Department.visit`, with its deliberate mess: look-alikes,
  unmapped codes, resends, malformed and incomplete messages), ``UPDATES`` demographics
  updates (A08), and once the modality completed the exam its preliminary and final
  reports (ORU^R01 P, F);
- modalities: MPPS N-CREATE (IN PROGRESS) and N-SET (COMPLETED) for every exam, on
  associations kept open as a modality keeps them, and worklist C-FIND at 5/s;
- two destinations: ``pacs`` (ADT, orders, reports; always up) and ``ris`` (ADT and
  procedure status; its listener goes down for ``FLAP_DOWN`` s every ``FLAP_PERIOD`` s);
- a console user who logs in and fetches the pages in turn, one a second.

The store is pre-loaded first, as the product lives (``STORE_SIZE`` patients and as many
orders, default 100,000: the skewed population of ``bench/aging.py``, loaded through the
store's bulk path and kept under ``--stores`` for the next run); the engine runs on a
copy of it. ``--store-size 0`` starts from an empty store.

Sampled every 10 s: the engine's resident memory and open file descriptors (its process
tree, /proc: Linux only); per minute: ACK p99. At the end, the traffic stops, both
destinations drain, and every outbox row of each destination is matched to what its
listener received, by MSH-10: missing, received twice, or received without a row.
Goals: RSS within 10% after warm-up, flat ACK p99, no fd growth, every row delivered once.
The figures go to bench/RESULTS.md (section ``soak``); ``--no-write`` leaves it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aging
from _results import write_section
from engine_harness import END, SB, Engine, ack_code, cpu_seconds, process_tree, rss_mb

from accord.demo.department import demo_catalog
from accord.demo.modality import (
    ScheduledStep,
    Station,
    completed,
    in_progress,
    worklist_query,
)
from accord.demo.traffic import PROCEDURES, Department, SimOrder
from accord.dicom.scp import DUL_IDLE_POLL

SAMPLE_EVERY = 10.0
MAX_BACKLOG = 1000
"""Messages generated and not yet sent: past it the RIS waits (an engine that cannot
keep up shows as a lower rate and as ``throttled`` seconds, not as an hour of backlog)."""
MAX_EXAMS_WAITING = 100
"""Exams ordered and not yet performed (MPPS): past it the RIS waits too, so the worklist
stays the size of a day's, not of an hour's backlog."""
PAGES = ("/", "/messages", "/orders", "/patients", "/worklist", "/deliveries", "/dicom",
         "/errors", "/findings", "/duplicates", "/dashboard/live")
PASSWORD = "soak-console-password-1"
STATIONS = tuple(Station(station, modality) for _, _, modality, station in PROCEDURES)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# ---------------------------------------------------------------------------- receivers

class Listener:
    """A downstream system: an MLLP listener that records each MSH-10 it gets and answers
    AA. ``down()`` closes the listening socket and every connection (between messages:
    a message recorded is always answered, and one read but not yet recorded when the
    connection is shut is dropped, as the closed connection would drop it, so a message
    received twice is the engine's doing), ``up()`` listens again on the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: Counter[str] = Counter()
        self.port = 0
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._conns: dict[socket.socket, threading.Lock] = {}
        self._shut: set[socket.socket] = set()  # shut down by down(), under their lock

    def up(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._server = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            conns = list(self._conns.items())
        for conn, busy in conns:
            # never between recording a message and answering it
            with busy, contextlib.suppress(OSError):
                self._shut.add(conn)
                conn.shutdown(socket.SHUT_RDWR)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            busy = threading.Lock()
            with self._lock:
                self._conns[conn] = busy
            threading.Thread(target=self._serve, args=(conn, busy), daemon=True).start()

    def _serve(self, conn: socket.socket, busy: threading.Lock) -> None:
        buf = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while (end := buf.find(END)) >= 0:
                    frame, buf = buf[:end].lstrip(SB), buf[end + len(END):]
                    with busy:
                        if conn in self._shut:
                            # read before down() and not answered: the engine sends it
                            # again, so it is not recorded as received now
                            return
                        fields = frame.split(b"\r", 1)[0].split(b"|")
                        cid = fields[9].decode() if len(fields) > 9 else ""
                        self.received[cid] += 1
                        conn.sendall(SB + ack(cid) + END)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.pop(conn, None)
                self._shut.discard(conn)
            conn.close()


def ack(control_id: str) -> bytes:
    return (f"MSH|^~\\&|SOAK|SOAK|ACCORD|RADIOLOGY|{datetime.now(UTC):%Y%m%d%H%M%S}||ACK|"
            f"A{control_id}|P|2.5.1\rMSA|AA|{control_id}\r").encode()


# ---------------------------------------------------------------------------- traffic

def quiet(assoc: Any) -> Any:
    """A simulated modality's association whose DUL thread naps as the engine's do when
    idle (5 ms, not pynetdicom's 1 ms): the simulated modalities share this machine's
    two cores with the engine, where real ones bring their own."""
    assoc.dul._run_loop_delay = DUL_IDLE_POLL
    return assoc


@dataclass
class Figures:
    """What the traffic threads count; ``ack_ms[minute]`` the ACK latencies."""

    ack_ms: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: Counter[str] = field(default_factory=Counter)
    dicom: Counter[str] = field(default_factory=Counter)
    pages: Counter[str] = field(default_factory=Counter)
    page_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, engine: Engine, seconds: float, rate: float, senders: int,
                 updates: int, flap_period: float, flap_down: float) -> None:
        self.engine, self.seconds, self.rate = engine, seconds, rate
        self.updates, self.flap_period, self.flap_down = updates, flap_period, flap_down
        self.dept = Department(7, control_prefix=f"SOAK{random.randrange(36**3):03X}-")
        self.lanes: list[queue.Queue[tuple[bytes, SimOrder | None] | None]] = [
            queue.Queue() for _ in range(senders)]
        self.exams: queue.Queue[SimOrder | None] = queue.Queue()
        self.reports: queue.Queue[SimOrder] = queue.Queue()
        self.fig = Figures()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self._updates = 0
        self.throttled = 0.0  # seconds the RIS waited for the engine (MAX_BACKLOG)

    def backlog(self) -> int:
        return sum(q.qsize() for q in self.lanes)

    def minute(self) -> int:
        return int((time.monotonic() - self.t0) // 60)

    def lane(self, mrn: str) -> int:
        return hash(mrn) % len(self.lanes)

    # -- the RIS
    def generate(self) -> None:
        """Paces the messages onto the lanes at ``rate`` msg/s (open loop: a slow engine
        shows as a backlog, not as a lower rate asked)."""
        pending: list[tuple[int, bytes, SimOrder | None]] = []
        due = time.monotonic()
        while not self.stop.is_set():
            if not pending:
                pending = self._next_batch()
            while (self.backlog() > MAX_BACKLOG or self.exams.qsize() > MAX_EXAMS_WAITING
                   ) and not self.stop.is_set():
                time.sleep(0.05)  # the engine is behind: wait rather than pile up
                self.throttled += 0.05
            lane, payload, order = pending.pop(0)
            self.lanes[lane].put((payload, order))
            due = max(due + 1.0 / self.rate, time.monotonic() - 1.0)
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)

    def _next_batch(self) -> list[tuple[int, bytes, SimOrder | None]]:
        now = datetime.now(UTC)
        with contextlib.suppress(queue.Empty):
            order = self.reports.get_nowait()
            lane = self.lane(order.patient.mrn)
            return [(lane, self.dept.report(now, order, final=final).encode(), None)
                    for final in (False, True)]
        visit = self.dept.visit(now)
        if visit.order is None:
            return []
        lane = self.lane(visit.order.patient.mrn)
        out: list[tuple[int, bytes, SimOrder | None]] = []
        for text in visit.messages:
            # Every exam is performed, an unmapped one too: its modality reports it by
            # accession, as a technologist does who keyed it in by hand.
            is_order = "|ORM^O01" in text.split("\r", 1)[0]
            out.append((lane, text.encode(), visit.order if is_order else None))
        registration = visit.messages[0]
        for _ in range(self.updates):
            out.append((lane, self._update(registration).encode(), None))
        return out

    def _update(self, registration: str) -> str:
        """A demographics update (A08) of a registration, with an MSH-10 of its own."""
        self._updates += 1
        msh, rest = registration.split("\r", 1)
        fields = msh.split("|")
        fields[8], fields[9] = "ADT^A08^ADT_A01", f"{fields[9]}U{self._updates}"
        return "|".join(fields) + "\r" + rest.replace("EVN|A04|", "EVN|A08|", 1)

    def send(self, lane: queue.Queue[tuple[bytes, SimOrder | None] | None]) -> None:
        sock: socket.socket | None = None
        buf = b""
        while (item := lane.get()) is not None:
            payload, order = item
            while True:
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", self.engine.mllp_port),
                                                        timeout=60)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        buf = b""
                    t = time.perf_counter()
                    sock.sendall(SB + payload + END)
                    while (end := buf.find(END)) < 0:
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise OSError("closed")
                        buf += chunk
                    answer, buf = buf[:end], buf[end + len(END):]
                    ms = (time.perf_counter() - t) * 1000
                    break
                except OSError as exc:  # no answer: not acknowledged, send again
                    with self.fig.lock:
                        self.fig.errors[f"mllp: {type(exc).__name__}"] += 1
                    if sock is not None:
                        sock.close()
                    sock = None
                    time.sleep(0.5)
            code = ack_code(answer)
            with self.fig.lock:
                self.fig.ack_ms[self.minute()].append(ms)
                self.fig.codes[code] += 1
            if order is not None and code in ("AA", "CA"):
                self.exams.put(order)
        if sock is not None:
            sock.close()

    # -- the modalities
    def modality(self, station: Station) -> None:
        """MPPS IN PROGRESS then COMPLETED for every exam handed to it; the reports follow."""
        assoc = None
        ae = AE(ae_title=station.ae_title)
        ae.add_requested_context(ModalityPerformedProcedureStep)
        n = 0
        while (order := self.exams.get()) is not None:
            n += 1
            step = ScheduledStep(f"{order.patient.family}^{order.patient.given}",
                                 order.patient.mrn, "", order.patient.birth_date,
                                 order.patient.sex, order.accession, order.study_uid, "",
                                 order.procedure[1], "", "")
            uid = f"2.25.{random.getrandbits(120)}"
            here = Station(order.procedure[3], order.procedure[2])
            for _attempt in range(3):
                if assoc is None or not assoc.is_established:
                    assoc = quiet(ae.associate("127.0.0.1", self.engine.dicom_port,
                                               ae_title="ACCORD"))
                try:
                    s1, _ = assoc.send_n_create(
                        in_progress(step, here, datetime.now(UTC), f"PPS{n:08d}"),
                        ModalityPerformedProcedureStep, uid)
                    s2, _ = assoc.send_n_set(
                        completed(step, here, datetime.now(UTC),
                                  f"2.25.{random.getrandbits(120)}",
                                  f"2.25.{random.getrandbits(120)}"),
                        ModalityPerformedProcedureStep, uid)
                    codes = (getattr(s1, "Status", -1), getattr(s2, "Status", -1))
                    break
                except Exception as exc:  # the association dropped: a new one
                    with self.fig.lock:
                        self.fig.errors[f"mpps: {type(exc).__name__}"] += 1
                    assoc = None
                    codes = (-1, -1)
            with self.fig.lock:
                self.fig.dicom["mpps ok" if codes == (0, 0) else f"mpps {codes}"] += 1
            self.reports.put(order)
        if assoc is not None:
            assoc.release()

    def worklist(self, per_second: float = 5.0) -> None:
        ae = AE(ae_title="SOAKMWL")
        ae.add_requested_context(ModalityWorklistInformationFind)
        assoc = None
        due = time.monotonic()
        while not self.stop.is_set():
            station = random.choice(STATIONS)
            try:
                if assoc is None or not assoc.is_established:
                    assoc = quiet(ae.associate("127.0.0.1", self.engine.dicom_port,
                                               ae_title="ACCORD"))
                query: Dataset = worklist_query(station, f"{datetime.now(UTC):%Y%m%d}")
                found = sum(1 for status, ds in assoc.send_c_find(
                    query, ModalityWorklistInformationFind)
                    if ds is not None and getattr(status, "Status", 0) in (0xFF00, 0xFF01))
                with self.fig.lock:
                    self.fig.dicom["c-find"] += 1
                    self.fig.dicom["c-find answers"] += found
            except Exception as exc:
                with self.fig.lock:
                    self.fig.errors[f"c-find: {type(exc).__name__}"] += 1
                assoc = None
            due += 1.0 / per_second
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
        if assoc is not None:
            assoc.release()

    # -- the console user
    def console(self, user: str) -> None:
        with httpx.Client(base_url=self.engine.url, timeout=60) as client:
            form = client.get("/login")
            token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            client.headers["Cookie"] = f"accord_login_csrf={form.cookies['accord_login_csrf']}"
            done = client.post("/login", data={"username": user, "password": PASSWORD,
                                               "csrf_token": token})
            # The session cookie is Secure: this client speaks plain HTTP on 127.0.0.1,
            # so it sends it by hand.
            client.headers["Cookie"] = f"accord_session={done.cookies['accord_session']}"
            turn = 0
            while not self.stop.wait(1.0):
                page = PAGES[turn % len(PAGES)]
                turn += 1
                t = time.perf_counter()
                try:
                    code = client.get(page).status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__  # type: ignore[assignment]
                with self.fig.lock:
                    self.fig.pages[str(code)] += 1
                    self.fig.page_ms.append((time.perf_counter() - t) * 1000)

    # -- the flapping destination
    def flap(self, listener: Listener) -> None:
        while not self.stop.wait(self.flap_period - self.flap_down):
            listener.down()
            with self.fig.lock:
                self.fig.dicom["flaps"] += 1
            self.stop.wait(self.flap_down)
            listener.up()


# ---------------------------------------------------------------------------- the run

def config(pacs: int, ris: int) -> str:
    return json.dumps({  # YAML is a superset of JSON
        "workflow": {"catalog": demo_catalog()},
        "destinations": [
            {"name": "pacs", "host": "127.0.0.1", "port": pacs,
             "send": ["adt", "orders", "reports"], "connect_timeout": 2, "ack_timeout": 10,
             "backoff": {"base": 0.2, "cap": 5}},
            {"name": "ris", "host": "127.0.0.1", "port": ris, "send": ["adt", "status"],
             "connect_timeout": 2, "ack_timeout": 10, "backoff": {"base": 0.2, "cap": 5}}],
    })


def fds(pid: int) -> int:
    total = 0
    for one in process_tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{one}/fd"))
    return total


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[98]


def add_user(engine: Engine, name: str) -> None:
    subprocess.run([sys.executable, "-m", "accord", "user", "add", name, "--role", "admin",
                    "--data", str(engine.data)], input=PASSWORD + "\n", text=True,
                   check=True, capture_output=True)


def drained(engine: Engine) -> bool:
    waiting = engine.get("/api/deliveries", limit=1, status="pending,in_flight")
    return not waiting["items"]


def preloaded(stores: Path, size: int, data: Path) -> float:
    """A copy at ``data`` of the skewed store of ``size`` patients and orders kept under
    ``stores`` (loaded first when missing); the seconds its load took."""
    store = aging.build(stores / f"skewed-{size}", "skewed", size)
    shutil.copytree(store.path, data, ignore=shutil.ignore_patterns(aging.MARKER))
    return store.load_seconds


def run(seconds: float, rate: float, senders: int, updates: int, flap_period: float,
        flap_down: float, log: Any, data: Path | None = None) -> dict[str, Any]:
    pacs, ris = Listener("pacs"), Listener("ris")
    pacs.up()
    ris.up()
    samples: list[dict[str, float]] = []
    with Engine(data=data, config=config(pacs.port, ris.port)) as engine:
        add_user(engine, "soak")
        soak = Soak(engine, seconds, rate, senders, updates, flap_period, flap_down)
        threads = [threading.Thread(target=soak.send, args=(lane,), daemon=True)
                   for lane in soak.lanes]
        threads += [threading.Thread(target=soak.modality, args=(s,), daemon=True)
                    for s in STATIONS]
        background = [threading.Thread(target=f, args=a, daemon=True) for f, a in (
            (soak.generate, ()), (soak.worklist, ()), (soak.console, ("soak",)),
            (soak.flap, (ris,)))]
        for t in threads + background:
            t.start()
        end = soak.t0 + seconds
        while (now := time.monotonic()) < end:
            time.sleep(min(SAMPLE_EVERY, end - now))
            sample = {"t": round(time.monotonic() - soak.t0, 1),
                      "rss_mb": round(rss_mb(engine.pid), 1), "fds": fds(engine.pid),
                      "backlog": soak.backlog(), "mpps_backlog": soak.exams.qsize(),
                      "engine_cpu_s": round(cpu_seconds(engine.pid), 1),
                      "soak_cpu_s": round(sum(os.times()[:2]), 1)}
            samples.append(sample)
            if len(samples) % 6 == 0:
                with soak.fig.lock:
                    last = soak.fig.ack_ms.get(soak.minute() - 1, [])
                    sent = sum(soak.fig.codes.values())
                print(f"{sample['t']:7.0f}s rss {sample['rss_mb']} MB fds {sample['fds']} "
                      f"backlog {sample['backlog']}/{sample['mpps_backlog']} answered {sent} "
                      f"cpu engine {sample['engine_cpu_s']} s soak {sample['soak_cpu_s']} s "
                      f"p99(last min) {p99(last):.1f} ms", file=log, flush=True)
        soak.stop.set()
        for t in background:
            t.join(60)
        for lane in soak.lanes:  # what was generated is still sent
            lane.put(None)
        for t in threads[:senders]:
            t.join(600)
        for _ in STATIONS:
            soak.exams.put(None)
        for t in threads[senders:]:
            t.join(600)
        # Reports of the last exams (completed after the RIS stopped) are not sent.
        ris_down = not ris._server
        if ris_down:
            ris.up()
        deadline = time.monotonic() + 900
        while not drained(engine) and time.monotonic() < deadline:
            time.sleep(2)
        rows: dict[str, Counter[str]] = {"pacs": Counter(), "ris": Counter()}
        statuses: Counter[str] = Counter()
        for row in engine.pages("/api/deliveries"):
            statuses[f"{row['destination']} {row['status']}"] += 1
            if row["destination"] in rows:
                rows[row["destination"]][row["control_id"]] += 1
        stats = engine.get("/api/stats")
    delivery = {}
    for listener in (pacs, ris):
        want, got = rows[listener.name], listener.received
        delivery[listener.name] = {
            "rows": sum(want.values()), "received": sum(got.values()),
            "missing": sum(1 for c in want if c not in got),
            "twice": sum(1 for c, n in got.items() if n > 1),
            "unexpected": sum(1 for c in got if c not in want)}
    return {"seconds": seconds, "rate": rate, "senders": senders, "samples": samples,
            "ack_p99": {m: round(p99(v), 2) for m, v in sorted(soak.fig.ack_ms.items())},
            "ack_p50_all": round(statistics.median(
                [x for v in soak.fig.ack_ms.values() for x in v] or [0.0]), 2),
            "answered": sum(soak.fig.codes.values()), "codes": dict(soak.fig.codes),
            "dicom": dict(soak.fig.dicom), "pages": dict(soak.fig.pages),
            "page_p99_ms": round(p99(soak.fig.page_ms), 1),
            "errors": dict(soak.fig.errors), "delivery": delivery,
            "outbox": dict(statuses), "engine_messages": stats.get("messages"),
            "load": os.getloadavg(), "throttled_s": round(soak.throttled, 1)}


def verdicts(r: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    samples = r["samples"]
    warm = min(300.0, r["seconds"] / 5)
    after = [s for s in samples if s["t"] >= warm] or samples
    rss = [s["rss_mb"] for s in after]
    rss_spread = (max(rss) - min(rss)) / min(rss) * 100
    rss_growth = (rss[-1] - rss[0]) / rss[0] * 100
    fd = [s["fds"] for s in after]
    minutes = [v for m, v in r["ack_p99"].items() if m * 60 >= warm and m * 60 + 60 <= r["seconds"]]
    minutes = minutes or list(r["ack_p99"].values())
    half = max(1, len(minutes) // 2)
    first, second = statistics.median(minutes[:half]), statistics.median(minutes[half:] or minutes)
    once = all(d["missing"] == 0 and d["twice"] == 0 and d["unexpected"] == 0
               for d in r["delivery"].values())
    return {
        "rss": (rss_spread <= 10, f"{min(rss):.0f}–{max(rss):.0f} MB after warm-up "
                f"(spread {rss_spread:.1f}%, first to last {rss_growth:+.1f}%)"),
        "p99": (second <= first * 1.5 + 2, f"median of per-minute p99 {first:.1f} ms in the "
                f"first half, {second:.1f} ms in the second; worst minute {max(minutes):.1f} ms"),
        "fds": (fd[-1] <= fd[0] + 5, f"{fd[0]} after warm-up, {fd[-1]} at the end, "
                f"most {max(fd)}"),
        "once": (once, "; ".join(f"{n}: {d['rows']} rows, {d['received']} received, "
                                 f"{d['missing']} missing, {d['twice']} twice, "
                                 f"{d['unexpected']} without a row"
                                 for n, d in r["delivery"].items())),
    }


def report(r: dict[str, Any], note: str) -> str:
    v = verdicts(r)
    rows = "\n".join(f"| {goal} | {'met' if ok else '**not met**'} | {text} |"
                     for goal, (ok, text) in (
                         ("flat RSS, within 10% after warm-up", v["rss"]),
                         ("flat ACK p99", v["p99"]),
                         ("no file-descriptor growth", v["fds"]),
                         ("every message delivered once", v["once"])))
    p99s = ", ".join(f"{x:.0f}" for x in r["ack_p99"].values())
    every = max(1, round(300 / SAMPLE_EVERY))  # a sample every 5 minutes
    curve = ", ".join(f"{s['t'] / 60:.0f} min {s['rss_mb']:.0f}"
                      for s in r["samples"][every - 1::every])
    last = r["samples"][-1]
    cpu = (f"; engine CPU {last['engine_cpu_s'] / max(r['answered'], 1) * 1000:.0f} ms per "
           f"message answered (all its work: MLLP, MPPS, C-FIND, console, delivery), "
           f"the soak's own {last['soak_cpu_s']:.0f} s" if "engine_cpu_s" in last else "")
    size = r.get("store_size", 0)
    store = (f"on a store pre-loaded with {size:,} patients and orders (the skewed population "
             f"of `bench/aging.py`, loaded in {r.get('load_seconds', 0):.0f} s)"
             if size else "on an empty store")
    return f"""## Soak (`bench/soak.py`, `make soak`)

`accord serve` (SQLite) {store}, for {r['seconds'] / 60:.0f} min: {r['rate']:.0f} msg/s asked over
{r['senders']} MLLP connections (registrations, orders, A08 updates, reports; the demo
department's mess included), MPPS IN PROGRESS + COMPLETED for every exam, worklist C-FIND
at 5/s, destinations `pacs` (up) and `ris` (down {r.get('flap_down', 0):.0f} s every
{r.get('flap_period', 0):.0f} s), a console user fetching a page a second.
{note}

| goal | verdict | figures |
|---|---|---|
{rows}

- Answered: {r['answered']:,} messages ({r['answered'] / r['seconds']:.0f} msg/s), codes
  {r['codes']}; ACK p50 {r['ack_p50_all']} ms; sender errors {r['errors'] or 'none'}.
- DICOM: {r['dicom']}.
- Console: {sum(r['pages'].values())} pages, status {r['pages']}, p99 {r['page_p99_ms']} ms.
- ACK p99 per minute (ms): {p99s}.
- RSS (MB) every 5 minutes: {curve}{cpu}; the RIS waited {r.get('throttled_s', 0):.0f} s
  for the engine or the modalities.
- Outbox at the end: {r['outbox']}.
- Load average at the end: {', '.join(f'{x:.1f}' for x in r['load'])}.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=env_float("SOAK_SECONDS", 3600))
    ap.add_argument("--rate", type=float, default=env_float("SOAK_RATE", 200))
    ap.add_argument("--senders", type=int, default=int(env_float("SOAK_SENDERS", 8)))
    ap.add_argument("--updates", type=int, default=3, help="A08 updates per exam")
    ap.add_argument("--store-size", type=int, default=int(env_float("STORE_SIZE", 100_000)),
                    help="patients and orders pre-loaded (0: an empty store)")
    ap.add_argument("--stores", type=Path, default=None,
                    help="keep the pre-loaded store here and reuse it on the next run")
    ap.add_argument("--flap-period", type=float, default=300.0)
    ap.add_argument("--flap-down", type=float, default=60.0)
    ap.add_argument("--note", default="", help="a sentence for RESULTS.md (the machine)")
    ap.add_argument("--json", type=Path, help="write the raw figures here too")
    ap.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    ap.add_argument("--report-from", type=Path, metavar="JSON",
                    help="no run: write the report of a run's --json figures")
    args = ap.parse_args()
    if args.report_from:
        r = json.loads(args.report_from.read_text(encoding="utf-8"))
        r["ack_p99"] = {int(m): v for m, v in r["ack_p99"].items()}
        text = report(r, args.note)
        print(text)
        if not args.no_write:
            write_section("soak", text)
        return
    period = min(args.flap_period, max(20.0, args.seconds / 3))
    down = min(args.flap_down, period / 3)
    root = Path(tempfile.mkdtemp(prefix="accord-soak-"))
    try:
        data, load = None, 0.0
        if args.store_size:
            data = root / "data"
            load = preloaded(args.stores or root / "stores", args.store_size, data)
        r = run(args.seconds, args.rate, args.senders, args.updates, period, down,
                sys.stdout, data)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    r["flap_period"], r["flap_down"] = period, down
    r["store_size"], r["load_seconds"] = args.store_size, load
    if args.json:
        args.json.write_text(json.dumps(r, indent=1, default=str), encoding="utf-8")
    text = report(r, args.note)
    print(text)
    if not args.no_write:
        write_section("soak", text)
    if not all(ok for ok, _ in verdicts(r).values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
