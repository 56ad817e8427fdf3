"""The duplicates the engine's identity path missed, and the false pairs it proposed,
each with its reason (a development aid for the matcher, not a benchmark).

Every registration of a dataset is applied in arrival order on a fresh SQLite store
(``identity_store.run_online``: the workflow code ``accord serve`` runs per message),
and each lookup's candidates are kept as the store returned them (features and term
counts). Then each true pair not proposed is classified by the later registration's
lookup:

- ``blocking``: the earlier record was not among the candidates;
- ``distinct``: ruled out as plainly other people (given name and birth date both
  different) or by a household relation (``namesake``, ``parent_child``, ``twin`` with
  identifiers that disagree);
- ``capped``: a household relation capped its score under the threshold;
- ``low``: scored under the threshold; the comparison levels say which fields disagreed;
- ``competed``: scored over it alone, under it with the lookup's other candidates
  (``competing``).

A pair can also be proposed by a third registration's lookup, so a pair counted here
may still be among the proposed pairs (it is then not a miss and is left out).

The store is a scratch one on tmpfs where there is one (``identity_store.scratch``):
the per-registration commit's fsync would otherwise set the pace; the pairs found are
the same.

Run: ``.venv/bin/python bench/identity_misses.py febrl3`` or ``skewed 5000``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identity_store
import population
from identity_peers import scores

from accord.workflow.identity.compare import (
    COMPARISONS,
    Features,
    compare,
    distinct_people,
    features,
)
from accord.workflow.identity.frequencies import (
    EXPECTED,
    LEARNED_KEYS,
    POPULATION,
    REGISTRATIONS,
    SPARSE_CLASSES,
    Frequencies,
    count_keys,
    registrations_key,
    role_keys,
    sparseness,
    term_keys,
    without_shared,
)
from accord.workflow.identity.households import DISTINCT, relation
from accord.workflow.identity.index import MAX_CANDIDATES, lookup_keys, lookup_plan, stored_keys
from accord.workflow.identity.matcher import Candidates, score_pair, weights_for


def _levels(levels: Sequence[int]) -> str:
    return " ".join(f"{name}={labels[lv] if lv >= 0 else '-'}"
                    for (name, labels), lv in zip(COMPARISONS, levels, strict=True))


def replica(pop: population.Population) -> identity_store.StoreRun:
    """What ``run_online`` does, with the store's tables as dicts: the same keys, counts,
    lookup plan and matcher, without SQL and the workflow (several times faster; the one
    difference is which candidates a lookup over its limit keeps)."""
    counts: Counter[str] = Counter()
    postings: dict[str, list[str]] = {}
    packed: dict[str, Features] = {}
    person_of = dict(zip((r.mrn for r in pop.records), pop.persons, strict=True))
    earlier: dict[str, list[str]] = {}
    pairs: set[frozenset[str]] = set()
    kept: list[Candidates] = []
    sizes: list[int] = []
    blocked = 0
    for n, r in enumerate(pop.records):
        d = identity_store.demographics(r)
        f = features(d)
        lookup = lookup_keys(f)
        asked = [POPULATION, *LEARNED_KEYS, *term_keys(f), *role_keys(f), *lookup]
        seen = {k: counts[k] for k in asked if counts[k]}
        freqs = Frequencies(counts[POPULATION], seen)
        found: dict[str, Features] = {}
        for key in lookup_plan(lookup, seen, limit=MAX_CANDIDATES):
            for pid in postings.get(key, ()):
                if len(found) <= MAX_CANDIDATES:
                    found[pid] = packed[pid]
        got = Candidates(tuple(found.items()), freqs)
        kept.append(got)
        sizes.append(len(found))
        pid = f"P{n}"
        assessed = identity_store.MATCHER.assess(d, got)
        for match in assessed.proposed:
            pairs.add(frozenset((r.mrn, pop.records[int(match.patient_id[1:])].mrn)))
        counts.update(assessed.changes())
        person = person_of[r.mrn]
        blocked += sum(1 for p in earlier.get(person, ()) if p in found)
        earlier.setdefault(person, []).append(pid)
        packed[pid] = f
        for key in stored_keys(f):
            postings.setdefault(key, []).append(pid)
        counts.update(count_keys(f))
        counts[POPULATION] += 1
    rate = Frequencies(counts[POPULATION], dict(counts)).duplicate_rate(
        identity_store.MATCHER.weights.duplicate_rate)
    print(f"learned duplicate rate {rate:.4f} "
          f"({counts[EXPECTED] / 1000:.1f} expected matches over {counts[REGISTRATIONS]:,} "
          "registrations)", flush=True)
    freqs = Frequencies(counts[POPULATION], dict(counts))
    print("by core fields missing:", ", ".join(
        f"{n} {freqs.duplicate_rate(rate, n):.4f} ({counts[registrations_key(n)]:,})"
        for n in range(SPARSE_CLASSES)), flush=True)
    return identity_store.StoreRun(frozenset(pairs), tuple(sizes), (), blocked, 0.0,
                                   tuple(kept), tuple(f"P{n}" for n in range(len(sizes))))


def analyse(pop: population.Population, show: int, fast: bool) -> None:
    truth = pop.truth_pairs()
    if fast:
        run = replica(pop)
    else:
        with identity_store.scratch(memory=True) as data:
            run = identity_store.run_online(pop, Path(data), keep=True)
    s = scores(run.pairs, truth)
    c = run.candidates
    print(f"{pop.name}: P {s.precision:.4f} R {s.recall:.4f} F1 {s.f1:.4f} "
          f"pairs {len(run.pairs):,} true {len(truth):,} blocking recall "
          f"{run.blocked / max(len(truth), 1):.4f} candidates mean {sum(c) / len(c):.1f} "
          f"p99 {identity_store.percentile(c, 0.99):.0f} max {max(c)}", flush=True)
    index = {r.mrn: n for n, r in enumerate(pop.records)}
    matcher = identity_store.MATCHER
    kinds: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    lines: list[str] = []
    for pair in sorted(truth - run.pairs, key=sorted):
        first, later = sorted(pair, key=index.__getitem__)
        found = run.lookups[index[later]]
        pid = run.patient_ids[index[first]]
        stored = dict(found.found).get(pid)
        query = features(identity_store.demographics(pop.records[index[later]]))
        if stored is None:
            kind, detail = "blocking", _levels(compare(query, features(
                identity_store.demographics(pop.records[index[first]])))[0])
        else:
            freqs = found.frequencies
            q = without_shared(query, freqs, matcher.own_phones)
            o = without_shared(stored, freqs, matcher.own_phones)
            levels, _ = compare(q, o)
            kin, cap = relation(q, o, levels)
            weights = weights_for(matcher.weights, freqs, sparseness(q))
            result = score_pair(pid, q, o, weights, freqs, freqs.population)
            if result is None:
                kind = "distinct:" + (kin if cap == DISTINCT else "given+birth"
                                      if distinct_people(levels) else "?")
            elif kin:
                kind = f"capped:{kin}"
            elif result.probability >= matcher.threshold:
                kind = "competed"  # another candidate, not the same person, explained it
            else:
                kind = "low"
            score = f"{result.score:+.2f}" if result is not None else "ruled out"
            detail = f"{score} {_levels(levels)}"
            if result is not None:
                for f in result.fields:
                    if f.weight < 0 and f.name != "prior":
                        fields[f"{f.name}={f.level}"] += 1
        kinds[kind] += 1
        lines.append(f"  {kind:<22} {first} / {later}: {detail}")
    print("misses:", ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    print("fields against (scored misses):",
          ", ".join(f"{k} {n}" for k, n in fields.most_common()))
    for line in lines[:show]:
        print(line)
    relation_of = pop.relation_of()
    false = sorted(run.pairs - truth, key=sorted)
    print(f"false pairs {len(false)}:",
          ", ".join(f"{k} {n}" for k, n in
                    Counter(relation_of.get(p, "unrelated") for p in false).most_common()))
    for pair in false[:show]:
        a, b = sorted(pair, key=index.__getitem__)
        fa = features(identity_store.demographics(pop.records[index[a]]))
        fb = features(identity_store.demographics(pop.records[index[b]]))
        print(f"  {relation_of.get(pair, 'unrelated'):<10} {a} / {b}: "
              f"{_levels(compare(fb, fa)[0])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="febrl1, febrl2, febrl3 or skewed")
    parser.add_argument("size", nargs="?", type=int, default=5000, help="skewed only")
    parser.add_argument("--show", type=int, default=40, help="pairs listed")
    parser.add_argument("--fast", action="store_true",
                        help="the in-memory replica of the store path (``replica``)")
    args = parser.parse_args()
    if args.dataset.startswith("febrl"):
        pop = population.febrl(int(args.dataset[-1]))
    else:
        pop = population.FLAVOURS[args.dataset](args.size, population.SEED)
        pop = population.Population(pop.records, pop.persons, pop.relations,
                                    f"{args.dataset} {args.size:,}")
    analyse(pop, args.show, args.fast)


if __name__ == "__main__":
    main()
