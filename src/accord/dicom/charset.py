"""Character sets and person names between HL7 v2 and DICOM.

Rules: pure functions, no I/O. The order's charset is its MSH-18 (HL7 v2.5.1 table 0211);
the worklist answers in the DICOM Specific Character Set (0008,0005) that carries the
same repertoire (PS3.3 C.12.1.1.2, PS3.5 §6.1). When the declared charset cannot carry
the values (an ASCII-declared message with umlauts), UTF-8 (ISO_IR 192) is used instead,
so a name is never mangled. Names go from XPN (HL7 §2.A.89: family ^ given ^ middle ^
suffix ^ prefix) to PN (PS3.5 §6.2: family ^ given ^ middle ^ prefix ^ suffix), with the
alphabetic, ideographic and phonetic component groups separated by ``=``.
"""

from __future__ import annotations

from collections.abc import Iterable

from accord.workflow.model import Demographics, PersonName

# HL7 table 0211 (and common spellings) -> DICOM defined terms (PS3.3 Table C.12-2/-3/-4).
# A tuple with a leading "" is a code-extension set: ASCII first, ISO 2022 escapes after.
_TERMS: dict[str, tuple[str, ...]] = {
    "ASCII": (),
    "ISO_IR 6": (),
    "8859/1": ("ISO_IR 100",),
    "8859/2": ("ISO_IR 101",),
    "8859/3": ("ISO_IR 109",),
    "8859/4": ("ISO_IR 110",),
    "8859/5": ("ISO_IR 144",),
    "8859/6": ("ISO_IR 127",),
    "8859/7": ("ISO_IR 126",),
    "8859/8": ("ISO_IR 138",),
    "8859/9": ("ISO_IR 148",),
    "8859/15": ("ISO_IR 203",),
    "ISO-8859-1": ("ISO_IR 100",),
    "LATIN-1": ("ISO_IR 100",),
    "LATIN1": ("ISO_IR 100",),
    "ISO IR14": ("ISO_IR 13",),
    "ISO IR87": ("", "ISO 2022 IR 87"),
    "ISO IR159": ("", "ISO 2022 IR 159"),
    "KS X 1001": ("", "ISO 2022 IR 149"),
    "GB 18030-2000": ("GB18030",),
    "UNICODE": ("ISO_IR 192",),
    "UNICODE UTF-8": ("ISO_IR 192",),
    "UNICODE UTF-16": ("ISO_IR 192",),
    "UNICODE UTF-32": ("ISO_IR 192",),
    "UTF-8": ("ISO_IR 192",),
    "UTF8": ("ISO_IR 192",),
}

# Python codecs able to encode each defined term, to check a value fits before choosing it.
_CODECS: dict[str, str] = {
    "": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 13": "shift_jis",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "iso2022_kr",
    "GB18030": "gb18030",
    "ISO_IR 192": "utf_8",
}

UTF8: tuple[str, ...] = ("ISO_IR 192",)


def specific_character_set(charset: str, values: Iterable[str] = ()) -> tuple[str, ...]:
    """The Specific Character Set (0008,0005) for an order's MSH-18 ``charset``.

    Returns the defined terms in order (empty: the default repertoire, ISO_IR 6).
    Falls back to ISO_IR 192 when ``charset`` is unknown or cannot encode ``values``.
    """
    key = " ".join(charset.strip().upper().replace("_", " ").split())
    terms = _TERMS.get(key) or _TERMS.get(charset.strip().upper())
    if terms is None:
        terms = () if not charset.strip() else UTF8
    return terms if _fits(terms, values) else UTF8


def _fits(terms: tuple[str, ...], values: Iterable[str]) -> bool:
    codec = _CODECS.get(terms[-1] if terms else "", "utf_8")
    try:
        for value in values:
            value.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _clean(component: str) -> str:
    # PN delimiters (^ = \) cannot appear inside a component (PS3.5 §6.2.1).
    return component.replace("^", " ").replace("=", " ").replace("\\", " ").strip()


def pn_group(name: PersonName | None) -> str:
    """One PN component group from an XPN: family^given^middle^prefix^suffix."""
    if name is None:
        return ""
    parts = [name.family, name.given, name.middle, name.prefix, name.suffix]
    return "^".join(_clean(p) for p in parts).rstrip("^")


def pn_from_xpn(
    alphabetic: PersonName | None,
    ideographic: PersonName | None = None,
    phonetic: PersonName | None = None,
) -> str:
    """A DICOM PN value (PS3.5 §6.2.1.2) from XPN names: ``alpha=ideographic=phonetic``."""
    groups = [pn_group(alphabetic), pn_group(ideographic), pn_group(phonetic)]
    return "=".join(groups).rstrip("=")


def patient_pn(demographics: Demographics) -> str:
    """Patient's Name (0010,0010) with all the component groups Accord knows."""
    return pn_from_xpn(
        demographics.name, demographics.ideographic_name, demographics.phonetic_name
    )


def pn_from_xcn(text: str) -> str:
    """A PN from a clinician as HL7 carries it (XCN: ID ^ family ^ given ^ middle ^ suffix ^
    prefix, ORC-12/OBR-16/OBR-34) or as a bare XPN (family ^ given ...) or free text."""
    comps = text.split("^")
    if len(comps) >= 2 and (comps[0] == "" or any(c.isdigit() for c in comps[0])):
        comps = comps[1:]
    padded = [*comps, "", "", "", "", ""]
    return pn_group(
        PersonName(
            family=padded[0], given=padded[1], middle=padded[2],
            suffix=padded[3], prefix=padded[4],
        )
    )
