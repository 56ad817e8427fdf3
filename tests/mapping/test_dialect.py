"""Dialects (mapping/dialect.py): defaults, config loading, errors, choice per sender."""

from __future__ import annotations

import pytest

from accord.errors import ConfigError
from accord.mapping.dialect import Dialect, Dialects
from accord.workflow.status import Status


def test_default_dialect_is_ihe_swf() -> None:
    d = Dialect()
    assert d.accession == "OBR-18" and d.outbound == "ORM^O01"
    assert d.order_status_for("NW", "") == (True, Status.ORDERED)
    assert d.order_status_for("NW", "SC") == (True, Status.SCHEDULED)
    assert d.order_status_for("SC", "CM") == (True, Status.COMPLETED)
    assert d.order_status_for("SC", "IP") == (True, Status.IN_PROGRESS)
    assert d.order_status_for("CA", "") == (True, Status.CANCELLED)
    assert d.order_status_for("XO", "") == (True, None)
    assert d.order_status_for("CA", "ZZ") == (True, Status.CANCELLED)  # ORC-1 alone
    assert d.order_status_for("ZZ", "") == (False, None)
    assert d.report_status["C"] is Status.AMENDED
    assert d.siu_status["Noshow"] is Status.CANCELLED


def test_from_config_overrides_and_keeps_defaults() -> None:
    d = Dialect.from_config({
        "match": {"application": "RIS_B", "facility": "NORTH"},
        "authority": "HOSP", "accession": "IPC-1", "outbound": "OMI^O23",
        "order_status": {"SC/CM": "scheduled", "SC/ZC": "completed", "XO/HD": None},
        "study_uid": {"policy": "accession", "root": "1.2.3"},
        "siu_order": {"placer": "SCH-1.1"}, "drift_threshold": "5",
    }, name="ris_b")
    assert (d.name, d.application, d.facility) == ("ris_b", "RIS_B", "NORTH")
    assert d.order_status_for("SC", "CM") == (True, Status.SCHEDULED)
    assert d.order_status_for("SC", "ZC") == (True, Status.COMPLETED)
    assert d.order_status_for("XO", "HD") == (True, None)
    assert d.order_status_for("SC", "IP") == (True, Status.IN_PROGRESS)
    assert (d.study_uid_policy, d.uid_root) == ("accession", "1.2.3")
    assert d.siu_placer == "SCH-1.1" and d.siu_filler == "SCH-27.1"
    assert d.drift_threshold == 5 and d.identifier_authority == "HOSP"


@pytest.mark.parametrize(("raw", "words"), [
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"outbound": "ORU^R01"}, "outbound must be one of"),
    ({"order_status": {"SC/CM": "done"}}, "not a canonical status"),
    ({"study_uid": {"policy": "maybe"}}, "study_uid_policy must be one of"),
    ({"drift_threshold": "many"}, "drift_threshold must be an integer"),
    ({"unmapped_code": "drop"}, "unmapped_code must be one of"),
])
def test_bad_config_names_the_key(raw: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match="dialect x") as err:
        Dialect.from_config(raw, name="x")
    assert words in str(err.value)


def test_dialect_chosen_per_sender() -> None:
    ds = Dialects.from_config({
        "a": {"match": {"application": "RIS"}},
        "a_north": {"match": {"application": "RIS", "facility": "NORTH"}},
        "default": {"default_station": "ANY"},
    })
    assert ds.for_sender("RIS", "NORTH").name == "a_north"
    assert ds.for_sender("RIS", "SOUTH").name == "a"
    assert ds.for_sender("LIS").name == "default"
    assert ds.for_sender("LIS").default_station == "ANY"
