"""Fuzz target: the HL7 v2 parser and the ACK builder (``python fuzz/run.py hl7``).

Documented outcomes: ``parse`` and ``parse_batch`` return a message or raise
``ParseError``. Anything else is a bug. For input that parses, the AA and AE built for it
parse again and echo MSH-10 in MSA-2, and ``to_er7`` parses back to the same MSH-10; for
input that does not, the AR built from whatever MSH can be salvaged parses.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports(include=["accord"]):
    from accord.errors import ParseError
    from accord.hl7 import parse, parse_batch
    from accord.hl7.ack import AckError, ack_text, build_reject

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def TestOneInput(data: bytes) -> None:
    try:
        msg = parse(data)
    except ParseError:
        reject = build_reject(data, reason="not HL7", now=NOW, control_id="AR1")
        assert isinstance(reject, bytes)
        parse(reject)  # the sender must be able to read its AR
        return
    control = msg.get("MSH-10")
    assert parse(msg.to_er7()).get("MSH-10") == control
    for code, error in (("AA", None), ("AE", AckError("101", "PID-3", "E", "missing"))):
        ack = parse(ack_text(msg, code, now=NOW, control_id="ACK1", error=error))
        assert ack.get("MSA-2") == control, (ack.get("MSA-2"), control)
    with contextlib.suppress(ParseError):
        parse_batch(data)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
