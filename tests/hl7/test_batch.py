"""parse_batch: FHS/BHS…BTS/FTS files and bare files of many messages (§2.10.3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.hl7 import ParseError, parse, parse_batch

MSH = "MSH|^~\\&|RIS|HOSP|EHR|HOSP|20240101120000||ADT^A08|{}|P|2.5.1"


def test_fhs_bhs_batch(load: Callable[[str], bytes]) -> None:
    data = load("hl7_batch_fhs.hl7")
    batch = parse_batch(data)
    assert [m.control_id for m in batch.messages] == ["B1", "B2"]
    assert [m.get("PID-5.1") for m in batch.messages] == ["ONE", "TWO"]
    assert batch.file_header is not None and batch.file_header.get("9") == "file1"
    assert batch.batch_header is not None and batch.batch_header.get("9") == "batch1"
    assert batch.batch_header.get("2") == "^~\\&"
    assert batch.batch_trailer is not None and batch.batch_trailer.get("1") == "2"
    assert batch.file_trailer is not None and batch.file_trailer.get("1") == "1"
    assert batch.warnings == ()
    assert batch.to_er7() == data.decode().rstrip("\r")


def test_count_mismatch_is_a_warning(load: Callable[[str], bytes]) -> None:
    batch = parse_batch(load("hl7_batch_bad_count.hl7"))
    assert len(batch.messages) == 2
    assert batch.warnings == ("BTS-1 says 3 messages but the file holds 2",)


def test_file_count_mismatch() -> None:
    text = "\r".join(["FHS|^~\\&", "BHS|^~\\&", MSH.format(1), "BTS|1", "FTS|2"])
    assert parse_batch(text).warnings == ("FTS-1 says 2 batches but the file holds 1",)


def test_bare_file_of_messages_with_blank_lines_and_lf() -> None:
    text = "\n\n".join(f"{MSH.format(n)}\nPID|1||{n}" for n in range(1, 6)) + "\n\n"
    batch = parse_batch(text.encode())
    assert [m.get("PID-3") for m in batch.messages] == ["1", "2", "3", "4", "5"]
    assert batch.file_header is None and batch.batch_header is None
    assert batch.messages[4].to_er7() == f"{MSH.format(5)}\rPID|1||5"


def test_single_message_is_a_batch_of_one() -> None:
    batch = parse_batch(f"{MSH.format(1)}\rPID|1")
    assert len(batch.messages) == 1


def test_messages_with_their_own_delimiters() -> None:
    text = f"{MSH.format(1)}\rPID|1||A^B\rMSH#!@%*#X#Y\rPID#1##C!D"
    batch = parse_batch(text)
    assert [m.get("PID-3.2") for m in batch.messages] == ["B", "D"]


def test_empty_batch_is_allowed() -> None:
    batch = parse_batch("FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1")
    assert batch.messages == []
    assert batch.warnings == ()


def test_charset_of_the_file(load: Callable[[str], bytes]) -> None:
    data = b"\r".join([load("hl7_latin1_8859-1.hl7"), load("hl7_latin1_8859-1.hl7")])
    batch = parse_batch(data)
    assert batch.charset == "iso8859-1"
    assert [m.get("PID-5.1") for m in batch.messages] == ["Müller", "Müller"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("", "no MSH"),
        ("hello\rMSH|^~\\&|A", "before any MSH"),
        ("PID|1\rMSH|^~\\&|A", "before any MSH"),
        (f"{MSH.format(1)}\rPID|1\r{MSH.format(2)}\rPIDX|1", "message 2"),
        ("FHS|^~\\&\rMSH|^~\\&|A\rFTS|1\rPID|1", "after FTS"),
        ("FHS||x", "FHS-2"),
        (b"\xff\xfe\x00garbage", "MSH"),
    ],
)
def test_errors(data: str | bytes, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_batch(data)
    assert words in str(info.value)


def test_parse_refuses_a_batch(load: Callable[[str], bytes]) -> None:
    with pytest.raises(ParseError, match="parse_batch"):
        parse(load("hl7_batch_fhs.hl7"))
    with pytest.raises(ParseError, match="parse_batch"):
        parse(f"{MSH.format(1)}\r{MSH.format(2)}")
