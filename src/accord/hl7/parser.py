"""``parse``: bytes or text in, one ``Message`` out (HL7 v2.5.1 §2.5-2.7, §2.15.9).

Rules of this module:
- Pure: no I/O. Raises ``accord.errors.ParseError`` and nothing else, for any input,
  with a message naming the place (segment number, field).
- Segment terminators CR, LF, CRLF or mixed all end a segment (§2.5.2 says CR; real
  senders write all of them). A leading BOM, leading blank lines and trailing
  terminators are dropped; everything else is kept for an exact ``to_er7``.
- Delimiters come from MSH-1/MSH-2; MSH-2 may carry the v2.7 truncation character.
- Strategy for speed: split into segments and validate each segment ID up front;
  fields, repetitions and components are split later, only when read.
"""

from __future__ import annotations

from functools import lru_cache

from accord.errors import ParseError
from accord.hl7.charset import codec_for, decode
from accord.hl7.encoding import Encoding
from accord.hl7.message import Message

__all__ = ["parse", "read_encoding", "split_lines"]

_BATCH_HEADERS = ("FHS", "BHS", "BTS", "FTS")
_valid_ids: set[str] = set()


def _is_segment_id(text: str) -> bool:
    if text in _valid_ids:
        return True
    ok = (
        len(text) == 3
        and text.isascii()
        and text.isalnum()
        and text[0].isalpha()
        and text.upper() == text
    )
    if ok:
        _valid_ids.add(text)
    return ok


def split_lines(text: str) -> list[str]:
    """Lines of ER7 text: BOM and leading blank lines dropped, any terminator, trailing
    blank lines dropped."""
    if text[:1] == "\ufeff":
        text = text[1:]
    if text[:3] not in ("MSH", "FHS", "BHS"):
        text = text.lstrip(" \t\r\n\ufeff")
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = text.split("\r")
    while lines and (not lines[-1] or lines[-1].isspace()):
        lines.pop()
    return lines


def _preview(line: str) -> str:
    return repr(line[:20] + ("…" if len(line) > 20 else ""))


def read_encoding(header: str, where: str = "segment 1") -> tuple[Encoding, tuple[str, ...]]:
    """Delimiters from a header segment's first two fields (MSH-1, MSH-2; also FHS/BHS).

    Raises ParseError when they are unusable. The linuxforhealth spelling ``^~\\\\&`` (the
    escape character doubled) is read as ``^~\\&`` with a warning.
    """
    end = header.find(header[3], 4) if len(header) > 4 else -1
    if end == 4:
        name = header[:3]
        raise ParseError(f"{where}: {name}-2 (encoding characters) is empty",
                         location=f"{name}-2")
    try:
        return _encoding(header[:end] if end > 0 else header, end > 0)
    except ParseError as exc:
        raise ParseError(f"{where}: {exc}", location=exc.location) from None


@lru_cache(maxsize=256)
def _encoding(head: str, more: bool) -> tuple[Encoding, tuple[str, ...]]:
    """``head`` is the segment up to (not including) the separator after its field 2."""
    name = head[:3]
    if len(head) < 5:
        raise ParseError(f"{name} is too short to hold {name}-1 and {name}-2",
                         location=f"{name}-1")
    fs, chars = head[3], head[4:]
    if fs.isalnum() or fs.isspace():
        raise ParseError(f"{name}-1 (field separator) {fs!r} is not a delimiter",
                         location=f"{name}-1")
    if not more and name == "MSH":
        raise ParseError("MSH ends after MSH-2; it has no MSH-3…MSH-12", location="MSH-3")
    warnings: tuple[str, ...] = ()
    if len(chars) == 5 and chars[2] == chars[3]:
        warnings = (f"{name}-2 is {chars!r}: escape character doubled; read as "
                    f"{chars[:3] + chars[4]!r}",)
        chars = chars[:3] + chars[4]
    bad = (
        len(chars) > 5
        or len(set(chars)) != len(chars)
        or fs in chars
        or any(c.isalnum() or c.isspace() for c in chars)
    )
    if bad:
        raise ParseError(f"{name}-2 (encoding characters) {chars!r} is not usable: "
                         "up to 5 distinct delimiters expected", location=f"{name}-2")
    padded = [*chars, "", "", "", "", ""]
    return Encoding(fs, *padded[:5]), warnings


def _check_first(lines: list[str], where: str) -> str:
    if not lines:
        raise ParseError(f"{where}empty input: no MSH segment", location="MSH")
    first = lines[0]
    if first[:3] != "MSH":
        if first[:3] in _BATCH_HEADERS:
            raise ParseError(f"{where}segment 1 is {first[:3]}: a batch file; use parse_batch",
                             location=first[:3])
        raise ParseError(f"{where}segment 1 {_preview(first)} is not MSH: not an HL7 v2 message",
                         location="MSH")
    return first


def _continues_data(line: str, fs: str) -> bool:
    """Whether a non-segment line reads as the rest of the previous segment's data.

    Not when it starts with a short alphanumeric run then the field separator (a bad
    segment ID such as ``PIDX|``), nor when it holds control characters (binary junk).
    """
    head = line.split(fs, 1)[0] if fs in line else ""
    if 0 < len(head) <= 5 and head.isascii() and head.isalnum():
        return False
    return not any(c < " " and c != "\t" for c in line)


def _segments(
    lines: list[str], fs: str, where: str
) -> tuple[list[str], dict[int, list[str]] | None, tuple[str, ...]]:
    """The segment lines, the blank lines kept aside by the index they precede, and
    warnings.

    A line right after a segment (other than MSH) that neither starts a segment nor
    looks like a segment ID nor holds control characters is a bare line break inside
    that segment's data (real senders cut base64 OBX-5 or free text that way). It is
    kept as part of the segment, joined by CR, so the message is taken and ``to_er7``
    gives the same text back; a warning says so.
    """
    segments: list[str] = []
    gaps: dict[int, list[str]] | None = None
    warnings: list[str] = []
    after_segment = False
    for number, line in enumerate(lines, 1):
        seg_id = line[:3]
        if (len(line) == 3 or line[3:4] == fs) and _is_segment_id(seg_id):
            if seg_id == "MSH" and number > 1:
                raise ParseError(f"{where}segment {number} is a second MSH: the input holds "
                                 "several messages; use parse_batch", location="MSH")
            segments.append(line)
            after_segment = True
        elif not line or line.isspace():
            gaps = gaps or {}
            gaps.setdefault(len(segments), []).append(line)
            after_segment = False
        elif after_segment and segments[-1][:3] != "MSH" and _continues_data(line, fs):
            segments[-1] = segments[-1] + "\r" + line
            warnings.append(f"line {number}: a line break inside {segments[-1][:3]} data "
                            "(kept as part of the segment; a sender should escape it as \\X0D\\)")
        else:
            raise ParseError(
                f"{where}segment {number} {_preview(line)}: a segment starts with "
                f"a 3-character ID (A-Z, 0-9) then {fs!r}",
                location=f"segment {number}",
            )
    return segments, gaps, tuple(warnings)


def build_message(
    lines: list[str], charset: str | None, declared: str | None, warnings: tuple[str, ...],
    where: str = "",
) -> Message:
    """A Message from the lines of one message (first line MSH), checking segment IDs.

    ``charset``/``declared`` are None when the input was text: MSH-18 is then read from
    the message, since it still tells the charset of ``\\X..\\`` escapes.
    """
    enc, enc_warnings = read_encoding(_check_first(lines, where), f"{where}segment 1")
    segments, gaps, seg_warnings = _segments(lines, enc.field, where)
    message = Message(segments, encoding=enc, charset=charset or "utf-8",
                      declared_charset=declared or "",
                      warnings=warnings + enc_warnings + seg_warnings, gaps=gaps)
    if declared is None:
        declared = message.get_raw("MSH-18")
        if declared:
            codec = codec_for(declared)
            message.declare_charset(
                declared, "utf-8" if codec in (None, "utf-16", "utf-32") else codec
            )
    return message


def parse(data: bytes | str) -> Message:
    """Parse exactly one HL7 v2 message from bytes (decoded per MSH-18) or text.

    Raises ``ParseError`` (and nothing else) when ``data`` is not one HL7 v2 message; a
    file of several messages or a FHS/BHS batch goes to ``parse_batch``.
    """
    try:
        if isinstance(data, str):
            return build_message(split_lines(data), None, None, ())
        if isinstance(data, (bytes, bytearray, memoryview)):
            decoded = decode(bytes(data))
            return build_message(split_lines(decoded.text), decoded.charset, decoded.declared,
                                 decoded.warnings)
    except ParseError:
        raise
    except Exception as exc:  # a bug; still keep the promise that only ParseError escapes
        raise ParseError(f"internal error while parsing: {exc!r}") from exc
    raise ParseError(f"cannot parse a {type(data).__name__}: bytes or str expected")
