"""Encoding characters and escape sequences (HL7 v2.5.1 §2.5.4, §2.7; v2.7 §2.5.5.2).

Rules of this module:
- Separators come from MSH-1/MSH-2 (or FHS/BHS), whatever characters they are.
- ``unescape`` turns ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` when a v2.7 truncation
  character is declared) into the characters they stand for, and ``\\Xhh…\\`` into the
  bytes ``hh…`` decoded in the message's character set. Formatting commands (``\\.br\\``,
  ``\\H\\``, ``\\N\\``, ``\\.sp n\\``…), ``\\Cxxyy\\``, ``\\Mxxyyzz\\`` and ``\\Z…\\`` are kept
  verbatim, so that text meant for display keeps its layout: see ``formatted_text``.
- ``escape`` is the exact inverse: ``unescape(escape(v)) == v`` for every string ``v``.
  It keeps well-formed verbatim sequences (the same ones ``unescape`` keeps) so that
  ``set(path, get(path))`` leaves a report's ``\\.br\\`` alone.
- A malformed escape (lone escape character, unknown code) is kept literally: never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DEFAULT_ENCODING", "Encoding", "escape", "formatted_text", "unescape"]


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message: MSH-1 and the characters of MSH-2, in order.

    A character the message does not declare is ``""`` (e.g. ``MSH|^~}|`` has no
    subcomponent separator; ``truncation`` exists only from v2.7 on).
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        """The encoding characters as MSH-2 writes them."""
        return (
            self.component + self.repetition + self.escape + self.subcomponent + self.truncation
        )

    @property
    def separators(self) -> str:
        """Every delimiter, field separator first."""
        return self.field + self.msh2


DEFAULT_ENCODING = Encoding()

# Content of an escape sequence (between two escape characters) kept verbatim.
# HL7 v2.5.1 §2.7.2-2.7.6: formatting commands, character-set switches (\C..\, \M..\),
# locally defined \Z..\ escapes.
_VERBATIM = re.compile(
    r"\.(?:br|fi|nf|ce|(?:sp|in|ti|sk)(?: ?[+-]?\d+)?)"
    r"|H|N|C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4}(?:[0-9A-Fa-f]{2})?|Z[0-9A-Za-z]*"
)
_HEX = re.compile(r"X(?:[0-9A-Fa-f]{2})+")


def _simple_codes(enc: Encoding) -> dict[str, str]:
    codes = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": enc.escape,
    }
    if enc.truncation:
        codes["P"] = enc.truncation
    return {code: char for code, char in codes.items() if char}


def _decode_hex(hexdigits: str, charset: str) -> str:
    data = bytes.fromhex(hexdigits)
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        # A lone byte of a multi-byte sequence, or a charset lie: latin-1 never fails.
        return data.decode("latin-1")


def unescape(text: str, encoding: Encoding = DEFAULT_ENCODING, charset: str = "utf-8") -> str:
    """Replace the escape sequences of ``text`` (one leaf value) by what they stand for.

    ``charset`` is the codec for ``\\Xhh\\`` bytes (the message's ``charset``).
    """
    esc = encoding.escape
    if not esc or esc not in text:
        return text
    codes = _simple_codes(encoding)
    out: list[str] = []
    pos = 0
    end = len(text)
    while pos < end:
        start = text.find(esc, pos)
        if start < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:start])
        close = text.find(esc, start + 1)
        if close < 0:  # lone escape character: literal
            out.append(text[start:])
            break
        content = text[start + 1 : close]
        char = codes.get(content)
        if char is not None:
            out.append(char)
        elif _HEX.fullmatch(content):
            out.append(_decode_hex(content[1:], charset))
        elif _VERBATIM.fullmatch(content):
            out.append(text[start : close + 1])
        else:
            # Not an escape sequence: keep the escape character literally, rescan after it.
            out.append(esc)
            pos = start + 1
            continue
        pos = close + 1
    return "".join(out)


def _escape_plain(text: str, encoding: Encoding) -> str:
    """Escape a stretch holding no verbatim sequence."""
    esc = encoding.escape
    if esc:
        text = text.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (encoding.field, "F"),
        (encoding.component, "S"),
        (encoding.subcomponent, "T"),
        (encoding.repetition, "R"),
        (encoding.truncation, "P"),
    ):
        if char and char in text:
            text = text.replace(char, f"{esc}{code}{esc}")
    # A segment terminator inside a value would split the segment (§2.7.4: hex escape).
    if "\r" in text:
        text = text.replace("\r", f"{esc}X0D{esc}")
    if "\n" in text:
        text = text.replace("\n", f"{esc}X0A{esc}")
    return text


def escape(value: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Escape ``value`` so that it can stand as one leaf of a message (§2.7.1).

    Delimiters become ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (``\\P\\`` for the truncation
    character), CR and LF become ``\\X0D\\``/``\\X0A\\``; well-formed formatting and
    character-set sequences are kept, as ``unescape`` keeps them. ``ValueError`` if the
    value needs escaping and the encoding has no escape character.
    """
    esc = encoding.escape
    if not esc:
        if any(c in value for c in encoding.separators + "\r\n"):
            raise ValueError("the message declares no escape character: a delimiter, CR or "
                             "LF in a value cannot be encoded")
        return value
    if esc not in value:
        specials = encoding.separators + "\r\n"
        if not any(c in value for c in specials if c):
            return value
        return _escape_plain(value, encoding)
    out: list[str] = []
    plain_from = 0
    pos = 0
    while True:
        start = value.find(esc, pos)
        if start < 0:
            break
        close = value.find(esc, start + 1)
        if close < 0:
            break
        if _VERBATIM.fullmatch(value, start + 1, close) and not any(
            c in value[start + 1 : close] for c in encoding.separators
        ):
            out.append(_escape_plain(value[plain_from:start], encoding))
            out.append(value[start : close + 1])
            plain_from = pos = close + 1
        else:
            pos = start + 1
    out.append(_escape_plain(value[plain_from:], encoding))
    return "".join(out)


_FORMAT = re.compile(r"\.(br|fi|nf|ce|sp|in|ti|sk) ?([+-]?\d+)?|H|N")


def formatted_text(value: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    """A value as ``get`` returns it, laid out for display (§2.7.6, FT data type).

    ``\\.br\\`` is a line break, ``\\.sp n\\`` n line breaks, ``\\.sk n\\`` n spaces;
    ``\\.in\\ \\.ti\\ \\.ce\\ \\.fi\\ \\.nf\\`` and highlighting ``\\H\\ \\N\\`` are
    dropped. Takes the already unescaped value: it does not unescape again.
    """
    esc = encoding.escape
    if not esc or esc not in value:
        return value
    pattern = _format_pattern(esc)

    def layout(match: re.Match[str]) -> str:
        command, number = match.group(2), match.group(3)
        count = int(number) if number else 1
        if command == "br":
            return "\n"
        if command == "sp":
            return "\n" * max(count, 0)
        if command == "sk":
            return " " * max(count, 0)
        return ""

    return pattern.sub(layout, value)


@lru_cache(maxsize=16)
def _format_pattern(esc: str) -> re.Pattern[str]:
    return re.compile(re.escape(esc) + "(" + _FORMAT.pattern + ")" + re.escape(esc))
