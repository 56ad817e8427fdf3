"""Differential test against python-hl7 (``hl7`` 0.4.5) on the corpus (tests/corpus).

For MSH-9, MSH-10, PID-3, PID-5, OBR-4 and every OBX-5, both parsers are asked for the
raw field text and for every leaf (repetition.component.subcomponent). Every difference
must match one of the explanations in ``EXPLAINED``; any other difference fails.

Differences found and explained (473 messages, when this was written):
- ``br``: 39 OBX-5 values (cdcgov NBS reports). python-hl7's unescape turns the formatting
  command ``\\.br\\`` into a CR. Accord keeps formatting commands verbatim in ``get`` (the
  value is still formatted text, HL7 v2.5.1 §2.7.6) and ``formatted_text`` turns them into
  line breaks for display; a CR in a value would also become a segment break on re-encoding.
  Neither is wrong; ours is lossless.
- ``cut``: 2 fields (dcm4che ORU^R01-PDF OBX-5, cdcgov TX OML^O21 OBR-4) hold a bare line
  break inside the data. python-hl7 ends the field there and makes the rest a bogus
  segment; Accord keeps the line as part of the field, with a warning on the message
  (``parse`` docstring), so nothing the sender sent is dropped. Ours is the lossless one.
Otherwise no difference in raw field text;
none in delimiters or escapes ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hl7
from accord.hl7 import Encoding, Message, ParseError, parse_batch
from hl7_corpus import corpus_files

FIELDS = [("MSH", 9), ("MSH", 10), ("PID", 3), ("PID", 5), ("OBR", 4), ("OBX", 5)]


def _br_as_cr(ours: str, theirs: str, enc: Encoding) -> bool:
    return ours.replace(f"{enc.escape}.br{enc.escape}", "\r") == theirs


def _cut_at_line_break(ours: str, theirs: str, enc: Encoding) -> bool:
    return "\r" in ours and theirs == ours.split("\r", 1)[0]


EXPLAINED: dict[str, Callable[[str, str, Encoding], bool]] = {
    "br": _br_as_cr,
    "cut": _cut_at_line_break,
}


def _leaf_paths(raw: str, enc: Encoding, base: str) -> list[tuple[str, int, int, int]]:
    out = []
    for r, rep in enumerate(raw.split(enc.repetition) if raw else [""], 1):
        for c, comp in enumerate(rep.split(enc.component), 1):
            subs = comp.split(enc.subcomponent) if enc.subcomponent else [comp]
            for s in range(1, len(subs) + 1):
                out.append((f"{base}[{r}].{c}.{s}", r, c, s))
    return out


def _compare(msg: Message, where: str, found: dict[str, int], unexplained: list[str]) -> int:
    theirs = hl7.parse(msg.to_er7())
    enc = msg.encoding
    compared = 0
    for seg_id, field in FIELDS:
        for occ in range(1, msg.count(seg_id) + 1):
            base = f"{seg_id}[{occ}]-{field}"
            raw = msg.get_raw(base)
            segment = theirs.segments(seg_id)[occ - 1]
            their_raw = str(segment[field]) if field < len(segment) else ""
            if "\r" in raw and their_raw == raw.split("\r", 1)[0]:
                found["cut"] = found.get("cut", 0) + 1
                continue
            if raw != their_raw:
                unexplained.append(f"{where} {base} raw: {raw[:40]!r} vs {their_raw[:40]!r}")
            for path, r, c, s in _leaf_paths(raw, enc, base):
                compared += 1
                ours = msg.get(path)
                their = theirs.extract_field(seg_id, segment_num=occ, field_num=field,
                                             repeat_num=r, component_num=c, subcomponent_num=s)
                if ours == their:
                    continue
                reason = next((k for k, ok in EXPLAINED.items() if ok(ours, their, enc)), None)
                if reason is None:
                    unexplained.append(f"{where} {path}: {ours[:40]!r} vs {their[:40]!r}")
                else:
                    found[reason] = found.get(reason, 0) + 1
    return compared


def test_against_python_hl7(corpus: Path) -> None:
    found: dict[str, int] = {}
    unexplained: list[str] = []
    compared = messages = 0
    for _, path in corpus_files(corpus):
        try:
            batch = parse_batch(path.read_bytes())
        except ParseError:
            continue  # the broken files are test_corpus.py's business
        for number, msg in enumerate(batch.messages, 1):
            messages += 1
            where = f"{path.relative_to(corpus)} #{number}"
            compared += _compare(msg, where, found, unexplained)
    assert not unexplained, "\n".join(unexplained[:50])
    assert messages > 450 and compared > 5000
    assert set(found) <= set(EXPLAINED)
    assert found.get("br", 0) > 0  # the known differences are still seen: the check is live
    assert found.get("cut", 0) == 2
