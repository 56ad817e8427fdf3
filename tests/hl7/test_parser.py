"""parse(): delimiters, terminators, leading/trailing noise, and errors that name the place."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.hl7 import Encoding, ParseError, parse

BASE = "MSH|^~\\&|SND|FAC|RCV|FAC|20240101120000||ADT^A08^ADT_A01|C1|P|2.5.1"
PID = "PID|1||123^^^HOSP^MR~456^^^NHS^NH||DOE^JOHN^^^DR||19800101|M"


def test_standard_message() -> None:
    msg = parse(f"{BASE}\r{PID}")
    assert msg.message_type == "ADT^A08"
    assert msg.control_id == "C1"
    assert msg.version == "2.5.1"
    assert msg.encoding == Encoding("|", "^", "~", "\\", "&", "")
    assert [s.id for s in msg.segments] == ["MSH", "PID"]
    assert msg.get("PID-3[2].1") == "456"
    assert msg.warnings == ()


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_terminators(terminator: str) -> None:
    msg = parse(f"{BASE}{terminator}{PID}{terminator}")
    assert msg.get("PID-5.1") == "DOE"
    assert msg.to_er7() == f"{BASE}\r{PID}"


def test_mixed_terminators_bom_and_blank_lines() -> None:
    text = f"\ufeff\r\n\n{BASE}\r\n{PID}\nOBX|1\rNTE|1\r\n\r\n\n"
    msg = parse(text)
    assert [s.id for s in msg.segments] == ["MSH", "PID", "OBX", "NTE"]
    assert msg.to_er7() == f"{BASE}\r{PID}\rOBX|1\rNTE|1"


def test_bom_in_bytes() -> None:
    msg = parse(b"\xef\xbb\xbf" + f"{BASE}\r{PID}".encode())
    assert msg.to_er7().startswith("MSH|")


def test_interior_blank_line_is_kept_for_round_trip() -> None:
    text = f"{BASE}\r\r{PID}"
    msg = parse(text)
    assert msg.count("PID") == 1
    assert msg.to_er7() == text


def test_trailing_empty_fields_are_kept() -> None:
    text = f"{BASE}\rPID|1||123||||||||"
    msg = parse(text)
    assert msg.to_er7() == text
    assert msg.get("PID-9") == ""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("MSH|^~\\}|", Encoding("|", "^", "~", "\\", "}", "")),
        ("MSH|^~}|", Encoding("|", "^", "~", "}", "", "")),
        ("MSH#!@%*#", Encoding("#", "!", "@", "%", "*", "")),
        ("MSH^~|\\&^", Encoding("^", "~", "|", "\\", "&", "")),
        ("MSH|^~\\&#|", Encoding("|", "^", "~", "\\", "&", "#")),
    ],
)
def test_non_standard_delimiters(header: str, expected: Encoding) -> None:
    fs, cs, rs = expected.field, expected.component, expected.repetition
    text = f"{header}A{fs}B{cs}C{rs}D"
    msg = parse(text)
    assert msg.encoding == expected
    assert msg.get("MSH-3") == "A"
    assert msg.get("MSH-4.2") == "C"
    assert msg.get("MSH-4[2]") == "D"
    assert msg.get("MSH-1") == fs
    assert msg.get("MSH-2") == header[4:-1]
    assert msg.to_er7() == text


def test_custom_delimiters_read_fields() -> None:
    msg = parse("MSH#!@%*#SND#FAC#RCV#FAC#2026##ADT!A01#M7#P#2.5\rPID#1##12345!!!MRN##DOE!JOHN")
    assert msg.message_type == "ADT^A01"
    assert msg.get("PID-3.4") == "MRN"
    assert msg.get("PID-5.2") == "JOHN"


def test_doubled_escape_in_msh2_is_read_with_a_warning() -> None:
    msg = parse("MSH|^~\\\\&|SE050|050|PACS|050|2012||ADT^A01|102|T|2.3\rPID|1||A\\S\\B")
    assert msg.encoding == Encoding("|", "^", "~", "\\", "&", "")
    assert msg.get("PID-3") == "A^B"
    assert msg.get("MSH-2") == "^~\\\\&"
    assert any("doubled" in w for w in msg.warnings)
    assert msg.to_er7().startswith("MSH|^~\\\\&|")


def test_truncation_character_v27(load: Callable[[str], bytes]) -> None:
    msg = parse(load("hl7_v27_truncation.hl7"))
    assert msg.encoding.truncation == "#"
    assert msg.get("PID-5.1") == "LONGNAM#"
    assert msg.get("OBX-5") == "value with # hash and | bar"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        ("", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"PID|1||123", "not MSH"),
        (b"MSH", "too short"),
        (b"MSH|", "too short"),
        (b"MSH|^~\\&", "MSH-3"),
        (b"MSH||A|B", "MSH-2"),
        (b"MSHA^~\\&A", "MSH-1"),
        (b"MSH|^^\\&|A", "MSH-2"),
        (b"MSH|^~\\&|A\rPIDX|1", "segment 2"),
        (b"MSH|^~\\&|A\rPV|1", "segment 2"),
        (b"MSH|^~\\&|A\rpid|1", "segment 2"),
        (b"MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B", "parse_batch"),
        (b"FHS|^~\\&|A\rMSH|^~\\&|B", "parse_batch"),
        (b"\x00\x01\x02garbage", "not MSH"),
    ],
)
def test_errors_name_the_place(data: bytes | str, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(data)
    assert words in str(info.value)
    assert info.value.ack_code == "AR"


def test_not_bytes_or_str() -> None:
    with pytest.raises(ParseError):
        parse(12345)  # type: ignore[arg-type]


def test_bytearray_and_memoryview() -> None:
    data = f"{BASE}\r{PID}".encode()
    assert parse(bytearray(data)).get("PID-5.1") == "DOE"
    assert parse(memoryview(data)).get("PID-5.1") == "DOE"


def test_segment_ids_with_digits_and_z_segments() -> None:
    msg = parse(f"{BASE}\rZDS|1.2.3^PACS^Application^DICOM\rIN1|1\rZ01|x")
    assert msg.get("ZDS-1.1") == "1.2.3"
    assert msg.get("Z01-1") == "x"


def test_bare_segment_id_line() -> None:
    msg = parse(f"{BASE}\rPID\rPV1|1")
    assert msg.get("PID-1") == ""
    assert msg.to_er7() == f"{BASE}\rPID\rPV1|1"


def test_bare_line_break_inside_data_continues_the_segment() -> None:
    # dcm4che's ORU^R01-PDF.hl7 cuts a base64 OBX-5 with a CR; cdcgov's TX OML cuts OBR-4.
    text = ("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\r"
            "OBX|1|ED|X||QUJD\nA0KJSVFT0YNCg==||||||F\rNTE|1")
    msg = parse(text)
    assert [s.id for s in msg.segments] == ["MSH", "OBX", "NTE"]
    assert msg.get("OBX-5") == "QUJD\rA0KJSVFT0YNCg=="
    assert msg.get("OBX-11") == "F"
    assert any("line break inside OBX" in w for w in msg.warnings)
    again = parse(msg.to_er7())
    assert again.get("OBX-5") == msg.get("OBX-5") and again.get("NTE-1") == "1"


@pytest.mark.parametrize(
    "text",
    [
        # a short alphanumeric run before the separator is a bad segment ID, not data
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPIDX|1\rPV1|1",
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPV|1|I",
        # prose after a blank line is no continuation of anything
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\r\rRemap OBR with OBR-4\rPID|1",
    ],
)
def test_lines_that_are_not_segments_still_fail(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)
