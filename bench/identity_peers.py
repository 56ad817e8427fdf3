"""The peers of Accord's duplicate detection, run offline (batch) on the same records,
each with its documented default setup, scored against the same truth.

- splink (5.x, DuckDB backend), two setups taken from its documentation's examples:
  ``SPLINK_FEBRL`` is "Deduplicating the febrl3 dataset"
  (docs/demos/examples/duckdb/febrl3, used for FEBRL 1, 2 and 3) and ``SPLINK_PERSONS``
  is "Linking a dataset of real historical persons"
  (docs/demos/examples/duckdb/deduplicate_50k_synthetic, used for the generated
  populations, whose columns are mapped onto the example's: see the setup). Training as
  documented: the probability that two random records match from deterministic rules,
  u by random sampling, m by EM over the example's training blocks. Pairs predicted with
  a match probability of at least ``THRESHOLD``.
- recordlinkage (0.16), its FEBRL deduplication tutorial (docs/guides/
  data_deduplication): ``Index.block("given_name")``, six comparisons (given name exact,
  surname Jaro-Winkler >= 0.85, birth date, suburb and state exact, address_1 string
  >= 0.85), then its unsupervised ``ECMClassifier`` (docs/guides/classifiers); and the
  tutorial's own last step, a rule (more than 3 of the 6 agree). On a generated
  population, whose given names are skewed, blocking on the given name alone grows with
  the square of the common names (about 10^8 pairs at 200,000 records), so there it
  blocks on splink's person-example keys instead: both peers score the same candidates.

Every run also counts its candidate pairs and the true pairs among them (blocking
recall). Records come from bench/population.py (``Population``); the truth never reaches
a classifier (splink only carries it through, to count blocking recall).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from population import Population

if TYPE_CHECKING:
    import pandas as pd

THRESHOLD = 0.5  # a pair is predicted when a match is more likely than not
RL_PAIR_LIMIT = 20_000_000  # recordlinkage holds every candidate pair in memory (pandas)

Pairs = set[frozenset[str]]


@dataclass(frozen=True, slots=True)
class PeerRun:
    """One peer on one dataset: predicted MRN pairs, its candidates, seconds it took."""

    system: str
    pairs: frozenset[frozenset[str]]
    candidates: int
    true_candidates: int  # true pairs among the candidates
    seconds: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float


def scores(predicted: Pairs | frozenset[frozenset[str]], truth: Pairs) -> Scores:
    """Precision, recall and F1 over unordered pairs."""
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


def frame(population: Population) -> pd.DataFrame:
    """The records as one table in FEBRL's column names (empty values as nulls), with
    the phone and sex a generated population has, and the truth (``person``)."""
    import pandas as pd

    rows = [{
        "rec_id": r.mrn, "given_name": r.given, "surname": r.family,
        "street_number": r.house_number, "address_1": r.street, "address_2": r.other,
        "suburb": r.city, "postcode": r.postcode, "state": r.state,
        "date_of_birth": r.birth, "soc_sec_id": r.national_id, "phone": r.phone,
        "sex": r.sex, "person": person,
    } for r, person in zip(population.records, population.persons, strict=True)]
    df = pd.DataFrame(rows)
    return df.replace("", None)


# --------------------------------------------------------------------------- splink


@dataclass(frozen=True, slots=True)
class SplinkSetup:
    """What one splink documentation example does, step by step."""

    name: str
    blocking: tuple[tuple[str, ...], ...]  # block_on(...) columns or SQL expressions
    comparisons: Callable[[], list[Any]]
    deterministic: Callable[[], list[Any]]
    recall: float  # of the deterministic rules, as the example states it
    u_max_pairs: float
    u_seed: int | None
    em_blocks: tuple[tuple[str, ...], ...]
    em_without_tf: bool
    concat_column: str = ""  # forename || ' ' || surname, for ForenameSurnameComparison


def _febrl_comparisons() -> list[Any]:
    import splink.comparison_library as cl

    return [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                 datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]


def _febrl_deterministic() -> list[Any]:
    from splink import block_on

    return [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth"]


SPLINK_FEBRL = SplinkSetup(
    name="febrl3 example",
    blocking=(("soc_sec_id",), ("given_name",), ("surname",), ("date_of_birth",),
              ("postcode",)),
    comparisons=_febrl_comparisons, deterministic=_febrl_deterministic, recall=0.9,
    u_max_pairs=1e6, u_seed=2, em_blocks=(("date_of_birth",), ("postcode",)),
    em_without_tf=False,
)


def _persons_comparisons() -> list[Any]:
    """The example's comparisons on the population's columns: first_name -> given_name,
    dob -> date_of_birth (YYYYMMDD here), birth_place -> address_1 (the street),
    occupation -> phone; its PostcodeComparison reads UK postcodes (area, district,
    sector), which a 5-digit ZIP code does not have, so the postcode is an exact match
    with term frequencies, as in the FEBRL example."""
    import splink.comparison_library as cl

    return [
        cl.ForenameSurnameComparison("given_name", "surname",
                                     forename_surname_concat_col_name="given_surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                 datetime_format="%Y%m%d"),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        cl.ExactMatch("address_1").configure(term_frequency_adjustments=True),
        cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
    ]


def _persons_deterministic() -> list[Any]:
    from splink import block_on

    return [block_on("given_name", "surname", "date_of_birth"),
            block_on("substr(given_name,1,2)", "surname", "substr(postcode,1,2)"),
            block_on("date_of_birth", "postcode")]


SPLINK_PERSONS = SplinkSetup(
    name="historical persons example",
    blocking=(
        ("substr(given_name,1,3)", "substr(surname,1,4)"),
        ("surname", "date_of_birth"),
        ("given_name", "date_of_birth"),
        ("postcode", "given_name"),
        ("postcode", "surname"),
        ("date_of_birth", "address_1"),
        ("substr(postcode,1,3)", "date_of_birth"),
        ("substr(postcode,1,3)", "given_name"),
        ("substr(postcode,1,3)", "surname"),
        ("substr(given_name,1,2)", "substr(surname,1,2)", "substr(date_of_birth,1,4)"),
    ),
    comparisons=_persons_comparisons, deterministic=_persons_deterministic, recall=0.6,
    u_max_pairs=1e7, u_seed=None, em_blocks=(("given_name", "surname"), ("date_of_birth",)),
    em_without_tf=True, concat_column="given_surname",
)


def run_splink(population: Population, setup: SplinkSetup) -> PeerRun:
    """Train and predict as ``setup``'s example does; pairs at p >= ``THRESHOLD``."""
    import duckdb
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    con = duckdb.connect()
    df = frame(population)
    if setup.concat_column:
        df[setup.concat_column] = (df["given_name"].fillna("") + " "
                                   + df["surname"].fillna("")).str.strip().replace("", None)
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        unique_id_column_name="rec_id", link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[block_on(*b) for b in setup.blocking],
        comparisons=setup.comparisons(), additional_columns_to_retain=["person"])
    with _quiet():
        linker = Linker(db_api.register(df), settings, log_level=logging.ERROR)
        linker.training.estimate_probability_two_random_records_match(
            setup.deterministic(), recall=setup.recall)
        linker.training.estimate_u_using_random_sampling(
            max_pairs=setup.u_max_pairs, seed=setup.u_seed)
        for block in setup.em_blocks:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*block), estimate_without_term_frequencies=setup.em_without_tf)
        predicted = linker.inference.predict()
    table = predicted.physical_name
    counted = con.sql(f"select count(*), count(*) filter (where person_l = person_r) "
                      f"from {table}").fetchall()[0]
    rows = con.sql(f"select rec_id_l, rec_id_r from {table} "
                   f"where match_probability >= {THRESHOLD}").fetchall()
    seconds = time.perf_counter() - t0
    con.close()
    return PeerRun("splink", frozenset(frozenset(r) for r in rows), int(counted[0]),
                   int(counted[1]), seconds, setup.name)


class _quiet:
    """splink and recordlinkage are chatty (logging, pandas/numpy warnings)."""

    def __enter__(self) -> None:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.getLogger("splink").level
        logging.getLogger("splink").setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("splink").setLevel(self._level)
        self._warnings.__exit__(None, None, None)


# --------------------------------------------------------------------------- recordlinkage


def _rl_blocks(df: pd.DataFrame, febrl: bool) -> list[list[str]]:
    """The tutorial's ``given_name`` block on FEBRL; on a generated population, derived
    columns for splink's person-example keys (``substr`` prefixes, 1-based like SQL)."""
    if febrl:
        return [["given_name"]]
    keys = []
    for n, block in enumerate(SPLINK_PERSONS.blocking):
        columns = []
        for k, expr in enumerate(block):
            if expr.startswith("substr("):
                column, _, length = expr[len("substr("):-1].split(",")
                name = f"_b{n}_{k}"
                df[name] = df[column].str[: int(length)]
                columns.append(name)
            else:
                columns.append(expr)
        keys.append(columns)
    return keys


def candidate_count(df: pd.DataFrame, keys: list[list[str]]) -> int:
    """An upper bound of the pairs the blocks give (pairs in several blocks counted
    once per block), from value counts: known before any pair is built."""
    total = 0
    for columns in keys:
        sizes = df.dropna(subset=columns).groupby(columns).size()
        total += int((sizes * (sizes - 1) // 2).sum())
    return total


def run_recordlinkage(population: Population, febrl: bool) -> tuple[PeerRun, PeerRun]:
    """The FEBRL deduplication tutorial: block, compare, then ECM (and the tutorial's
    rule, more than 3 of 6 comparisons agree). Not run above ``RL_PAIR_LIMIT`` pairs."""
    import recordlinkage

    t0 = time.perf_counter()
    df = frame(population).set_index("rec_id")
    keys = _rl_blocks(df, febrl)
    bound = candidate_count(df, keys)
    if bound > RL_PAIR_LIMIT:
        note = f"not run: its blocks give up to {bound:,} candidate pairs"
        empty = PeerRun("recordlinkage ECM", frozenset(), bound, 0, 0.0, note)
        return empty, PeerRun("recordlinkage rule", frozenset(), bound, 0, 0.0, note)
    with _quiet():
        indexer = recordlinkage.Index()
        for columns in keys:
            indexer.block(columns if len(columns) > 1 else columns[0])
        candidates = indexer.index(df)
        compare = recordlinkage.Compare()
        compare.exact("given_name", "given_name", label="given_name")
        compare.string("surname", "surname", method="jarowinkler", threshold=0.85,
                       label="surname")
        compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
        compare.exact("suburb", "suburb", label="suburb")
        compare.exact("state", "state", label="state")
        compare.string("address_1", "address_1", threshold=0.85, label="address_1")
        features = compare.compute(candidates, df)
        ecm = recordlinkage.ECMClassifier().fit_predict(features)
        rule = features[features.sum(axis=1) > 3].index
    seconds = time.perf_counter() - t0
    person = df["person"]
    true = int((person.loc[candidates.get_level_values(0)].to_numpy()
                == person.loc[candidates.get_level_values(1)].to_numpy()).sum())
    return (PeerRun("recordlinkage ECM", frozenset(frozenset(p) for p in ecm),
                    len(candidates), true, seconds, "FEBRL tutorial + ECMClassifier"),
            PeerRun("recordlinkage rule", frozenset(frozenset(p) for p in rule),
                    len(candidates), true, seconds, "FEBRL tutorial, > 3 of 6 agree"))
