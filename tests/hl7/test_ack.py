"""Acknowledgments (accord.hl7.ack): original and enhanced mode, ERR, rejects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.errors import ApplyError, ParseError, RejectError
from accord.hl7 import Message, parse, parse_batch
from accord.hl7.ack import (
    ACCEPT_CODES,
    TABLE_0357,
    AckError,
    accept_ack_wanted,
    ack_code_of,
    ack_mode,
    ack_text,
    acked_control_id,
    application_ack_wanted,
    build_ack,
    build_reject,
    erl_of,
)
from accord.hl7.validate import Problem
from hl7_corpus import corpus_files

NOW = datetime(2024, 3, 15, 8, 31, 2, tzinfo=UTC)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> bytes:
    """The bytes of ``tests/samples/<name>`` (sources in tests/samples/hl7x_README.md)."""
    return (SAMPLES / name).read_bytes()


def original() -> Message:
    """ADT^A08 v2.5.1 without MSH-15/16: original mode."""
    return parse_batch(sample("hl7x_two_messages.hl7")).messages[0]


def enhanced() -> Message:
    """ADT^A04 v2.5.1 with MSH-15 AL, MSH-16 NE: enhanced mode."""
    return parse(sample("hl7x_adt_a04_types.hl7"))


def v231() -> Message:
    return parse(sample("hl7x_orm_o01_v231.hl7"))


def test_original_mode_aa():
    msg = original()
    assert ack_mode(msg) == "original"
    ack = build_ack(msg, "AA", now=NOW, control_id="ACC-1")
    assert [s.id for s in ack.segments] == ["MSH", "MSA"]
    # sender and receiver swapped
    assert (ack.get("MSH-3"), ack.get("MSH-4"), ack.get("MSH-5"), ack.get("MSH-6")) == (
        "PACS", "IMAGING", "RIS", "RADIOLOGY")
    assert ack.get("MSH-7") == "20240315083102+0000"
    assert ack.get("MSH-9") == "ACK^A08^ACK"
    assert ack.control_id == "ACC-1"
    assert (ack.get("MSH-11"), ack.version) == ("P", "2.5.1")
    assert ack_code_of(ack) == "AA"
    assert acked_control_id(ack) == "MULTI1"
    assert ack.get("MSA-3") == ""
    assert parse(ack.to_er7()).to_er7() == ack.to_er7()


def test_enhanced_mode_maps_to_accept_codes_and_keeps_msh18():
    msg = enhanced()
    assert ack_mode(msg) == "enhanced"
    for code, accept in ACCEPT_CODES.items():
        ack = build_ack(msg, code, now=NOW, control_id="X")
        assert ack_code_of(ack) == accept
    assert ack_code_of(build_ack(msg, "CA", now=NOW, control_id="X")) == "CA"
    ack = build_ack(msg, "AA", now=NOW, control_id="X")
    assert ack.get("MSH-18") == "UNICODE UTF-8"
    assert ack.get_raw("MSH-6") == "GENERAL^1.2.840.99999.1^ISO"  # composite HD kept whole
    assert ack.get("MSH-9") == "ACK^A04^ACK"
    assert acked_control_id(ack) == "ADT0007"
    assert ack.get("MSH-15") == "" and ack.get("MSH-16") == ""  # an ACK asks for no ACK


def test_same_encoding_characters():
    raw = sample("hl7x_two_messages.hl7").split(b"MSH", 2)[1]
    odd = parse((b"MSH" + raw).replace(b"|", b"#").replace(b"^", b"%"))
    ack = build_ack(odd, "AE", now=NOW, control_id="Z",
                    error=AckError("101", "PID-3.4"), text="a # and % in it")
    er7 = ack.to_er7()
    assert er7.startswith("MSH#%~\\&#")
    assert ack.get("MSH-9") == "ACK%A08%ACK"
    assert ack.get("MSA-3") == "a # and % in it"
    assert ack.get_raw("ERR-2") == "PID%1%3%1%4"


def test_now_offset_and_naive():
    paris = timezone(timedelta(hours=1))
    ack = build_ack(original(), "AA", now=NOW.astimezone(paris), control_id="X")
    assert ack.get("MSH-7") == "20240315093102+0100"
    ack = build_ack(original(), "AA", now=datetime(2024, 1, 2, 3, 4, 5), control_id="X")
    assert ack.get("MSH-7") == "20240102030405"


@pytest.mark.parametrize("code", ["100", "101", "102", "103", "200", "201", "202", "203",
                                  "204", "205", "206", "207"])
def test_err_segment_for_each_table_0357_code(code):
    error = AckError(code, "PID-3.4", "E", "detail for the user")
    ack = build_ack(original(), "AE", now=NOW, control_id="X", error=error, text="rejected")
    assert [s.id for s in ack.segments] == ["MSH", "MSA", "ERR"]
    assert ack.get("MSA-1") == "AE"
    assert ack.get("MSA-3") == "rejected"
    assert ack.get("ERR-1") == ""  # v2.5+: ERR-2/3/4, not the v2.3 ERR-1
    assert ack.get("ERR-2") == "PID^1^3^1^4"
    assert (ack.get("ERR-3.1"), ack.get("ERR-3.2"), ack.get("ERR-3.3")) == (
        code, TABLE_0357[code], "HL70357")
    assert ack.get("ERR-4") == "E"
    assert ack.get("ERR-8") == "detail for the user"


def test_err_warning_and_no_location():
    ack = build_ack(original(), "AA", now=NOW, control_id="X",
                    error=AckError("103", "", "W", "unknown code kept"))
    assert ack.get("ERR-2") == ""
    assert ack.get("ERR-3.1") == "103"
    assert ack.get("ERR-4") == "W"


@pytest.mark.parametrize(
    ("location", "erl"),
    [
        ("PID", ("PID", "1")),
        ("PID-3", ("PID", "1", "3", "1")),
        ("PID-3[2].4", ("PID", "1", "3", "2", "4")),
        ("PID-3.4.2", ("PID", "1", "3", "1", "4", "2")),
        ("OBX[3]-5", ("OBX", "3", "5", "1")),
        ("segment 4", ()),
        ("", ()),
    ],
)
def test_erl_of(location, erl):
    assert erl_of(location) == erl


def test_v23_style_err1_before_v25():
    ack = build_ack(v231(), "AE", now=NOW, control_id="X",
                    error=AckError("101", "OBR[1]-18", text="accession missing"))
    assert ack.version == "2.3.1"
    assert ack.get("MSH-9") == "ACK^O01^ACK"
    assert ack.get_raw("ERR-1") == "OBR^1^18^101&Required field missing&HL70357"
    assert ack.get("ERR-1.4.1") == "101"
    assert ack.get("ERR-2") == "" and ack.get("ERR-3") == ""


def test_from_exception():
    err = AckError.from_exception(ApplyError("unknown order", location="ORC-2",
                                             error_code="204"))
    assert (err.code, err.location, err.severity, err.text) == (
        "204", "ORC-2", "E", "unknown order")
    assert AckError.from_exception(ApplyError("missing", location="PID-3")).code == "207"
    assert AckError.from_exception(ParseError("bad")).code == "102"
    assert AckError.from_exception(RejectError("no such type")).code == "200"
    internal = AckError.from_exception(KeyError("x"))
    assert (internal.code, internal.text) == ("207", "Application internal error")


def test_exception_to_ack():
    exc = ApplyError("no order for accession", location="OBR-18", error_code="204")
    ack = build_ack(original(), exc.ack_code, now=NOW, control_id="X",
                    error=AckError.from_exception(exc), text=str(exc))
    assert (ack.get("MSA-1"), ack.get("ERR-3.1"), ack.get("ERR-2")) == ("AE", "204",
                                                                       "OBR^1^18^1")


def test_rejects_unknown_code():
    with pytest.raises(ValueError):
        build_ack(original(), "OK", now=NOW, control_id="X")


@pytest.mark.parametrize(
    ("msh15", "ok", "error"),
    [("AL", True, True), ("NE", False, False), ("ER", False, True), ("SU", True, False),
     ("", True, True)],
)
def test_accept_ack_wanted(msh15, ok, error):
    msg = enhanced()
    msg.set("MSH-15", msh15)
    assert accept_ack_wanted(msg, "AA") is ok
    assert accept_ack_wanted(msg, "CA") is ok
    assert accept_ack_wanted(msg, "AE") is error
    assert accept_ack_wanted(msg, "CR") is error


def test_application_ack_wanted_follows_msh16():
    msg = enhanced()  # MSH-16 NE
    assert not application_ack_wanted(msg, "AA")
    assert not application_ack_wanted(msg, "AE")
    msg.set("MSH-16", "ER")
    assert (application_ack_wanted(msg, "AA"), application_ack_wanted(msg, "AE")) == (
        False, True)
    msg.set("MSH-16", "")
    assert ack_mode(msg) == "enhanced"  # MSH-15 AL alone keeps enhanced mode
    assert application_ack_wanted(msg, "AA")


def test_original_mode_always_wants_an_ack():
    assert accept_ack_wanted(original(), "AA")
    assert accept_ack_wanted(original(), "AR")
    assert application_ack_wanted(original(), "AE")


def test_several_errors_from_validation_problems():
    problems = [Problem("error", "PID-3.4", "101", "assigning authority missing"),
                Problem("warning", "OBX[2]-14", "102", "bad date")]
    ack = build_ack(original(), "AE", now=NOW, control_id="X",
                    error=[AckError.from_problem(p) for p in problems])
    assert [s.id for s in ack.segments] == ["MSH", "MSA", "ERR", "ERR"]
    assert (ack.get("ERR[1]-2"), ack.get("ERR[1]-3.1"), ack.get("ERR[1]-4")) == (
        "PID^1^3^1^4", "101", "E")
    assert (ack.get("ERR[2]-2"), ack.get("ERR[2]-3.1"), ack.get("ERR[2]-4")) == (
        "OBX^2^14^1", "102", "W")
    assert ack.get("ERR[2]-8") == "bad date"
    assert [s.id for s in build_ack(original(), "AA", now=NOW, control_id="X",
                                    error=[]).segments] == ["MSH", "MSA"]


def test_build_reject_salvages_header():
    raw = b"MSH|^~\\&|LAB|NORTH|RIS|SOUTH|2024|x|ORM^O01|CTRL9|P|2.3\rthis is not a segment"
    with pytest.raises(ParseError):
        parse(raw)
    out = build_reject(raw, reason="segment 2 is not a segment", now=NOW, control_id="R1")
    assert isinstance(out, bytes)
    ack = parse(out)
    assert ack_code_of(ack) == "AR"
    assert acked_control_id(ack) == "CTRL9"
    assert (ack.get("MSH-3"), ack.get("MSH-4"), ack.get("MSH-5"), ack.get("MSH-6")) == (
        "RIS", "SOUTH", "LAB", "NORTH")
    assert ack.get("MSH-9") == "ACK^O01^ACK"
    assert ack.get("MSA-3") == "segment 2 is not a segment"
    assert ack.get("ERR-1.4.1") == "102"  # v2.3: ERR-1


def test_build_reject_of_junk_text():
    out = build_reject("hello world", reason="not HL7", now=NOW, control_id="R2",
                       error_code="100")
    assert isinstance(out, str)
    ack = parse(out)
    assert (ack_code_of(ack), acked_control_id(ack), ack.control_id) == ("AR", "", "R2")
    assert ack.version == "2.5.1"
    assert (ack.get("ERR-3.1"), ack.get("ERR-4"), ack.get("ERR-8")) == ("100", "E", "not HL7")


def test_build_reject_other_separators():
    raw = "MSH#%~\\&#APP#FAC#ME#HERE#2024##ADT%A01#C77#P#2.5\r\x00\x01garbage"
    ack = parse(build_reject(raw, reason="binary", now=NOW, control_id="R3"))
    assert ack.encoding.field == "#"
    assert (acked_control_id(ack), ack.get("MSH-5"), ack.get("MSH-9")) == (
        "C77", "APP", "ACK%A01%ACK")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"", b"MSH|^~\\&|", b"MSH|", b"MSH"]))
def test_build_reject_always_parses(junk, prefix):
    out = build_reject(prefix + junk, reason="junk | with ^ separators\r", now=NOW,
                       control_id="R")
    ack = parse(out)
    assert ack_code_of(ack) == "AR"
    assert ack.control_id == "R"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["MSH|^~\\&|", "MSH#%~\\&#", "MSH^^^^^", "x\rMSH|"]))
def test_build_reject_of_any_text_parses(text, prefix):
    out = build_reject(prefix + text, reason="bad", now=NOW, control_id="R")
    assert isinstance(out, str)
    ack = parse(out)
    assert (ack_code_of(ack), ack.control_id) == ("AR", "R")


def test_build_reject_with_an_over_long_msh2_uses_the_standard_delimiters():
    # found by hypothesis: six "encoding characters" cannot be echoed into a parseable ACK
    out = build_reject("x\rMSH|:;<=/.", reason="bad", now=NOW, control_id="R")
    ack = parse(out)
    assert (ack_code_of(ack), ack.control_id, ack.encoding.msh2) == ("AR", "R", "^~\\&")


def _parsed(corpus: Path) -> Iterator[Message]:
    """Every corpus message that parses."""
    for _, path in corpus_files(corpus):
        try:
            yield parse(path.read_bytes())
        except ParseError:
            continue


@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_ack_text_is_build_ack_as_er7(corpus: Path, code: str) -> None:
    """Ingest sends ``ack_text`` without parsing it: it must equal the parsed ACK's ER7
    for every corpus message that parses (original and enhanced mode, any encoding)."""
    err = AckError("101", "PID-3", "E", "bad") if code != "AA" else None
    checked = 0
    for msg in _parsed(corpus):
        text = ack_text(msg, code, now=NOW, control_id="ACK1", error=err)
        assert text == build_ack(msg, code, now=NOW, control_id="ACK1", error=err).to_er7()
        checked += 1
    assert checked > 300


def test_the_ack_echoes_the_msh_fields_as_received(corpus: Path) -> None:
    """MSH-3/4/5/6/10 (swapped as §2.9.2 asks) and MSH-11/12/18 of every corpus message
    that parses are echoed exactly as ``get_raw`` reads them, escapes intact."""
    checked = 0
    for msg in _parsed(corpus):
        ack = parse(ack_text(msg, "AA", now=NOW, control_id="ACK1"))
        echoed = [ack.get_raw(f"MSH-{n}") for n in (3, 4, 5, 6, 11, 12, 18)]
        assert echoed == [msg.get_raw(f"MSH-{n}") for n in (5, 6, 3, 4)] + [
            msg.get_raw("MSH-11") or "P", msg.get_raw("MSH-12") or "2.5.1",
            msg.get_raw("MSH-18")]
        assert ack.get_raw("MSA-2") == msg.get_raw("MSH-10")
        checked += 1
    assert checked > 300


def test_the_code_of_an_ack_as_received() -> None:
    from accord.hl7 import ack_code_in

    assert ack_code_in(b"MSH|^~\\&|PACS|H|ACCORD|H|20260302||ACK|A1|P|2.5.1\rMSA|AE|X1\r") == "AE"
    assert ack_code_in(b"") == "" and ack_code_in(None) == ""
    assert ack_code_in(b"not an ACK at all") == ""
