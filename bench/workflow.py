"""Durable ingest with the workflow vs the gateway alone, side by side.

Two `accord serve` subprocesses on SQLite (WAL, synchronous=FULL), same load from this
process, alternating: the gateway alone (`workflow: {enabled: false}`: messages stored and
routed by category) and the full engine (workflow processor: patients, orders, findings,
trace and outbox rows in the ingest transaction; DICOM bridge on). Two message mixes:
`resend` — the same 1 KB ORM^O01 NW again and again with a new MSH-10 (bench/ingest.py's
load: an update of a known order), and `department` — simulated exams (ADT^A04, ORM^O01
NW/SC, SC/IP, SC/CM, ORU^R01: a new patient and order each). 1 and 8 connections, one
message in flight per connection. Medians of `REPEATS` runs.

Run: .venv/bin/python bench/workflow.py   (rewrites the `workflow` section of RESULTS.md)
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
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from accord.demo.traffic import Department, orm_of_size

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
SB, END = b"\x0b", b"\x1c\x0d"
MODES = {"gateway": "workflow: {enabled: false}\n", "workflow": "dicom: {port: 0}\n"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path, mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = data.with_suffix(".yaml")
    config.write_text(MODES[mode], encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "serve", "--data", str(data), "--mllp-port",
         str(port), "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"accord serve ({mode}) did not start")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def templates(mix: str, sender: int, senders: int) -> list[bytes]:
    """Messages with MSH-10 replaced by ``@@CID@@`` (each sender fills in its own). In the
    department mix each sender gets its own exams (every ``senders``-th one)."""
    if mix == "resend":
        return [orm_of_size(1024, control_id="@@CID@@").encode()]
    dept, out = Department(seed=11), []
    for n in range(2400):
        exam = dept.exam(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        if n % senders != sender:
            continue
        for text in exam.messages:
            fields = text.split("|", 10)
            fields[9] = "@@CID@@"
            out.append("|".join(fields).encode())
    return out


async def one_sender(port: int, tag: str, msgs: list[bytes], until: float,
                     lat: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    loop, n = asyncio.get_running_loop(), 0
    try:
        while loop.time() < until:
            payload = msgs[n % len(msgs)].replace(b"@@CID@@", f"{tag}{n:08d}".encode())
            t0 = time.perf_counter()
            writer.write(SB + payload + END)
            ack = await reader.readuntil(END)
            lat.append(time.perf_counter() - t0)
            if b"|AA|" not in ack and b"|CA|" not in ack and b"|AE|" not in ack:
                raise RuntimeError(f"not accepted: {ack[:200]!r}")
            n += 1
    finally:
        writer.close()
    return n


async def load(port: int, senders: int, tag: str, mix: str,
               seconds: float) -> tuple[float, float, float]:
    msgs = [templates(mix, i, senders) for i in range(senders)]
    lat: list[float] = []
    until = asyncio.get_running_loop().time() + seconds
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(one_sender(port, f"{tag}{i}x", msgs[i], until, lat)
                                    for i in range(senders)))
    q = statistics.quantiles(lat, n=100)
    return sum(counts) / (time.perf_counter() - t0), q[49] * 1000, q[98] * 1000


async def main() -> None:
    results: dict[tuple[str, str, int], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(REPEATS):
            for mix in ("resend", "department"):
                for senders in (1, 8):
                    for mode in MODES:
                        proc, port = start(Path(tmp) / f"{mode}{rep}{mix}{senders}", mode)
                        try:
                            await load(port, senders, f"W{rep}", mix, 0.5)  # warm-up
                            r = await load(port, senders, f"R{rep}", mix, SECONDS)
                        finally:
                            stop(proc)
                        results.setdefault((mix, mode, senders), []).append(r)
                        print(f"  {mix:10} {mode:8} {senders} sender(s): {r[0]:7.0f} msg/s "
                              f"p50 {r[1]:.2f} ms p99 {r[2]:.2f} ms", flush=True)
    report(results)


def report(results: dict[tuple[str, str, int], list[tuple[float, float, float]]]) -> None:
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3))
           for k, v in results.items()}
    lines = [
        "## Ingest with the workflow (`bench/workflow.py`)",
        "",
        f"`accord serve` on SQLite (WAL, synchronous=FULL), gateway alone vs full workflow, "
        f"same load, alternating; Python {platform.python_version()}, 2 shared cores, "
        f"{datetime.now(UTC):%Y-%m-%d}; medians of {REPEATS} run(s) of {SECONDS:g} s.",
        "",
        "| mix | senders | gateway msg/s | workflow msg/s | workflow / gateway |"
        " gateway p99 ms | workflow p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mix in ("resend", "department"):
        for senders in (1, 8):
            g, w = med[(mix, "gateway", senders)], med[(mix, "workflow", senders)]
            lines.append(f"| {mix} | {senders} | {g[0]:.0f} | {w[0]:.0f} | "
                         f"{w[0] / g[0]:.2f}× | {g[2]:.1f} | {w[2]:.1f} |")
    lines += ["", "Goal: ≥1,500 msg/s durable on one connection for ORM^O01."]
    write_section("workflow", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
