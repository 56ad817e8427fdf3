"""Bytes to text by MSH-18 (HL7 v2.5.1 §2.15.9.18, table 0211), with sane fallbacks.

Rules of this module:
- MSH-18 is read from the bytes of the MSH segment (every table 0211 set we decode keeps
  ASCII bytes as ASCII in the header), so the message is decoded once.
- All-ASCII bytes (the common case) are decoded as ASCII whatever MSH-18 says.
- MSH-18 absent, ASCII or 8859/x but the bytes are valid UTF-8 with non-ASCII in them:
  decoded as UTF-8 with a warning (senders write UTF-8 and declare 8859/1 all the time).
- Bytes that fail in the declared set: tried as UTF-8, then ISO 8859-1, which never fails;
  a warning says so. Nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Decoded", "codec_for", "decode"]

# Table 0211 (and the DICOM-style "ISO IR 100" spelling some senders use) -> Python codec.
_CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "ISO IR14": "shift_jis",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR100": "iso8859-1",
    "ISO IR192": "utf-8",
    "KS X 1001": "euc_kr",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "BIG-5": "big5",
    "UNICODE": "utf-16",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "UTF-8": "utf-8",
}
for _n in range(1, 16):
    if _n != 12:  # there is no ISO 8859-12
        _CODECS[f"8859/{_n}"] = f"iso8859-{_n}"
_LATIN = frozenset(["ascii"] + [f"iso8859-{n}" for n in range(1, 16)])


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text of a message, the codec that produced it, MSH-18 as written, warnings."""

    text: str
    charset: str
    declared: str
    warnings: tuple[str, ...]


@lru_cache(maxsize=256)
def codec_for(declared: str) -> str | None:
    """The Python codec for an MSH-18 value (repetitions allowed), or None if unknown.

    With several repetitions (ISO 2022 code extension, §2.15.9.18) the widest set wins:
    ``ISO IR6~ISO IR87`` decodes as ISO-2022-JP.
    """
    names = [n.strip().upper() for n in declared.replace("~", "^").split("^") if n.strip()]
    codecs = [_CODECS.get(n) or _CODECS.get(n.replace("_", " ")) for n in names]
    known = [c for c in codecs if c]
    if not known:
        return None
    for wide in ("iso2022_jp_2", "iso2022_jp"):
        if wide in known:
            return wide
    return known[-1] if known[0] == "ascii" else known[0]


def declared_charset(data: bytes) -> str:
    """MSH-18 as written, read from the bytes of the first MSH segment ("" if absent)."""
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 8:
        return ""
    end = len(data)
    for term in (b"\r", b"\n"):
        pos = data.find(term, start)
        if 0 <= pos < end:
            end = pos
    header = data[start:end].decode("latin-1")
    if len(header) < 4:
        return ""
    fields = header.split(header[3])
    if len(fields) < 18:
        return ""
    return fields[17]


def _utf16(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if data.startswith(b"M\x00S\x00H\x00"):
        return "utf-16-le"
    if data.startswith(b"\x00M\x00S\x00H"):
        return "utf-16-be"
    return None


def _decode_wide(data: bytes) -> Decoded | None:
    """UTF-16 recognised by its byte order mark or by ``M\\0S\\0H\\0``; else None."""
    wide = _utf16(data)
    text = _try(data, wide) if wide is not None else None
    if wide is None or text is None:
        return None
    found = text.find("MSH")
    declared = declared_charset(text[found:].encode("latin-1", "replace")) if found >= 0 else ""
    return Decoded(text, wide, declared, ())


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode(data: bytes) -> Decoded:
    """Decode the bytes of one message (or one batch file) per MSH-18, never failing."""
    wide = _decode_wide(data)
    if wide is not None:
        return wide
    declared = declared_charset(data)
    codec = codec_for(declared) if declared else None
    if codec in ("utf-16", "utf-32"):
        codec = "utf-8"  # no UTF-16 byte pattern: senders writing "UNICODE" mean UTF-8
    if data.isascii():
        if codec is not None and codec.startswith("iso2022"):
            text = _try(data, codec)  # ISO 2022 is 7-bit: its escapes must be decoded
            if text is not None:
                return Decoded(text, codec, declared, ())
            codec = None
        return Decoded(data.decode("ascii"), codec or "utf-8", declared, ())
    warnings: list[str] = []
    if declared and codec is None:
        warnings.append(f"MSH-18 {declared!r} is not a known character set")
    if codec is not None and codec not in _LATIN:
        text = _try(data, codec)
        if text is not None:
            return Decoded(text, codec, declared, ())
    utf8 = _try(data, "utf-8")
    if utf8 is not None:
        # A UTF-8 byte order mark with no MSH-18 is a declaration in itself.
        bom = data.startswith(b"\xef\xbb\xbf") and codec is None and not warnings
        if codec != "utf-8" and not bom:
            said = f"MSH-18 says {declared}" if declared else "MSH-18 is empty"
            warnings.append(f"{said} but the bytes are UTF-8; decoded as UTF-8")
        return Decoded(utf8, "utf-8", declared, tuple(warnings))
    if codec is not None and codec != "ascii":
        text = _try(data, codec)
        if text is not None:
            return Decoded(text, codec, declared, tuple(warnings))
    said = f"MSH-18 {declared}" if declared else "an empty MSH-18"
    warnings.append(f"bytes are not valid in {said} nor UTF-8; decoded as ISO 8859-1")
    return Decoded(data.decode("latin-1"), "iso8859-1", declared, tuple(warnings))
