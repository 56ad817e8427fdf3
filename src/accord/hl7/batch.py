"""``parse_batch``: files of many messages (HL7 v2.5.1 §2.10.3 batch protocol).

Rules of this module:
- A file is either a FHS/BHS … BTS/FTS batch or a bare sequence of messages; each
  message starts at a segment beginning with ``MSH`` and its field separator.
- The bytes are decoded once for the whole file (MSH-18 of the first message).
- BTS-1 (batch message count) and FTS-1 (file batch count) are checked; a mismatch is a
  warning on the batch, not an error (the messages themselves are fine).
- Anything else that is not a segment, or a broken message, raises ``ParseError``
  naming the message and segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from accord.errors import ParseError
from accord.hl7.charset import decode
from accord.hl7.encoding import DEFAULT_ENCODING
from accord.hl7.message import Message
from accord.hl7.parser import build_message, read_encoding, split_lines
from accord.hl7.segment import Segment, _Context

__all__ = ["Batch", "parse_batch"]


@dataclass(slots=True)
class Batch:
    """The messages of one file, with its batch envelope segments when present."""

    messages: list[Message]
    file_header: Segment | None = None
    batch_header: Segment | None = None
    batch_trailer: Segment | None = None
    file_trailer: Segment | None = None
    warnings: tuple[str, ...] = ()
    charset: str = "utf-8"

    def to_er7(self) -> str:
        """The whole file as ER7: envelope segments and messages joined by CR."""
        parts: list[str] = []
        for seg in (self.file_header, self.batch_header):
            if seg is not None:
                parts.append(seg.to_er7())
        parts.extend(m.to_er7() for m in self.messages)
        for seg in (self.batch_trailer, self.file_trailer):
            if seg is not None:
                parts.append(seg.to_er7())
        return "\r".join(parts)


class _Reader:
    """Walks the lines of a file, cutting it into messages and envelope segments."""

    def __init__(
        self, charset: str | None, declared: str | None, warnings: tuple[str, ...]
    ) -> None:
        self.charset = charset
        self.enc = DEFAULT_ENCODING
        self.declared = declared
        self.warnings = list(warnings)
        self.batch = Batch(messages=[], charset=charset or "utf-8")
        self.chunk: list[str] = []
        self.chunk_line = 0
        self.in_batch = 0  # messages since the last BHS
        self.batches = 0
        self.ended = False

    def envelope(self, line: str, number: int) -> Segment:
        if line[:3] in ("FHS", "BHS"):
            enc, warns = read_encoding(line, f"line {number}")
            self.warnings.extend(warns)
            self.enc = enc
        return Segment(line[:3], line, _Context(self.enc, self.charset or "utf-8"))

    def flush(self) -> None:
        if not self.chunk:
            return
        where = f"message {len(self.batch.messages) + 1} (line {self.chunk_line}): "
        lines = self.chunk
        while lines and (not lines[-1] or lines[-1].isspace()):
            lines.pop()
        message = build_message(lines, self.charset, self.declared, (), where)
        self.batch.messages.append(message)
        self.in_batch += 1
        self.chunk = []

    def check_count(self, seg: Segment, expected: int, what: str) -> None:
        written = seg.get("1")
        if written and written.strip().isdigit() and int(written) != expected:
            self.warnings.append(f"{seg.id}-1 says {written.strip()} {what} but the file "
                                 f"holds {expected}")

    def line(self, line: str, number: int) -> None:
        head = line[:3]
        if self.ended and line.strip():
            raise ParseError(f"line {number}: content after FTS (end of file)",
                             location=f"line {number}")
        if head == "MSH" and len(line) > 3 and not line[3].isalnum():
            self.flush()
            self.chunk = [line]
            self.chunk_line = number
        elif head in ("FHS", "BHS", "BTS", "FTS") and len(line) > 3 and not line[3].isalnum():
            self.flush()
            self.on_envelope(head, line, number)
        elif self.chunk:
            self.chunk.append(line)
        elif line.strip():
            raise ParseError(f"line {number}: {line[:20]!r} comes before any MSH: not an HL7 "
                             "v2 message or batch", location=f"line {number}")

    def on_envelope(self, head: str, line: str, number: int) -> None:
        seg = self.envelope(line, number)
        batch = self.batch
        if head == "FHS":
            batch.file_header = batch.file_header or seg
        elif head == "BHS":
            batch.batch_header = batch.batch_header or seg
            self.in_batch = 0
            self.batches += 1
        elif head == "BTS":
            batch.batch_trailer = seg
            self.check_count(seg, self.in_batch, "messages")
        else:
            batch.file_trailer = seg
            self.check_count(seg, max(self.batches, 1), "batches")
            self.ended = True


def parse_batch(data: bytes | str) -> Batch:
    """Parse a file holding one or more messages, with or without a FHS/BHS envelope.

    Raises ``ParseError`` (and nothing else) when the file holds no message or a part of
    it is not HL7; warnings (count mismatches, charset fallbacks) are on ``Batch.warnings``.
    """
    try:
        return _parse_batch(data)
    except ParseError:
        raise
    except Exception as exc:  # a bug; still keep the promise that only ParseError escapes
        raise ParseError(f"internal error while parsing a batch: {exc!r}") from exc


def _parse_batch(data: bytes | str) -> Batch:
    warnings: tuple[str, ...] = ()
    charset: str | None = None
    declared: str | None = None
    if isinstance(data, str):
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        decoded = decode(bytes(data))
        text, charset, declared = decoded.text, decoded.charset, decoded.declared
        warnings = decoded.warnings
    else:
        raise ParseError(f"cannot parse a {type(data).__name__}: bytes or str expected")
    reader = _Reader(charset, declared, warnings)
    for number, line in enumerate(split_lines(text), 1):
        reader.line(line, number)
    reader.flush()
    batch = reader.batch
    if not batch.messages and batch.file_header is None and batch.batch_header is None:
        raise ParseError("no MSH segment: not an HL7 v2 message or batch", location="MSH")
    if reader.batches > 1:
        reader.warnings.append(f"the file holds {reader.batches} batches; "
                               "batch_header/batch_trailer are the first and last")
    batch.warnings = tuple(reader.warnings)
    if charset is None and batch.messages:
        batch.charset = batch.messages[0].charset
    return batch
