"""Fuzz target: the MLLP framer (``python fuzz/run.py framing``).

Documented outcomes: the framer never raises on any bytes, and its events do not depend
on how the stream is cut into reads (the first byte picks the cut points and the limits).
Any exception, or two cuttings giving different events, is a bug.
"""

from __future__ import annotations

import itertools
import sys

import atheris

with atheris.instrument_imports(include=["accord"]):
    from accord.mllp.framing import Event, Framer


def _events(chunks: list[bytes], max_frame: int, max_junk: int | None) -> list[Event]:
    framer = Framer(max_frame_bytes=max_frame, max_junk_bytes=max_junk)
    out: list[Event] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while (event := framer.next_event()) is not None:
            out.append(event)
    framer.receive_eof()
    while (event := framer.next_event()) is not None:
        out.append(event)
    assert framer.buffered_bytes <= max_frame + 1
    return out


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    max_frame = fdp.ConsumeIntInRange(1, 64)
    max_junk = fdp.PickValueInList([None, 1, 4, 16])
    cuts = sorted(set(fdp.ConsumeIntListInRange(8, 0, 256)))
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    points = [0, *(c for c in cuts if c < len(stream)), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(points) if b > a]
    assert _events(chunks, max_frame, max_junk) == _events([stream], max_frame, max_junk)
    payload = stream
    while b"\x1c\r" in payload:  # removing one may join another
        payload = payload.replace(b"\x1c\r", b"")
    framer = Framer(max_frame_bytes=max(len(payload), 1))
    framer.receive_data(Framer.frame(payload))
    assert framer.next_frame() == (payload or None)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
