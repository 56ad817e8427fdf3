"""Procedure code tables and scheduled-station rules (mapping/procedures.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from accord.errors import ConfigError
from accord.mapping.procedures import (
    CodeTable,
    Condition,
    Procedure,
    StationRule,
    catalog_from_config,
    choose_stations,
)

T1 = datetime(2026, 3, 1, tzinfo=UTC)
T2 = datetime(2026, 3, 2, tzinfo=UTC)


def test_versions_are_kept_with_time_and_author() -> None:
    table = CodeTable("procedures").change(
        at=T1, author="anna", note="initial", upsert=(Procedure("CTHEAD", stations=("CT1",)),))
    table = table.change(at=T2, author="bob", note="move CT head",
                         upsert=(Procedure("CTHEAD", stations=("CT2",)), Procedure("MRKNEE")))
    table = table.change(at=T2, author="bob", note="drop knee", remove=("MRKNEE",))
    assert [(v.number, v.author, v.note) for v in table.versions] == [
        (1, "anna", "initial"), (2, "bob", "move CT head"), (3, "bob", "drop knee")]
    assert table.versions[0].entries["CTHEAD"].stations == ("CT1",)  # history kept
    found = table.lookup("CTHEAD")
    assert found is not None and found[0].stations == ("CT2",) and found[1] == 3
    assert table.lookup("MRKNEE") is None


def _rule(name: str, priority: int, **conds: str) -> StationRule:
    conditions = tuple(Condition(k.replace("_", "-", 1), re.compile(v)) for k, v in conds.items())
    return StationRule(name, priority, (name.upper(),), conditions)


def test_highest_priority_matching_rule_wins() -> None:
    values = {"OBR-4.1": "CTHEAD", "MSH-4": "NORTH"}
    rules = (_rule("low", 1, OBR_4="CT.*"), _rule("high", 9, OBR_4="CT.*", MSH_4="NORTH"),
             _rule("other", 20, OBR_4="MR.*"))
    values["OBR-4"] = values["OBR-4.1"]
    rule, notes = choose_stations(rules, lambda p: values.get(p, ""))
    assert rule is not None and rule.name == "high"
    assert notes and "rule 'other'" in notes[0] and "is 'CTHEAD'" in notes[0]


def test_regex_must_match_the_whole_value() -> None:
    rules = (_rule("ct", 1, OBR_4="CT"),)
    rule, _ = choose_stations(rules, lambda p: "CTHEAD")
    assert rule is None


def test_catalog_from_config() -> None:
    catalog = catalog_from_config({
        "procedures": [{"code": "CTHEAD", "modality": "CT", "station": "CT1", "loinc": "24725-4"}],
        "station_rules": [{"name": "r", "priority": 3, "stations": "CT9",
                           "conditions": {"OBR-4.1": "CT.*"}}],
    }, at=T1, author="config")
    found = catalog.table.lookup("CTHEAD")
    assert found is not None and found[0].stations == ("CT1",) and found[0].loinc == "24725-4"
    assert catalog.rules[0].stations == ("CT9",)
    assert catalog.table.versions[0].author == "config"


@pytest.mark.parametrize("raw", [
    {"procedures": [{"modality": "CT"}]},
    {"station_rules": [{"priority": 1, "stations": ["X"], "conditions": {"OBR-4": "("}}]},
    {"station_rules": [{"priority": "high", "stations": ["X"]}]},
])
def test_bad_catalog_config(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        catalog_from_config(raw, at=T1, author="x")
