"""Validation profiles (accord.hl7.validate): basic and ihe-swf."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.hl7 import Message, ParseError, parse, parse_batch
from accord.hl7.validate import PROFILES, Problem, validate
from hl7_corpus import corpus_files

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> bytes:
    """The bytes of ``tests/samples/<name>`` (sources in tests/samples/hl7x_README.md)."""
    return (SAMPLES / name).read_bytes()


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def where(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.location, p.code) for p in problems}


def dcm4che(corpus: Path, name: str) -> Message:
    return parse((corpus / "dcm4che" / name).read_bytes())


def without(msg: Message, segment_id: str) -> Message:
    """The message re-parsed with every ``segment_id`` segment removed."""
    lines = [s.to_er7() for s in msg.segments if s.id != segment_id]
    return parse("\r".join(lines))


def test_profiles_are_named():
    assert {"basic", "ihe-swf"} <= set(PROFILES)
    with pytest.raises(KeyError):
        validate(parse(sample("hl7x_orm_o01_v231.hl7")), "nope")


def test_problem_line_format():
    assert str(Problem("error", "PID-3", "101", "patient identifier missing")) == (
        "ERROR PID-3 101 patient identifier missing")
    assert str(Problem("warning", "", "102", "charset")) == "WARNING - 102 charset"


# --- ihe-swf on good messages --------------------------------------------------------

@pytest.mark.parametrize(
    "name",
    [
        "ORM^O01-GeneralOrder.hl7",  # MSH-9 OMI^O23 with ZDS, IDs in OBR-18/19/20
        "OMI^O23-ImagingOrder.hl7",  # OMI^O23 with IPC
        "ADT^A40-PatientMerge.hl7",
        "ADT^A31-UpdatePersonInfo.hl7",
    ],
)
def test_good_dcm4che_messages_pass_ihe_swf(corpus: Path, name: str):
    problems = validate(dcm4che(corpus, name), "ihe-swf")
    assert errors(problems) == []


def test_good_own_samples_pass_ihe_swf():
    for name in ("hl7x_orm_o01_v231.hl7", "hl7x_adt_a04_types.hl7"):
        assert errors(validate(parse(sample(name)), "ihe-swf")) == [], name


def test_charset_lie_is_a_warning(corpus: Path):
    problems = validate(dcm4che(corpus, "ORM^O01-GeneralOrder.hl7"), "ihe-swf")
    assert [(p.severity, p.location) for p in problems] == [("warning", "MSH-18")]


# --- ihe-swf on stripped messages ----------------------------------------------------

@pytest.mark.parametrize(
    ("blank", "location"),
    [
        (("ORC-1",), "ORC-1"),
        (("ORC-2", "OBR-2"), "ORC-2"),
        (("ORC-3", "OBR-3"), "ORC-3"),
        (("OBR-4",), "OBR-4"),
        (("OBR-18",), "OBR-18"),
        (("OBR-19",), "OBR-19"),
        (("OBR-20",), "OBR-20"),
        (("OBR-24",), "OBR-24"),
        (("ZDS-1",), "ZDS-1"),
        (("TQ1-7",), "TQ1-7"),  # MSH-9 is OMI^O23: the v2.5 place is named first
        (("PID-3",), "PID-3"),
        (("PID-3.4",), "PID-3.4"),
        (("PID-5",), "PID-5"),
    ],
)
def test_stripped_orm_zds_fails_naming_the_field(corpus: Path, blank, location):
    msg = dcm4che(corpus, "ORM^O01-GeneralOrder.hl7")
    for path in blank:
        msg.set(path, "")
    found = errors(validate(msg, "ihe-swf"))
    assert (location, "101") in where(found), found


def test_orm_without_zds_names_the_study_uid(corpus: Path):
    found = errors(validate(without(parse(sample("hl7x_orm_o01_v231.hl7")), "ZDS"), "ihe-swf"))
    assert where(found) == {("ZDS-1", "101")}
    assert found[0].message == "Study Instance UID (ZDS-1 or IPC-3) missing"
    # the dcm4che sample says OMI^O23 in MSH-9 (but carries ZDS): IPC-3 is named first
    msg = without(dcm4che(corpus, "ORM^O01-GeneralOrder.hl7"), "ZDS")
    found = errors(validate(msg, "ihe-swf"))
    assert where(found) == {("IPC-3", "101")}
    assert "ZDS-1" in found[0].message


@pytest.mark.parametrize(
    ("blank", "alternative"),
    [("IPC-1", "OBR-18"), ("IPC-2", "OBR-19"), ("IPC-3", "ZDS-1"), ("IPC-4", "OBR-20"),
     ("IPC-5", "OBR-24")],
)
def test_stripped_omi_ipc_fails_naming_the_field(corpus: Path, blank, alternative):
    msg = dcm4che(corpus, "OMI^O23-ImagingOrder.hl7")
    msg.set(blank, "")
    found = errors(validate(msg, "ihe-swf"))
    assert len(found) == 1 and found[0].location == blank  # said once, by basic or profile
    msg.set(alternative, "ALT")  # the ORM-style field stands in for the IPC one
    assert errors(validate(msg, "ihe-swf")) == [] or blank != "IPC-5"


def test_bad_schedule_time_and_order_control(corpus: Path):
    msg = dcm4che(corpus, "OMI^O23-ImagingOrder.hl7")
    msg.set("TQ1-7", "tomorrow")
    msg.set("ORC-1", "ZZ")
    found = where(errors(validate(msg, "ihe-swf")))
    assert ("TQ1-7", "102") in found  # basic: TS format
    assert ("ORC-1", "103") in found  # table 0119


def test_v231_orm_schedule_in_obr27():
    msg = parse(sample("hl7x_orm_o01_v231.hl7"))
    msg.set("OBR-27.4", "")
    assert where(errors(validate(msg, "ihe-swf"))) == {("OBR-27.4", "101")}
    msg.set("OBR-27.4", "20241399")
    assert ("OBR-27.4", "102") in where(errors(validate(msg, "ihe-swf")))


def test_several_obr_each_checked():
    msg = parse(sample("hl7x_orm_o01_v231.hl7"))
    second = msg.get_raw("OBR").replace("ACC0310", "")
    msg = parse(msg.to_er7() + "\r" + second)
    assert where(errors(validate(msg, "ihe-swf"))) == {("OBR[2]-18", "101")}


def test_adt_requires_authority_and_pv1():
    msg = parse(sample("hl7x_adt_a04_types.hl7"))
    msg.set("PID-3", "ONLY-ID")
    found = where(errors(validate(msg, "ihe-swf")))
    assert found == {("PID-3.4", "101")}
    found = errors(validate(without(parse(sample("hl7x_adt_a04_types.hl7")), "PV1"),
                        "ihe-swf"))
    assert where(found) == {("PV1", "100")}  # PV1-2 is not repeated on top


def test_adt_a40_needs_mrg(corpus: Path):
    msg = without(dcm4che(corpus, "ADT^A40-PatientMerge.hl7"), "MRG")
    assert where(errors(validate(msg, "ihe-swf"))) == {("MRG", "100")}


def test_oru(corpus: Path):
    sr = dcm4che(corpus, "ORU^R01-SR.hl7")
    problems = validate(sr, "ihe-swf")
    # OBX 8 of this sample has one '|' too many: abnormal flags land in OBX-9
    assert ("OBX[8]-11", "101") in where(errors(problems))
    assert sum(p.location == "OBX[8]-11" for p in problems) == 1  # said once
    sr.set("OBR-25", "Q")
    assert ("OBR-25", "103") in where(validate(sr, "ihe-swf"))
    sr.set("OBX[3]-2", "ZZ")
    assert ("OBX[3]-2", "103") in where(validate(sr, "ihe-swf"))


def test_uncovered_type_is_a_warning(corpus: Path):
    problems = validate(dcm4che(corpus, "SIU^S12-NewAppointmentBooking.hl7"), "ihe-swf")
    assert ("warning", "MSH-9", "200") in {(p.severity, p.location, p.code) for p in problems}
    assert validate(dcm4che(corpus, "SIU^S12-NewAppointmentBooking.hl7"), "basic") == [
        p for p in problems if p.code != "200"]


# --- basic ---------------------------------------------------------------------------

def test_basic_passes_own_samples():
    for name in ("hl7x_orm_o01_v231.hl7", "hl7x_adt_a04_types.hl7"):
        assert validate(parse(sample(name))) == [], name
    for msg in parse_batch(sample("hl7x_two_messages.hl7")).messages:
        assert validate(msg) == []


@pytest.mark.parametrize(
    ("path", "value", "location", "code"),
    [
        ("MSH-3", "", "MSH-3", "101"),
        ("MSH-5", "", "MSH-5", "101"),
        ("MSH-7", "", "MSH-7", "101"),
        ("MSH-7", "2024-03-15", "MSH-7", "102"),
        ("MSH-9", "ADT", "MSH-9.2", "201"),
        ("MSH-10", "", "MSH-10", "101"),
        ("MSH-11", "", "MSH-11", "101"),
        ("MSH-11", "X", "MSH-11", "202"),
        ("MSH-12", "", "MSH-12", "101"),
        ("MSH-12", "3.0", "MSH-12", "203"),
        ("MSH-15", "MAYBE", "MSH-15", "103"),
        ("PID-7", "19801332", "PID-7", "102"),
        ("PID-1", "one", "PID-1", "102"),
        ("PID-25", "second", "PID-25", "102"),
        ("PID-5", "", "PID-5", "101"),
        ("OBX-14", "20240230", "OBX-14", "102"),
        ("PID-33", "20240101+9900", "PID-33", "102"),
    ],
)
def test_basic_finds(path, value, location, code):
    msg = parse(sample("hl7x_adt_a04_types.hl7"))
    msg.set(path, value)
    found = [p for p in validate(msg) if (p.location, p.code) == (location, code)]
    assert found and found[0].severity == "error", validate(msg)


def test_basic_facilities_are_warnings():
    msg = parse(sample("hl7x_adt_a04_types.hl7"))
    msg.set("MSH-4", "")
    msg.set("MSH-6", "")
    assert {(p.severity, p.location) for p in validate(msg)} == {
        ("warning", "MSH-4"), ("warning", "MSH-6")}


def test_basic_repetitions_and_components_located():
    msg = parse(sample("hl7x_adt_a04_types.hl7"))
    msg.set("PID-7", '""')  # the HL7 null: present, not checked as a date
    msg.set_raw("OBX-14", "20240101~bad")
    assert where(validate(msg)) == {("OBX-14[2]", "102")}
    msg = parse(sample("hl7x_orm_o01_v231.hl7"))
    msg.set("ORC-7.4", "soon")
    assert where(validate(msg)) == {("ORC-7.4", "102")}


def test_required_fields_strict_for_the_table_version_only():
    msg = parse(sample("hl7x_orm_o01_v231.hl7"))
    msg.set("OBR-4", "")
    assert {(p.severity, p.location) for p in validate(msg)} == {("warning", "OBR-4")}
    msg.set("MSH-12", "2.5.1")
    assert {(p.severity, p.location) for p in validate(msg)} == {("error", "OBR-4")}
    msg.set("MSH-12", "2.8")
    assert {(p.severity, p.location) for p in validate(msg)} == {("warning", "OBR-4")}


def test_segment_ids():
    msg = Message(["MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5.1", "1AB|x", "ZZZ|anything"])
    assert where(validate(msg)) == {("1AB", "100")}


def test_corpus_impossible_date_found(corpus: Path):
    path = corpus / "cdcgov-trusted-intermediary" / "examples" / "NewSTEPs"
    msg = parse((path / "002_NewSTEPs_ORU_R01.hl7").read_bytes())
    assert ("OBX[2]-14", "102") in where(validate(msg))


def test_whole_corpus_never_raises(corpus: Path):
    checked = 0
    for _, path in corpus_files(corpus):
        if path.suffix not in (".hl7", ".txt"):
            continue
        try:
            batch = parse_batch(path.read_bytes())
        except ParseError:  # the deliberately broken files are test_corpus.py's business
            continue
        for msg in batch.messages:
            for profile in PROFILES:
                for problem in validate(msg, profile):
                    assert problem.severity in ("error", "warning")
                    assert problem.code.isdigit()
            checked += 1
    assert checked > 300


def test_rules_only_skips_the_field_formats_but_keeps_the_profile_rules():
    samples = Path(__file__).resolve().parents[1] / "samples"
    text = (samples / "gateway_orm_o01_nw.hl7").read_text(encoding="utf-8")
    shifted = parse(text.replace("|US1|||US|||", "|US1||||US|||"))  # one field too many
    rules = validate(shifted, "ihe-swf", rules_only=True)
    assert {(p.location, p.code) for p in rules} == {("OBR-27.4", "101"), ("OBR-24", "101")}
    bad_type = parse(text.replace("|P|2.5.1", "|P|2.5.1|x").replace("PID|1|", "PID|one|"))
    assert any(p.location == "PID-1" for p in validate(bad_type, "ihe-swf"))
    assert not any(p.location == "PID-1"
                   for p in validate(bad_type, "ihe-swf", rules_only=True))
    assert validate(parse(text), "ihe-swf", rules_only=True) == []
