"""Fixtures for the HL7 core tests.

Sample messages under ``tests/samples/hl7_*.hl7`` are synthetic, written for Accord
(no real patient): ORM^O01 radiology order with a ZDS, Latin-1 and lying-MSH-18 UTF-8
messages, Japanese (ISO IR87, ISO-2022-JP bytes whose kanji contain ``^`` and ``~``) and
Korean (KS X 1001) names, a v2.7 message with a truncation character, escapes, and two
FHS/BHS batches. The third-party corpus is ``tests/corpus``: files copied verbatim from
public repositories, one folder per source with its licence notice (see
``tests/corpus/SOURCES.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accord.hl7 import Message
from hl7_corpus import CORPUS

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "samples"


def sample(name: str) -> bytes:
    """The bytes of ``tests/samples/<name>``."""
    return (SAMPLES / name).read_bytes()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The HL7 corpus; its absence is a failure, never a skip."""
    assert CORPUS.is_dir(), f"HL7 corpus missing at {CORPUS}"
    return CORPUS


@pytest.fixture
def orm_bytes() -> bytes:
    return sample("hl7_orm_o01.hl7")


def leaf_values(msg: Message) -> dict[str, str]:
    """Every path of ``msg`` down to subcomponents, with ``get`` (and ``get_raw`` of fields).

    Used to check that a re-parsed message holds the same value for every path as the
    message it came from (the round-trip rule of docs/interface.md).
    """
    enc = msg.encoding
    values: dict[str, str] = {}
    seen: dict[str, int] = {}
    for seg in msg.segments:
        number = seen[seg.id] = seen.get(seg.id, 0) + 1
        base = f"{seg.id}[{number}]"
        values[base] = msg.get(base)
        fields = seg.to_er7().split(enc.field)
        header = seg.id in ("MSH", "FHS", "BHS")
        for index, text in enumerate(fields[1:], 2 if header else 1):
            path = f"{base}-{index}"
            values[path] = msg.get(path)
            values[path + " raw"] = msg.get_raw(path)
            if header and index <= 2:
                continue
            reps = text.split(enc.repetition) if enc.repetition else [text]
            for r, rep in enumerate(reps, 1):
                values[f"{path}[{r}]"] = msg.get(f"{path}[{r}]")
                comps = rep.split(enc.component) if enc.component else [rep]
                for c, comp in enumerate(comps, 1):
                    values[f"{path}[{r}].{c}"] = msg.get(f"{path}[{r}].{c}")
                    subs = comp.split(enc.subcomponent) if enc.subcomponent else [comp]
                    for s in range(1, len(subs) + 1):
                        values[f"{path}[{r}].{c}.{s}"] = msg.get(f"{path}[{r}].{c}.{s}")
    return values


@pytest.fixture(scope="session")
def walk() -> Callable[[Message], dict[str, str]]:
    return leaf_values


@pytest.fixture(scope="session")
def load() -> Callable[[str], bytes]:
    """``load("hl7_orm_o01.hl7")`` gives the bytes of a sample file."""
    return sample
