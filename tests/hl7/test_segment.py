"""Segment: lazy fields, header numbering, growth on set, messages missing delimiters."""

from __future__ import annotations

import pytest

from accord.hl7 import Message, parse


def test_header_field_numbering() -> None:
    msh = parse("MSH|^~\\&|APP|FAC").segments[0]
    assert msh.get("1") == "|"
    assert msh.get("2") == "^~\\&"
    assert msh.get("2.1") == "^~\\&"
    assert msh.get("2.2") == ""
    assert msh.get("3") == "APP"
    assert msh.field_count == 4
    assert msh.to_er7() == "MSH|^~\\&|APP|FAC"


def test_fields_split_only_when_read() -> None:
    msg = parse("MSH|^~\\&|A\rPID|1||X")
    pid = msg.segments[1]
    assert pid._fields is None
    assert pid.get("3") == "X"
    assert pid._fields == ["PID", "1", "", "X"]


def test_message_without_subcomponent_separator() -> None:
    msg = parse("MSH|^~\\|A\rPID|1||A&B^C")
    assert msg.encoding.subcomponent == ""
    assert msg.get("PID-3.1") == "A&B"
    assert msg.get("PID-3.1.1") == "A&B"
    assert msg.get("PID-3.1.2") == ""
    msg.set("PID-3.1.1", "Z")
    assert msg.get("PID-3") == "Z^C"
    with pytest.raises(ValueError):
        msg.set("PID-3.1.2", "Z")


def test_message_without_escape_character() -> None:
    msg = parse("MSH|^~|A\rPID|1||A\\S\\B")
    assert msg.get("PID-3") == "A\\S\\B"  # no escape character: backslash is data
    msg.set("PID-4", "plain")
    assert msg.get("PID-4") == "plain"
    with pytest.raises(ValueError):
        msg.set("PID-4", "a^b")


def test_add_segment_needs_a_bare_id() -> None:
    msg = Message.new("ADT^A01")
    with pytest.raises(ValueError):
        msg.add_segment("PID-3")
    with pytest.raises(ValueError):
        msg.add_segment("OBX[2]")
    seg = msg.add_segment("PID")
    seg.set("3[2].4.2", "x")
    assert seg.to_er7() == "PID|||~^^^&x"
    assert seg.field_count == 3
