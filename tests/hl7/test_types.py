"""Typed readers (accord.hl7.types): TS/DTM, CX, XPN, XCN, XAD, XTN, EI, CE/CWE."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from accord.hl7 import parse, parse_batch
from accord.hl7.types import (
    CX,
    HD,
    TS,
    XPN,
    read_ce,
    read_cwe,
    read_cx,
    read_ei,
    read_hd,
    read_ts,
    read_xad,
    read_xcn,
    read_xpn,
    read_xtn,
    values_at,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> bytes:
    """The bytes of ``tests/samples/<name>`` (sources in tests/samples/hl7x_README.md)."""
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def adt():
    return parse(sample("hl7x_adt_a04_types.hl7"))


@pytest.fixture
def orm():
    return parse(sample("hl7x_orm_o01_v231.hl7"))


def test_read_ts_on_sample(adt):
    msh7 = read_ts(adt, "MSH-7")
    assert msh7 == TS(2024, 3, 15, 8, 30, 12, 123400, timedelta(hours=-5), "fraction")
    assert read_ts(adt, "EVN-2").precision == "minute"
    assert read_ts(adt, "EVN-6") == TS(2024, precision="year")
    assert read_ts(adt, "PID-7").to_date() == date(1980, 2, 29)
    assert read_ts(adt, "OBX-14").utc_offset == timedelta(hours=1)
    assert read_ts(adt, "PID-29") is None  # absent
    assert read_ts(adt, "PID-8") is None  # "M" is not a DTM: None, no exception


def test_read_ts_inside_a_component(orm):
    # OBR-27 is TQ; its 4th component is a TS whose DTM is the first sub-component.
    start = read_ts(orm, "OBR-27.4")
    assert start is not None and start.to_datetime() == datetime(2024, 3, 16, 11, 30)
    assert read_ts(orm, "ORC-7.4") == start


def test_read_cx_with_hd(adt):
    ids = read_cx(adt, "PID-3")
    assert ids == [
        CX("MRN7001", HD("HOSP", "1.2.840.99999.2", "ISO"), "MR", HD("WARD7")),
        CX("NHS-42", HD("NHS"), "NH"),
    ]  # the third repetition has no ID: left out
    assert read_cx(adt, "PID-3[2]") == [CX("NHS-42", HD("NHS"), "NH")]
    assert read_cx(adt, "PID-18")[0].type_code == "AN"
    assert read_cx(adt, "MRG-1") == []


def test_read_xpn_repetitions(adt):
    names = read_xpn(adt, "PID-5")
    assert names == [
        XPN("TESTER", "ALEX", "Q", "JR", "DR", "PHD", "L"),
        XPN("TESTER", "AL", name_type="A"),
    ]


def test_read_xcn(adt):
    (doctor,) = read_xcn(adt, "PV1-7")
    assert (doctor.id, doctor.family, doctor.given, doctor.prefix, doctor.degree) == (
        "1234", "SMITH", "JOHN", "DR", "MD")
    assert doctor.assigning_authority == HD("HOSP", "1.2.840.99999.3", "ISO")


def test_read_xad(adt):
    (home,) = read_xad(adt, "PID-11")
    assert (home.street, home.other_designation, home.city, home.state) == (
        "12 Example Rd", "Apt 4", "Springfield", "IL")
    assert (home.postal_code, home.country, home.address_type, home.county) == (
        "62701", "USA", "H", "SANGAMON")


def test_read_xtn_old_and_v25_forms(adt):
    old, new, mail = read_xtn(adt, "PID-13")
    assert old.number == "(217)555-1234X22"
    assert (old.area_code, old.local_number, old.extension) == ("217", "555-1234", "22")
    assert (new.use_code, new.equipment_type, new.country_code, new.area_code,
            new.local_number, new.extension) == ("PRN", "PH", "1", "217", "5550100", "7")
    assert (mail.use_code, mail.equipment_type, mail.email) == (
        "NET", "Internet", "alex@example.invalid")


@pytest.mark.parametrize(
    ("xtn1", "country", "area", "local"),
    [
        ("555-0100", "", "", "555-0100"),  # no country code hiding in the exchange
        ("5550100", "", "", "5550100"),
        ("1 (617)555-1234", "1", "617", "555-1234"),
        ("44 20 7946 0018", "44", "", "20 7946 0018"),
    ],
)
def test_read_xtn_old_form_country_code_needs_a_separator(
        xtn1: str, country: str, area: str, local: str) -> None:
    msg = parse(f"MSH|^~\\&|A|B|C|D|2026||ADT^A04|1|P|2.5\rPID|1||1^^^H||X^Y||||||||{xtn1}")
    (phone,) = read_xtn(msg, "PID-13")
    assert (phone.country_code, phone.area_code, phone.local_number) == (country, area, local)


def test_read_ei_cwe_hd(orm, adt):
    placer = read_ei(orm, "ORC-2")
    assert placer is not None and placer.entity_id == "PLC0310"
    assert read_ei(orm, "ORC-4") is None
    (code,) = read_cwe(orm, "OBR-4")
    assert (code.identifier, code.text, code.coding_system) == ("74150", "CT ABDOMEN", "CPT4")
    assert read_ce is read_cwe
    assert read_cwe(adt, "OBX-3")[0].coding_system == "LN"
    assert read_hd(adt, "MSH-4") == [HD("GENERAL", "1.2.840.99999.1", "ISO")]


def test_values_are_unescaped():
    batch = parse_batch(sample("hl7x_two_messages.hl7"))
    second = batch.messages[1]
    assert read_xpn(second, "PID-5") == [XPN("TWO", "SECOND^PART")]
    assert values_at(second, "PID-5.2") == [[["SECOND^PART"]]]
    assert values_at(second, "PID-99") == []


def test_values_are_frozen(adt):
    cx = read_cx(adt, "PID-3")[0]
    with pytest.raises(AttributeError):
        cx.id = "x"  # type: ignore[misc]


# --- real corpus fields -------------------------------------------------------------

def test_corpus_siu_cx_xpn_ts(corpus: Path):
    msg = parse((corpus / "microsoft-FHIR-Converter" / "SIU-S12-01.hl7").read_bytes())
    ids = read_cx(msg, "PID-3")
    assert ids[0] == CX("PATID1234", HD("test1", "2.16.1", "HCD"), "MR",
                        HD("GOOD HEALTH HOSPITAL"), "5")
    assert ids[1] == CX("123456789", HD("USSSA"), "SS")
    names = read_xpn(msg, "PID-5")
    assert len(names) == 2
    assert names[0] == XPN("EVERYMAN", "ADAM", "A", "III", "Dr.", "MD", "D")
    assert (names[1].family, names[1].middle, names[1].name_type) == ("Josh", "stanley", "L")
    birth = read_ts(msg, "PID-7")
    assert birth is not None and birth.precision == "minute"
    assert birth.to_datetime() == datetime(1988, 8, 18, 9, 11, tzinfo=UTC)
    assert read_ts(msg, "PID-29").utc_offset == timedelta(hours=1, minutes=15)
    # TQ1-7 start date/time with an offset
    assert read_ts(msg, "TQ1-7").to_datetime().isoformat() == "2021-09-24T09:30:00+02:15"


def test_corpus_impossible_date_is_none(corpus: Path):
    path = corpus / "cdcgov-trusted-intermediary" / "examples" / "NewSTEPs"
    msg = parse((path / "002_NewSTEPs_ORU_R01.hl7").read_bytes())
    assert msg.get("OBX[2]-14") == "201702291252-0500"  # 29 February 2017 does not exist
    assert read_ts(msg, "OBX[2]-14") is None


def test_corpus_dcm4che_order(corpus: Path):
    msg = parse((corpus / "dcm4che" / "OMI^O23-ImagingOrder.hl7").read_bytes())
    assert read_cx(msg, "PID-3") == [CX("PID_1", HD("ADT1"))]
    assert read_ei(msg, "IPC-3").entity_id == "1.2.392.200036.9125.0.198811291108.7"
    assert read_ts(msg, "TQ1-7") == TS(2000, 8, 16, 15, 10, precision="minute")
    assert [c.identifier for c in read_cwe(msg, "IPC-5")] == ["CT"]
