"""The floor under the aging goals: what a message may cost at the rates bench/aging.py
asks for, against what its parts cost at the least, measured in one run.

bench/aging.py asks the default engine (original mode: apply, then answer) for 1.2x
python-hl7's rate with 8 senders, and ACK on store for 5x. A rate is a CPU budget: at
``k`` times python-hl7's rate ``R``, a message may cost ``1 / (k R)`` seconds of CPU on
one interpreter (one core: CPython runs Python code on one core at a time), or
``(cores - senders) / (k R)`` on every core of the machine, the senders' own CPU taken
out. This benchmark measures, on aging's messages (each exam's life, 8 senders, an
empty store), in one run, alternating, medians of ``--rounds``:

- python-hl7's MLLP server (stores nothing, answers at once): ``R``, its CPU per
  message, and this process's CPU per message while it sends (the senders' share);
- the *floor* reference server of bench/ingest.py (an asyncio Protocol, MSH-10 cut out
  of the bytes, one row inserted into a table with no index, group commit, a fixed
  answer): the least that receiving, storing durably and answering costs in CPython here;
- Accord's own steps that need no I/O, in this process, CPU time, best of the rounds:
  parse, the ACK, the stored record's keys, mapping, and applying to the in-memory
  repository (``MemoryRepository``) without identity matching (matching only adds);
- the default ``accord serve`` on an empty store with 8 senders: its CPU per message.

The least a message can cost in the default mode is the floor plus those steps; in ACK on
store, the floor plus parse and ACK. Each is set against its budgets.

Why an empty store only: the aging goals hold at every size, and the empty store is where
a message costs least (bench/aging.py measures how that grows with 100,000 and 1,000,000
stored, skewed as a department's are). A least that does not fit its budget there fits
nowhere; one that fits says only that the goal is not ruled out.

Run: .venv/bin/python bench/floor.py   (rewrites the ``floor`` section of RESULTS.md)
     .venv/bin/python bench/floor.py --no-write --rounds 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aging
import population
from _results import write_section
from engine_harness import Engine, SendReport, send
from ingest import Server, peer_server, reference_server

from accord.engine.processor import encode_like
from accord.engine.records import record_of
from accord.engine.workflow import detail
from accord.hl7 import Message, parse
from accord.hl7.ack import ack_text
from accord.mapping.apply import apply_mapped
from accord.mapping.checks import Checks
from accord.mapping.dialect import Dialect
from accord.mapping.inbound import Mapped, map_message
from accord.workflow.memory import MemoryRepository, RandomIds

SENDERS = 8
DEFAULT_RATIO = 1.2  # bench/aging.py: the default engine against python-hl7
ON_STORE_RATIO = 5.0  # bench/aging.py: ACK on store against python-hl7
STEPS = ("parse", "ACK", "record keys", "mapping", "apply (in memory, no matching)")
ON_STORE_STEPS = ("parse", "ACK")


# --------------------------------------------------------------------------- budgets


@dataclass(frozen=True)
class Budget:
    """CPU ms a message may cost at ``ratio`` times the peer's rate."""

    ratio: float
    one_interpreter: float
    all_cores: float


def budget(peer_rate: float, ratio: float, cores: int, senders_ms: float) -> Budget:
    """At ``ratio`` x ``peer_rate`` msg/s: 1000 / rate ms on one interpreter; on every
    core, what the senders (``senders_ms`` of CPU a message) leave of ``cores``."""
    rate = ratio * peer_rate
    return Budget(ratio, 1000.0 / rate, max(0.0, cores * 1000.0 - rate * senders_ms) / rate)


def verdict(least: float, cap: float) -> str:
    return "fits" if least <= cap else f"does not fit ({least / cap:.2f}x the budget)"


# --------------------------------------------------------------------------- the steps


def _cpu(step: Callable[[], object]) -> float:
    t0 = time.process_time()
    step()
    return time.process_time() - t0


@dataclass(frozen=True)
class Steps:
    """CPU seconds of each step over the messages, in the order a message meets them,
    and the ACK code the in-memory apply gave each message (all AA: nothing was refused
    early, so no step was cut short)."""

    seconds: dict[str, float]
    answers: Counter[str]


def pure_steps(messages: Sequence[bytes]) -> Steps:
    """Each step of :data:`STEPS` over ``messages``, timed alone (see :class:`Steps`)."""
    now, dialect, checks = aging.NOW, Dialect(), Checks()
    parsed: list[Message] = []
    mapped: list[Mapped] = []
    answers: Counter[str] = Counter()

    def parse_all() -> None:
        parsed.extend(parse(m) for m in messages)

    def ack_all() -> None:
        for i, msg in enumerate(parsed):
            encode_like(ack_text(msg, "AA", now=now, control_id=f"F{i}"), msg)

    def record_all() -> None:
        for raw, msg in zip(messages, parsed, strict=True):
            record_of(msg, raw, now, "127.0.0.1:1", "mllp")

    def map_all() -> None:
        mapped.extend(map_message(msg, dialect, now=now, checks=checks) for msg in parsed)

    def apply_all() -> None:
        repo, ids = MemoryRepository(), RandomIds()
        for m in mapped:
            outcome = apply_mapped(repo, m, dialect, now=now, ids=ids)
            detail(outcome, ())
            answers[outcome.ack_code] += 1

    seconds = dict(zip(STEPS, (_cpu(parse_all), _cpu(ack_all), _cpu(record_all),
                               _cpu(map_all), _cpu(apply_all)), strict=True))
    return Steps(seconds, answers)


# --------------------------------------------------------------------------- the runs


@dataclass
class Round:
    peer: SendReport
    senders_ms: float  # this process's CPU a message while python-hl7 was sent to
    floor: SendReport
    accord: SendReport
    steps_ms: dict[str, float]


def _timed_send(server: Server, messages: Sequence[bytes]) -> tuple[SendReport, float]:
    t0 = time.process_time()
    report = send(server.port, server.proc.pid, messages, SENDERS)
    return report, (time.process_time() - t0) / len(messages) * 1000


def run(rounds: int, count: int) -> list[Round]:
    pop = population.FLAVOURS["skewed"](aging.RUN_PATIENTS, aging.SEED)
    traffic = aging.Traffic(aging.Store("skewed", 0, Path("."), pop))
    out: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="accord-floor-") as tmp, Engine() as engine:
        peer, floor = peer_server(), reference_server("floor", Path(tmp))
        try:
            warm = traffic.messages(400, SENDERS)
            engine.send(warm, SENDERS)
            send(peer.port, peer.proc.pid, warm, SENDERS)
            send(floor.port, floor.proc.pid, warm, SENDERS)
            for n in range(rounds):
                batch = traffic.messages(count, SENDERS)
                p, senders_ms = _timed_send(peer, batch)
                f, _ = _timed_send(floor, batch)
                a = engine.send(batch, SENDERS)
                if a.refused:
                    raise RuntimeError(f"refused: {a.refused[:3]!r}")
                timed = pure_steps(batch)
                if set(timed.answers) != {"AA"}:
                    raise RuntimeError(f"the in-memory apply refused some: {timed.answers}")
                steps = {k: v / len(batch) * 1000 for k, v in timed.seconds.items()}
                out.append(Round(p, senders_ms, f, a, steps))
                print(f"  round {n + 1}: python-hl7 {p.rate:.0f} msg/s "
                      f"{p.cpu_ms_per_message:.3f} ms, senders {senders_ms:.3f} ms, "
                      f"floor {f.rate:.0f} msg/s {f.cpu_ms_per_message:.3f} ms, "
                      f"accord {a.rate:.0f} msg/s {a.cpu_ms_per_message:.3f} ms, "
                      f"steps {sum(steps.values()):.3f} ms", flush=True)
        finally:
            peer.stop()
            floor.stop()
    return out


# --------------------------------------------------------------------------- the report


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def report(rounds: list[Round], count: int) -> str:
    cores = os.cpu_count() or 1
    peer_rate = _med([r.peer.rate for r in rounds])
    senders_ms = _med([r.senders_ms for r in rounds])
    floor_ms = _med([r.floor.cpu_ms_per_message for r in rounds])
    steps = {k: min(r.steps_ms[k] for r in rounds) for k in STEPS}
    accord_ms = _med([r.accord.cpu_ms_per_message for r in rounds])
    accord_rate = _med([r.accord.rate for r in rounds])
    least = floor_ms + sum(steps.values())
    least_on_store = floor_ms + sum(steps[k] for k in ON_STORE_STEPS)
    default, on_store = (budget(peer_rate, ratio, cores, senders_ms)
                         for ratio in (DEFAULT_RATIO, ON_STORE_RATIO))
    lines = [
        "## The floor under the aging goals (`bench/floor.py`)",
        "",
        f"bench/aging.py's messages (each exam's life, {SENDERS} senders, an empty store), "
        f"{count:,} a run, medians of {len(rounds)} round(s) (the steps: the least of "
        f"them); Python {platform.python_version()}, {cores} cores, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end. "
        "CPU is user + system time per message.",
        "",
        "| what | msg/s | CPU ms a message |",
        "|---|---:|---:|",
        f"| python-hl7's MLLP server (stores nothing) | {peer_rate:,.0f} | "
        f"{_med([r.peer.cpu_ms_per_message for r in rounds]):.3f} |",
        f"| the {SENDERS} senders (this process) | | {senders_ms:.3f} |",
        f"| floor: receive, one durable insert, answer | "
        f"{_med([r.floor.rate for r in rounds]):,.0f} | {floor_ms:.3f} |",
        *(f"| Accord, no I/O: {k} | | {v:.3f} |" for k, v in steps.items()),
        f"| **least for the default mode** (floor + every step) | | **{least:.3f}** |",
        f"| **least for ACK on store** (floor + parse + ACK) | | **{least_on_store:.3f}** |",
        f"| `accord serve` as shipped (default mode) | {accord_rate:,.0f} | {accord_ms:.3f} |",
        "",
        "Budgets and verdicts (CPU ms a message at the rate the goal asks):",
        "",
        *_budget_lines("default engine", default, peer_rate, least, accord_ms),
        *_budget_lines("ACK on store", on_store, peer_rate, least_on_store, None),
        "",
        "The steps are what the default mode must do before it answers; the store's "
        "writes for the workflow (patients, orders, trace, findings), identity matching "
        "and the ACK-on-store dedupe claim are not in them, so each *least* is below what "
        "any design of the same work can cost in CPython. *One interpreter*: the budget "
        "of a process whose Python code runs on one core at a time; *all cores*: the "
        "budget if the work could be spread over every core perfectly, the senders' "
        "share left to them.",
    ]
    return "\n".join(lines)


def _budget_lines(name: str, b: Budget, peer_rate: float, least: float,
                  shipped: float | None) -> list[str]:
    head = (f"- {name}, {b.ratio:g}x python-hl7 = {b.ratio * peer_rate:,.0f} msg/s: "
            f"{b.one_interpreter:.3f} ms on one interpreter, {b.all_cores:.3f} ms on all "
            "cores.")
    lines = [head,
             f"  - the least it can cost, {least:.3f} ms: on one interpreter "
             f"{verdict(least, b.one_interpreter)}; on all cores "
             f"{verdict(least, b.all_cores)}."]
    if shipped is not None:
        lines.append(f"  - as shipped, {shipped:.3f} ms: on one interpreter "
                     f"{verdict(shipped, b.one_interpreter)}; on all cores "
                     f"{verdict(shipped, b.all_cores)}.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=4_000, help="messages per run")
    ap.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = ap.parse_args()
    text = report(run(args.rounds, args.messages), args.messages)
    print(text)
    if not args.no_write:
        write_section("floor", text)


if __name__ == "__main__":
    main()
