"""Segment/field/data type tables (accord.hl7.spec) and the JSON view built on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accord.hl7 import parse, parse_batch
from accord.hl7._spec_data import COMPOSITES
from accord.hl7.spec import (
    PRIMITIVES,
    component_name,
    component_names,
    component_type,
    describe,
    field_name,
    field_spec,
    field_type,
    known_segments,
    segment_fields,
    segment_name,
)

REQUIRED_SEGMENTS = (
    "MSH", "EVN", "PID", "PD1", "NK1", "PV1", "PV2", "MRG", "ORC", "OBR", "OBX", "NTE", "TQ1",
    "SCH", "AIS", "AIG", "AIL", "AIP", "RGS", "IPC", "ZDS", "MSA", "ERR", "AL1", "DG1", "IN1",
    "GT1", "TXA", "SPM", "QRD", "BHS", "BTS", "FHS", "FTS", "SFT", "PRT",
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> bytes:
    """The bytes of ``tests/samples/<name>`` (sources in tests/samples/hl7x_README.md)."""
    return (SAMPLES / name).read_bytes()


def test_every_asked_segment_is_defined_with_contiguous_fields():
    assert set(REQUIRED_SEGMENTS) <= set(known_segments())
    for seg in known_segments():
        fields = segment_fields(seg)
        assert fields, seg
        assert [f.sequence for f in fields] == list(range(1, len(fields) + 1)), seg
        assert segment_name(seg), seg


def test_every_type_used_is_known():
    for seg in known_segments():
        for f in segment_fields(seg):
            assert f.data_type in PRIMITIVES or f.data_type in COMPOSITES, f.location
    for name, comps in COMPOSITES.items():
        for comp, ctype in comps:
            assert ctype in PRIMITIVES or ctype in COMPOSITES, f"{name}.{comp}"


@pytest.mark.parametrize(
    ("seg", "n", "name", "dtype"),
    [
        ("MSH", 9, "Message Type", "MSG"),
        ("MSH", 10, "Message Control ID", "ST"),
        ("MSH", 18, "Character Set", "ID"),
        ("PID", 3, "Patient Identifier List", "CX"),
        ("PID", 5, "Patient Name", "XPN"),
        ("PID", 7, "Date/Time of Birth", "TS"),
        ("PV1", 19, "Visit Number", "CX"),
        ("MRG", 1, "Prior Patient Identifier List", "CX"),
        ("ORC", 1, "Order Control", "ID"),
        ("OBR", 4, "Universal Service Identifier", "CE"),
        ("OBR", 18, "Placer Field 1", "ST"),
        ("OBR", 24, "Diagnostic Serv Sect ID", "ID"),
        ("OBR", 27, "Quantity/Timing", "TQ"),
        ("OBX", 5, "Observation Value", "varies"),
        ("TQ1", 7, "Start Date/Time", "TS"),
        ("IPC", 1, "Accession Identifier", "EI"),
        ("IPC", 3, "Study Instance UID", "EI"),
        ("IPC", 5, "Modality", "CE"),
        ("ZDS", 1, "Study Instance UID", "RP"),
        ("MSA", 2, "Message Control ID", "ST"),
        ("ERR", 2, "Error Location", "ERL"),
        ("ERR", 3, "HL7 Error Code", "CWE"),
        ("PRT", 4, "Participation", "CWE"),
    ],
)
def test_field_names_and_types(seg, n, name, dtype):
    assert field_name(seg, n) == name
    assert field_type(seg, n) == dtype


def test_unknown_segment_or_field_is_empty():
    assert field_name("ZZZ", 1) == ""
    assert field_type("PID", 99) == ""
    assert field_type("PID", 0) == ""
    assert field_spec("ZXY", 1) is None
    assert segment_name("ZZZ") == ""
    assert component_names("ST") == ()
    assert component_names("NOPE") == ()


def test_field_spec_flags():
    pid3 = field_spec("PID", 3)
    assert pid3 is not None
    assert pid3.required and pid3.repeatable and pid3.location == "PID-3"
    assert field_spec("PID", 8).table == "0001"
    assert not field_spec("PID", 1).required


@pytest.mark.parametrize(
    ("dtype", "first"),
    [
        ("CX", ("ID Number", "Check Digit", "Check Digit Scheme", "Assigning Authority",
                "Identifier Type Code", "Assigning Facility")),
        ("XPN", ("Family Name", "Given Name",
                 "Second and Further Given Names or Initials Thereof",
                 "Suffix (e.g. JR or III)", "Prefix (e.g. DR)", "Degree (e.g. MD)",
                 "Name Type Code")),
        ("XAD", ("Street Address", "Other Designation", "City", "State or Province",
                 "Zip or Postal Code", "Country", "Address Type")),
        ("XTN", ("Telephone Number", "Telecommunication Use Code",
                 "Telecommunication Equipment Type", "Email Address", "Country Code",
                 "Area City Code", "Local Number", "Extension")),
        ("HD", ("Namespace ID", "Universal ID", "Universal ID Type")),
        ("EI", ("Entity Identifier", "Namespace ID", "Universal ID", "Universal ID Type")),
        ("CE", ("Identifier", "Text", "Name of Coding System", "Alternate Identifier",
                "Alternate Text", "Name of Alternate Coding System")),
        ("CWE", ("Identifier", "Text", "Name of Coding System")),
        ("TS", ("Time", "Degree of Precision")),
        ("XCN", ("ID Number", "Family Name", "Given Name")),
        ("PL", ("Point of Care", "Room", "Bed", "Facility")),
        ("MSG", ("Message Code", "Trigger Event", "Message Structure")),
        ("PT", ("Processing ID", "Processing Mode")),
        ("VID", ("Version ID", "Internationalization Code", "International Version ID")),
        ("CQ", ("Quantity", "Units")),
        ("TQ", ("Quantity", "Interval", "Duration", "Start Date/Time", "End Date/Time")),
        ("RP", ("Pointer", "Application ID", "Type of Data", "Subtype")),
        ("ERL", ("Segment ID", "Segment Sequence", "Field Position", "Field Repetition",
                 "Component Number", "Sub Component Number")),
    ],
)
def test_component_names(dtype, first):
    assert component_names(dtype)[: len(first)] == first


def test_component_lookups():
    assert component_type("CX", 4) == "HD"
    assert component_type("TQ", 4) == "TS"
    assert component_name("XPN", 1) == "Family Name"
    assert component_name("XPN", 99) == ""
    assert component_type("ST", 1) == ""


def test_describe_shape():
    msg = parse(sample("hl7x_adt_a04_types.hl7"))
    data = describe(msg)
    json.dumps(data)  # plain data only
    assert set(data) == {"message_type", "control_id", "version", "charset",
                         "declared_charset", "warnings", "segments"}
    assert data["message_type"] == "ADT^A04"
    assert [s["id"] for s in data["segments"]] == ["MSH", "EVN", "PID", "PV1", "OBX"]
    msh = data["segments"][0]
    assert msh["name"] == "Message Header"
    by_path = {f["path"]: f for f in msh["fields"]}
    assert by_path["MSH-1"]["repetitions"] == [[["|"]]]
    assert by_path["MSH-2"]["repetitions"] == [[["^~\\&"]]]  # never split
    assert by_path["MSH-9"]["repetitions"] == [[["ADT"], ["A04"], ["ADT_A01"]]]
    pid = {f["path"]: f for f in data["segments"][2]["fields"]}
    pid3 = pid["PID-3"]
    assert pid3["name"] == "Patient Identifier List" and pid3["type"] == "CX"
    assert pid3["components"][3] == "Assigning Authority"
    assert pid3["repetitions"][0][3] == ["HOSP", "1.2.840.99999.2", "ISO"]
    assert len(pid3["repetitions"]) == 3
    assert pid3["raw"].startswith("MRN7001^^^HOSP&")
    assert pid["PID-5"]["position"] == 5
    assert "PID-2" not in pid  # only valued fields


def test_describe_repeated_segments_and_unescaping():
    batch = parse_batch(sample("hl7x_two_messages.hl7"))
    data = describe(batch.messages[1])
    pid5 = next(f for f in data["segments"][2]["fields"] if f["position"] == 5)
    assert pid5["repetitions"] == [[["TWO"], ["SECOND^PART"]]]
    assert pid5["raw"] == "TWO^SECOND\\S\\PART"
    oru = parse(sample("hl7x_adt_a04_types.hl7").replace(
        b"OBX|1|", b"OBX|1|NM|x||1\rOBX|2|"))
    paths = [f["path"] for s in describe(oru)["segments"] if s["id"] == "OBX"
             for f in s["fields"][:1]]
    assert paths == ["OBX[1]-1", "OBX[2]-1"]
