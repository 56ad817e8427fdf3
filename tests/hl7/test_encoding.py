"""Escape sequences (HL7 v2.5.1 §2.7) and the Encoding value."""

from __future__ import annotations

import pytest

from accord.hl7 import Encoding, escape, formatted_text, unescape

CUSTOM = Encoding("#", "!", "@", "%", "*", "")
V27 = Encoding(truncation="#")


@pytest.mark.parametrize(
    ("er7", "value"),
    [
        ("plain", "plain"),
        ("A\\F\\B", "A|B"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\B", "A&B"),
        ("A\\R\\B", "A~B"),
        ("A\\E\\B", "A\\B"),
        ("\\F\\\\S\\\\T\\\\R\\\\E\\", "|^&~\\"),
        ("x\\X41\\y", "xAy"),
        ("\\X0D0A\\", "\r\n"),
        ("\\XC3A9\\", "é"),
        ("line\\.br\\next", "line\\.br\\next"),
        ("\\H\\bold\\N\\", "\\H\\bold\\N\\"),
        ("a\\.sp 2\\b\\.in +4\\c\\.ti -2\\d\\.sk 3\\e\\.ce\\f\\.fi\\g\\.nf\\",
         "a\\.sp 2\\b\\.in +4\\c\\.ti -2\\d\\.sk 3\\e\\.ce\\f\\.fi\\g\\.nf\\"),
        ("\\C2842\\\\M2442\\\\Zlocal1\\", "\\C2842\\\\M2442\\\\Zlocal1\\"),
        ("lone \\ backslash", "lone \\ backslash"),
        ("ends with \\", "ends with \\"),
        ("\\Q\\unknown", "\\Q\\unknown"),
        ("\\X4\\odd hex", "\\X4\\odd hex"),
        ("\\P\\", "\\P\\"),  # no truncation character declared: kept
    ],
)
def test_unescape(er7: str, value: str) -> None:
    assert unescape(er7) == value


def test_unescape_hex_in_the_message_charset() -> None:
    assert unescape("\\XE9\\", charset="iso8859-1") == "é"
    assert unescape("\\XB0A1\\", charset="euc_kr") == "가"
    # a lone byte of a UTF-8 sequence does not fail: latin-1 fallback
    assert unescape("\\XC3\\", charset="utf-8") == "Ã"


def test_unescape_truncation_and_custom_delimiters() -> None:
    assert unescape("A\\P\\B", V27) == "A#B"
    assert unescape("A%F%B%S%C%E%", CUSTOM) == "A#B!C%"


@pytest.mark.parametrize(
    ("value", "er7"),
    [
        ("O'Brien^Jr", "O'Brien\\S\\Jr"),
        ("a|b~c&d\\e", "a\\F\\b\\R\\c\\T\\d\\E\\e"),
        ("two\r\nlines", "two\\X0D\\\\X0A\\lines"),
        ("keep\\.br\\this", "keep\\.br\\this"),
        ("C:\\temp\\x", "C:\\E\\temp\\E\\x"),
        ("", ""),
    ],
)
def test_escape(value: str, er7: str) -> None:
    assert escape(value) == er7
    assert unescape(escape(value)) == value


def test_escape_truncation_and_custom() -> None:
    assert escape("A#B", V27) == "A\\P\\B"
    assert escape("A#B!C%", CUSTOM) == "A%F%B%S%C%E%"


@pytest.mark.parametrize(
    "value",
    ["\\.br\\", "x\\.br|\\", "\\\\", "\\E\\", "\\.sp 2\\\\H\\", "a\\X41\\b", "\\Z^\\"],
)
def test_escape_is_inverted_by_unescape(value: str) -> None:
    assert unescape(escape(value)) == value


def test_formatted_text() -> None:
    value = unescape("Line one\\.br\\two\\.sp 2\\\\H\\bold\\N\\\\.sk 2\\x\\.in +4\\y")
    assert formatted_text(value) == "Line one\ntwo\n\nbold  xy"


def test_formatted_text_does_not_unescape_twice() -> None:
    assert formatted_text(unescape("a\\E\\F\\E\\b")) == "a\\F\\b"


def test_encoding_strings() -> None:
    assert Encoding().msh2 == "^~\\&"
    assert V27.msh2 == "^~\\&#"
    assert CUSTOM.separators == "#!@%*"
