"""Decoding bytes by MSH-18 (table 0211) with fallbacks, on sample messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.hl7 import parse
from accord.hl7.charset import codec_for, decode


def test_latin1(load: Callable[[str], bytes]) -> None:
    msg = parse(load("hl7_latin1_8859-1.hl7"))
    assert msg.charset == "iso8859-1"
    assert msg.declared_charset == "8859/1"
    assert msg.get("PID-5") == "Müller^Zoë^Ñ"
    assert msg.warnings == ()


def test_msh18_lies_bytes_are_utf8(load: Callable[[str], bytes]) -> None:
    msg = parse(load("hl7_utf8_declared_8859-1.hl7"))
    assert msg.charset == "utf-8"
    assert msg.get("PID-5.1") == "Gärtner"
    assert msg.get("OBR-4.2") == "CT Thorax – nativ"
    assert msg.warnings == ("MSH-18 says 8859/1 but the bytes are UTF-8; decoded as UTF-8",)


def test_japanese_iso_ir87(load: Callable[[str], bytes]) -> None:
    data = load("hl7_japanese_iso_ir87.hl7")
    assert b"^" in data.split(b"PID")[1].split(b"||")[2]  # kanji bytes hold delimiters
    msg = parse(data)
    assert msg.charset == "iso2022_jp"
    assert msg.get("PID-5[1].1") == "東京"
    assert msg.get("PID-5[1].2") == "五郎"
    assert msg.get("PID-5[2].1") == "トウキョウ"
    assert msg.repetitions("PID-5") == 2


def test_korean_ks_x_1001(load: Callable[[str], bytes]) -> None:
    msg = parse(load("hl7_korean_ks_x_1001.hl7"))
    assert msg.charset == "euc_kr"
    assert msg.get("PID-5") == "홍^길동"
    assert msg.get("PID-5.2") == "길동"


def test_utf8_declared() -> None:
    text = "MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||FR|UNICODE UTF-8\rPID|1||1||Émile"
    msg = parse(text.encode())
    assert msg.charset == "utf-8"
    assert msg.get("PID-5") == "Émile"
    assert msg.warnings == ()


def test_undecodable_falls_back_to_latin1_with_warning() -> None:
    data = b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||FR|UNICODE UTF-8\rPID|1||1||\xe9\xff"
    msg = parse(data)
    assert msg.charset == "iso8859-1"
    assert msg.get("PID-5") == "\xe9\xff"
    assert msg.warnings and "ISO 8859-1" in msg.warnings[0]


def test_unknown_charset_is_a_warning() -> None:
    data = b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||FR|KLINGON\rPID|1||1||\xc3\xa9"
    msg = parse(data)
    assert msg.get("PID-5") == "é"
    assert any("KLINGON" in w for w in msg.warnings)


def test_utf16_with_bom() -> None:
    text = "MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||DE|UNICODE UTF-16\rPID|1||1||Jürgen"
    msg = parse(text.encode("utf-16"))
    assert msg.charset == "utf-16"
    assert msg.get("PID-5") == "Jürgen"


def test_hex_escape_uses_message_charset() -> None:
    data = b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||DE|8859/1\rPID|1||1||J\\XFC\\rgen"
    assert parse(data).get("PID-5") == "Jürgen"


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("ASCII", "ascii"),
        ("8859/1", "iso8859-1"),
        ("8859/15", "iso8859-15"),
        ("UNICODE UTF-8", "utf-8"),
        ("ISO IR87", "iso2022_jp"),
        ("~ISO IR87", "iso2022_jp"),
        ("ISO IR6~ISO IR87~ISO IR159", "iso2022_jp_2"),
        ("KS X 1001", "euc_kr"),
        ("GB 18030-2000", "gb18030"),
        ("BIG-5", "big5"),
        ("nonsense", None),
    ],
)
def test_codec_for(declared: str, codec: str | None) -> None:
    assert codec_for(declared) == codec


def test_decode_reads_msh18_without_decoding_twice() -> None:
    decoded = decode(b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5|||||DE|8859/1\rPID|1||1||\xfc")
    assert decoded.declared == "8859/1"
    assert decoded.charset == "iso8859-1"
    assert decoded.text.endswith("ü")
