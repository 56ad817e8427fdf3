"""HL7 v2 core: parse, read, build and re-encode messages losslessly. Pure: no I/O."""

from accord.errors import ParseError
from accord.hl7.batch import Batch, parse_batch
from accord.hl7.encoding import DEFAULT_ENCODING, Encoding, escape, formatted_text, unescape
from accord.hl7.message import Message, Segment
from accord.hl7.parser import parse

__all__ = [
    "DEFAULT_ENCODING",
    "Batch",
    "Encoding",
    "Message",
    "ParseError",
    "Segment",
    "escape",
    "formatted_text",
    "parse",
    "parse_batch",
    "unescape",
]
