"""Scale-out: durable ingest with 1, 2 and 3 `accord serve` nodes on one PostgreSQL, and
one node on SQLite, side by side in one run (docs/scale-out.md).

Every configuration gets the same load from this process: ``SENDERS`` MLLP connections
(spread round-robin over the nodes), ``COUNT`` 1 KB ORM^O01 messages in all, one message
in flight per connection, each with its own MSH-10. Nodes run the gateway (workflow off,
no destination): what is measured is receive → parse → store (raw, keys, dedupe claim) →
commit → ACK. Each configuration starts on a fresh database (PostgreSQL) or data
directory (SQLite); rounds alternate the configurations; the table shows medians.

CPU is measured, not guessed: user+system time of each node process and of the
PostgreSQL backends serving its database (``/proc/<pid>/stat``) over the timed load,
divided by the messages ACKed. That gives what a bigger machine would show: one node is
one Python process (about one core at most), so with a core per node and enough cores
for PostgreSQL, N nodes would take about N / (node CPU per message) messages per second,
until PostgreSQL's CPU per message (or its commit rate) is the limit.

Run: .venv/bin/python bench/scale.py   (rewrites the `scale` section of RESULTS.md)
Needs PostgreSQL at 127.0.0.1:5432 (user postgres; ACCORD_TEST_PG overrides the URL).
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from accord.demo.traffic import orm_of_size

ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
COUNT = int(os.environ.get("BENCH_SCALE_COUNT", "4000"))
SENDERS = 8
CONFIGS = (("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 3))
SB, END = b"\x0b", b"\x1c\x0d"
TICK = os.sysconf("SC_CLK_TCK")
TEMPLATE = orm_of_size(1024, control_id="@@CID@@").encode()
LOADAVG = os.getloadavg()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def admin(statement: sql.Composed) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


def backend_pids(db: str) -> list[int]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,))
        return [int(r[0]) for r in rows]


class Node:
    """One ``accord serve`` process (gateway mode) on the given store."""

    def __init__(self, tmp: Path, name: str, store_url: str | None) -> None:
        self.port = free_port()
        config = tmp / f"{name}.yaml"
        store = f"store: {{url: '{store_url}'}}\n" if store_url else ""
        config.write_text(f"node_id: {name}\n{store}http: {{port: {free_port()}}}\n"
                          "dicom: {enabled: false}\nworkflow: {enabled: false}\n")
        args = [sys.executable, "-m", "accord", "serve", "--config", str(config),
                "--data", str(tmp / name), "--mllp-port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"node on {self.port} did not start: {err[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def sender(port: int, tag: str, n: int, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(n):
            payload = TEMPLATE.replace(b"@@CID@@", f"{tag}{i:07d}".encode())
            t0 = time.perf_counter()
            writer.write(SB + payload + END)
            ack = await reader.readuntil(END)
            lat.append(time.perf_counter() - t0)
            if b"MSA|AA|" not in ack:
                raise RuntimeError(f"not accepted: {ack[:200]!r}")
    finally:
        writer.close()


@dataclass(frozen=True, slots=True)
class Result:
    rate: float
    p50_ms: float
    p99_ms: float
    node_cpu_ms: float  # per message, all nodes together
    db_cpu_ms: float  # per message, PostgreSQL backends (0 for SQLite)
    sender_cpu_ms: float  # per message, this process (senders)

    @property
    def cpu_ms(self) -> float:
        return self.node_cpu_ms + self.db_cpu_ms + self.sender_cpu_ms


async def load(ports: list[int], tag: str, count: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(sender(ports[i % len(ports)], f"{tag}C{i}", count // SENDERS, lat)
                           for i in range(SENDERS)))
    return time.perf_counter() - t0, lat


async def one_config(tmp: Path, kind: str, nodes: int, rep: int) -> Result:
    db = f"accord_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = None
    if kind == "PostgreSQL":
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        url = ADMIN_URL.rsplit("/", 1)[0] + "/" + db
    procs: list[Node] = []
    try:
        for i in range(nodes):  # one after the other: the first migrates
            procs.append(Node(tmp, f"{kind[:2]}{nodes}r{rep}n{i}", url))
            procs[-1].wait()
        ports = [p.port for p in procs]
        await load(ports, f"W{rep}{kind[0]}{nodes}", SENDERS * 50)  # warm-up
        pids = [p.proc.pid for p in procs]
        backends = backend_pids(db) if url else []
        before = {pid: cpu_seconds(pid) for pid in pids + backends}
        mine = time.process_time()
        elapsed, lat = await load(ports, f"R{rep}{kind[0]}{nodes}", COUNT)
        mine = time.process_time() - mine
        backends = backend_pids(db) if url else []
        node_cpu = sum(cpu_seconds(pid) - before[pid] for pid in pids)
        db_cpu = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in backends)
    finally:
        for p in procs:
            p.stop()
        if url:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    n = len(lat)
    q = statistics.quantiles(lat, n=100)
    return Result(n / elapsed, q[49] * 1000, q[98] * 1000, node_cpu / n * 1000,
                  db_cpu / n * 1000, mine / n * 1000)


def median_result(runs: list[Result]) -> Result:
    fields = ("rate", "p50_ms", "p99_ms", "node_cpu_ms", "db_cpu_ms", "sender_cpu_ms")
    return Result(*(statistics.median(getattr(r, f) for r in runs) for f in fields))


def report(med: dict[tuple[str, int], Result]) -> str:
    base = med[("PostgreSQL", 1)]
    lines = [
        f"Durable ingest (gateway: parse, store, dedupe claim, commit, ACK) of a 1 KB "
        f"ORM^O01, {SENDERS} sender connections spread over the nodes, {COUNT:,} messages "
        f"per run; Python {platform.python_version()}, {os.cpu_count()} shared cores for "
        f"the nodes, PostgreSQL and the senders together; medians of {REPEATS} rounds "
        f"({time.strftime('%Y-%m-%d')}). CPU columns: milliseconds of CPU per message, "
        "measured from /proc over the timed load (PostgreSQL: the backends serving the "
        "nodes; its WAL writer and checkpointer are not counted).",
        "",
        "| store | nodes | msg/s | vs 1 PG node | ACK p50 ms | ACK p99 ms | node CPU ms/msg "
        "| PostgreSQL CPU ms/msg | sender CPU ms/msg | msg per CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (kind, nodes), r in med.items():
        lines.append(f"| {kind} | {nodes} | {r.rate:,.0f} | {r.rate / base.rate:.2f}× | "
                     f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.node_cpu_ms:.2f} | "
                     f"{r.db_cpu_ms:.2f} | {r.sender_cpu_ms:.2f} | {1000 / r.cpu_ms:,.0f} |")
    lines += [
        "",
        "Ceilings from the measured CPU (projections, not measurements): on 2 idle cores, "
        "2000 / (all CPU ms per message), and no node above one core; with a core per "
        "node, N × 1000 / (node CPU ms per message), and the PostgreSQL cores that rate "
        "would need.",
        "",
        "| store | nodes | CPU ms/msg, all processes | ceiling on 2 idle cores, msg/s "
        "| a core per node, msg/s | PostgreSQL cores needed then |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (kind, nodes), r in med.items():
        per_node = nodes * 1000 / r.node_cpu_ms
        two_cores = min(2000 / r.cpu_ms, min(nodes, 2) * 1000 / r.node_cpu_ms)
        lines.append(f"| {kind} | {nodes} | {r.cpu_ms:.2f} | {two_cores:,.0f} | "
                     f"{per_node:,.0f} | {per_node * r.db_cpu_ms / 1000:.1f} |")
    one, three = med[("PostgreSQL", 1)], med[("PostgreSQL", 3)]
    used = ", ".join(f"{n} node(s) {r.rate * r.cpu_ms / 1000:.2f}"
                     for (k, n), r in med.items() if k == "PostgreSQL")
    lines += [
        "",
        f"What two cores allow. The machine was shared with other work during the run "
        f"(load average {LOADAVG[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
        f"end), and our processes got only part of it (PostgreSQL configurations used "
        f"{used} cores of CPU): the msg/s column is what was left, the CPU columns are "
        "the robust figures. Even on two idle cores more nodes cannot help: nodes, "
        "PostgreSQL and senders share the same two cores, and each message costs more "
        "CPU with more nodes, because the same 8 connections split into smaller "
        "group-commit batches per node (with 3 nodes at most 3 messages per commit), so "
        "the 2-core ceiling falls from 1 to 3 nodes.",
        "",
        f"What a bigger machine should show. A node is one Python process (asyncio loop "
        f"plus one commit thread under one GIL: about one core). One node spent "
        f"{one.node_cpu_ms:.2f} ms per message with 8 connections (batches up to 8), so a "
        f"node on its own core tops out near {1000 / one.node_cpu_ms:,.0f} msg/s; N nodes "
        f"each fed by as many connections as here should give about "
        f"N × {1000 / one.node_cpu_ms:,.0f} msg/s, with PostgreSQL needing "
        f"{one.db_cpu_ms:.2f} ms of CPU per message (~{one.db_cpu_ms * 1000 / 1000:.2f} "
        f"core per 1,000 msg/s). Fed by only 8 connections in all, 3 nodes cost "
        f"{three.node_cpu_ms:.2f} ms per message and reach about "
        f"{3000 / three.node_cpu_ms:,.0f} msg/s on 3 cores: scale-out pays when each "
        "node has enough concurrent senders to batch its commits. Real disks and a "
        "network between nodes and database add commit latency per batch, which more "
        "sender connections hide.",
    ]
    return "\n".join(lines)


async def retried(tmp: Path, kind: str, nodes: int, rep: int) -> Result:
    """One configuration; a node that fails to start (the source tree being edited by
    someone else at that moment) is retried a few times before giving up."""
    for attempt in range(5):
        try:
            return await one_config(tmp, kind, nodes, rep)
        except RuntimeError as exc:
            if attempt == 4:
                raise
            print(f"  {kind} {nodes} node(s): {str(exc)[:200]}; retrying", flush=True)
            await asyncio.sleep(15)
    raise AssertionError("unreachable")


async def main() -> None:
    runs: dict[tuple[str, int], list[Result]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="accord-scale-") as d:
        for rep in range(REPEATS):
            order = CONFIGS if rep % 2 == 0 else tuple(reversed(CONFIGS))
            for kind, nodes in order:
                r = await retried(Path(d), kind, nodes, rep)
                runs[(kind, nodes)].append(r)
                print(f"  round {rep + 1}: {kind:10} {nodes} node(s): {r.rate:7.0f} msg/s "
                      f"p50 {r.p50_ms:6.1f} ms p99 {r.p99_ms:6.1f} ms  CPU/msg node "
                      f"{r.node_cpu_ms:.2f} ms db {r.db_cpu_ms:.2f} ms", flush=True)
    text = report({c: median_result(runs[c]) for c in CONFIGS})
    print(text)
    write_section("scale", text)


if __name__ == "__main__":
    asyncio.run(main())
