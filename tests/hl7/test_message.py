"""Message/Segment reading (the non-leaf rule), set/escape, building from scratch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.hl7 import DEFAULT_ENCODING, Encoding, Message, parse

TEXT = "\r".join([
    "MSH|^~\\&|RIS|HOSP|PACS|IMG|20240315083000||ORM^O01^ORM_O01|MSG1|P|2.5.1",
    "PID|1||PAT1^^^HOSP&1.2.3&ISO^MR~99^^^NHS^NH||O\\T\\BRIEN^ANN^^^DR||19700101|F",
    "OBX|1|TX|A||first",
    "OBX|2|TX|B||second~again",
    "OBX|3|FT|C||line\\.br\\two \\S\\ x",
])


@pytest.fixture
def msg() -> Message:
    return parse(TEXT)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("MSH-1", "|"),
        ("MSH-2", "^~\\&"),
        ("MSH-3", "RIS"),
        ("MSH-9", "ORM^O01^ORM_O01"),  # non-leaf with separators: ER7 as received
        ("MSH-9.1", "ORM"),
        ("MSH-9.3", "ORM_O01"),
        ("MSH-9.4", ""),
        ("PID-3", "PAT1^^^HOSP&1.2.3&ISO^MR~99^^^NHS^NH"),  # every repetition
        ("PID-3[1]", "PAT1^^^HOSP&1.2.3&ISO^MR"),
        ("PID-3[2]", "99^^^NHS^NH"),
        ("PID-3[3]", ""),
        ("PID-3.1", "PAT1"),  # no repetition index: the first
        ("PID-3[2].4", "NHS"),
        ("PID-3.4", "HOSP&1.2.3&ISO"),
        ("PID-3.4.2", "1.2.3"),
        ("PID-3.4.4", ""),
        ("PID-3[2].4.1", "NHS"),  # a leaf asked as its first subcomponent
        ("PID-3[2].4.2", ""),
        ("PID-5.1", "O&BRIEN"),  # unescaped
        ("PID-5", "O\\T\\BRIEN^ANN^^^DR"),  # non-leaf: escapes intact
        ("PID-7", "19700101"),
        ("PID-7.1", "19700101"),
        ("PID-7.2", ""),
        ("PID-7[2]", ""),
        ("PID-99", ""),
        ("OBX-5", "first"),
        ("OBX[2]-5", "second~again"),
        ("OBX[2]-5[2]", "again"),
        ("OBX[3]-5", "line\\.br\\two ^ x"),  # leaf: unescaped, formatting kept
        ("OBX[4]-5", ""),
        ("PV1-2", ""),
        ("PID", "PID|1||PAT1^^^HOSP&1.2.3&ISO^MR~99^^^NHS^NH||O\\T\\BRIEN^ANN^^^DR||19700101|F"),
    ],
)
def test_get(msg: Message, path: str, value: str) -> None:
    assert msg.get(path) == value


def test_get_raw_keeps_escapes(msg: Message) -> None:
    assert msg.get_raw("PID-5.1") == "O\\T\\BRIEN"
    assert msg.get_raw("OBX[3]-5") == "line\\.br\\two \\S\\ x"
    assert msg.get_raw("PID-3") == msg.get("PID-3")


def test_malformed_path_raises_value_error(msg: Message) -> None:
    with pytest.raises(ValueError):
        msg.get("PID3")
    with pytest.raises(ValueError):
        msg.set("PID", "x")


def test_counts_and_segments(msg: Message) -> None:
    assert msg.count("OBX") == 3
    assert msg.count("ZZZ") == 0
    assert [s.get("1") for s in msg.segments_named("OBX")] == ["1", "2", "3"]
    assert msg.repetitions("PID-3") == 2
    assert msg.repetitions("OBX[2]-5") == 2
    assert msg.repetitions("PID-7") == 1
    assert msg.repetitions("PID-2") == 0
    assert msg.repetitions("ZZZ-1") == 0
    assert msg.segment("OBX", 2) is msg.segments_named("OBX")[1]
    assert msg.segment("OBX", 9) is None


def test_segment_access(msg: Message) -> None:
    pid = msg.segments[1]
    assert pid.id == "PID"
    assert pid.get("3[2].1") == "99"
    assert pid.get_raw("5.1") == "O\\T\\BRIEN"
    assert pid.field_count == 8
    assert msg.segments[0].get("2") == "^~\\&"
    assert msg.segments[0].field_count == 12


def test_set_escapes_and_reencodes_only_that_segment(msg: Message) -> None:
    msg.set("PID-5.1", "O'Brien^Jr")
    assert msg.get_raw("PID-5.1") == "O'Brien\\S\\Jr"
    assert msg.get("PID-5.1") == "O'Brien^Jr"
    assert msg.get("PID-5.2") == "ANN"
    lines = msg.to_er7().split("\r")
    assert lines[0] == TEXT.split("\r")[0]
    assert lines[1] == (
        "PID|1||PAT1^^^HOSP&1.2.3&ISO^MR~99^^^NHS^NH||O'Brien\\S\\Jr^ANN^^^DR||19700101|F"
    )
    assert parse(msg.to_er7()).get("PID-5.1") == "O'Brien^Jr"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("PID-9", "X", "X"),
        ("PID-9.3", "X", "^^X"),
        ("PID-9[3]", "X", "~~X"),
        ("PID-9[2].2.3", "X", "~^&&X"),
        ("PID-9", "a|b~c", "a\\F\\b\\R\\c"),
    ],
)
def test_set_grows(msg: Message, path: str, value: str, field: str) -> None:
    msg.set(path, value)
    assert msg.get_raw("PID-9") == field
    assert msg.get(path) == value
    assert msg.to_er7().split("\r")[1].endswith("|F|" + field)


def test_set_inside_existing_structure(msg: Message) -> None:
    msg.set("PID-3[2].4", "NEW")
    assert msg.get("PID-3") == "PAT1^^^HOSP&1.2.3&ISO^MR~99^^^NEW^NH"
    msg.set("PID-3.4.2", "9.9")
    assert msg.get("PID-3[1]") == "PAT1^^^HOSP&9.9&ISO^MR"


def test_set_empty_beyond_the_end_does_not_grow(msg: Message) -> None:
    before = msg.to_er7()
    msg.set("PID-20", "")
    msg.set("PID-7.5", "")
    assert msg.to_er7() == before


def test_set_appends_missing_segments(msg: Message) -> None:
    msg.set("ZDS-1.1", "1.2.3.4")
    msg.set("NTE[2]-3", "note")
    assert msg.to_er7().split("\r")[-3:] == ["ZDS|1.2.3.4", "NTE", "NTE|||note"]
    assert msg.count("NTE") == 2


def test_set_raw_does_not_escape(msg: Message) -> None:
    msg.set_raw("PID-5", "DOE^JOHN")
    assert msg.get("PID-5.2") == "JOHN"
    with pytest.raises(ValueError):
        msg.set_raw("PID-5", "a\rb")


def test_delimiter_fields_cannot_be_set(msg: Message) -> None:
    with pytest.raises(ValueError):
        msg.set("MSH-1", "#")
    with pytest.raises(ValueError):
        msg.set("MSH-2", "^~\\&")


def test_segment_set(msg: Message) -> None:
    obx = msg.segments_named("OBX")[0]
    obx.set("5", "a^b")
    assert obx.get_raw("5") == "a\\S\\b"
    assert msg.get("OBX-5") == "a^b"
    obx.set_raw("6", "mm^millimetre")
    assert msg.get("OBX-6.2") == "millimetre"


def test_build_from_scratch(walk: Callable[[Message], dict[str, str]]) -> None:
    msg = Message.new(
        "ACK^O01^ACK",
        control_id="ACK1",
        timestamp="20240315083001",
        sending_application="ACCORD",
        receiving_application="RIS",
        charset="UNICODE UTF-8",
    )
    msa = msg.add_segment("MSA")
    msa.set("1", "AA")
    msa.set("2", "MSG1")
    msg.add_segment("ERR").set("3.1", "Ré^sumé")
    assert msg.to_er7() == (
        "MSH|^~\\&|ACCORD||RIS||20240315083001||ACK^O01^ACK|ACK1|P|2.5.1||||||UNICODE UTF-8\r"
        "MSA|AA|MSG1\rERR|||Ré\\S\\sumé"
    )
    assert msg.message_type == "ACK^O01"
    assert msg.encoding == DEFAULT_ENCODING
    again = parse(msg.to_er7().encode("utf-8"))
    assert walk(again) == walk(msg)
    assert again.get("ERR-3.1") == "Ré^sumé"


def test_build_with_other_encoding() -> None:
    enc = Encoding("#", "!", "@", "%", "*", "")
    msg = Message.new("ORM!O01", encoding=enc)
    msg.set("PID-5.1", "A#B")
    assert msg.to_er7().endswith("PID#####A%F%B")
    assert parse(msg.to_er7()).get("PID-5.1") == "A#B"


def test_add_segment_rejects_bad_ids(msg: Message) -> None:
    with pytest.raises(ValueError):
        msg.add_segment("pid")
    with pytest.raises(ValueError):
        msg.add_segment("MSH")


def test_repr(msg: Message) -> None:
    assert "ORM^O01" in repr(msg)
    assert "PID" in repr(msg.segments[1])
