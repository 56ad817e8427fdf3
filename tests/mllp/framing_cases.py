"""The MLLP framing corpus: named cases, input chunks -> expected events.

Each case feeds ``chunks`` to a fresh :class:`~accord.mllp.framing.Framer` (limit
``max_frame_bytes``), calls ``receive_eof()`` when ``eof`` is set, and expects exactly
``events``. Payloads are small HL7-like texts; no real patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.mllp.framing import EmptyFrame, Event, Frame, Junk, Oversize, Truncated, Unframed

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
MSG = b"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260101120000||ORM^O01|MSG0001|P|2.5.1\rPID|1||X1\r"
MSG2 = b"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260101120001||ORM^O01|MSG0002|P|2.5.1\r"
UTF8 = "MSH|^~\\&|RIS|HÔP|ACCORD|HÔP|20260101||ADT^A08|U1|P|2.5.1|||||||UNICODE UTF-8\r"
UTF8_MSG = UTF8.encode("utf-8")


def framed(payload: bytes) -> bytes:
    return SB + payload + EB + CR


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@dataclass(frozen=True)
class Case:
    name: str
    chunks: list[bytes]
    events: list[Event]
    eof: bool = False
    max_frame_bytes: int = 1024
    max_junk_bytes: int | None = None
    counters: dict[str, int] = field(default_factory=dict)


_HUNDRED = [b"M%03d|payload" % i for i in range(100)]

CASES: list[Case] = [
    Case("single frame", [framed(MSG)], [Frame(MSG)]),
    Case("single frame then eof", [framed(MSG)], [Frame(MSG)], eof=True),
    Case("nothing at all then eof", [], [], eof=True),
    Case("incomplete frame without eof waits", [SB + MSG], []),
    Case("split byte by byte", bytewise(framed(MSG)), [Frame(MSG)]),
    Case("two frames one chunk", [framed(MSG) + framed(MSG2)], [Frame(MSG), Frame(MSG2)]),
    Case(
        "two frames byte by byte",
        bytewise(framed(MSG) + framed(MSG2)),
        [Frame(MSG), Frame(MSG2)],
    ),
    Case("100 frames in one write", [b"".join(map(framed, _HUNDRED))],
         [Frame(p) for p in _HUNDRED]),
    Case("junk before a frame", [b"hello" + framed(MSG)], [Junk(5), Frame(MSG)],
         counters={"junk_bytes": 5}),
    Case("junk before a frame byte by byte", bytewise(b"hello" + framed(MSG)),
         [Junk(5), Frame(MSG)]),
    Case("CR LF between frames", [framed(MSG) + b"\r\n" + framed(MSG2)],
         [Frame(MSG), Frame(MSG2)], counters={"newline_bytes": 2, "junk_bytes": 0}),
    Case("LF after every frame", [framed(MSG) + b"\n", framed(MSG2) + b"\n"],
         [Frame(MSG), Frame(MSG2)], counters={"newline_bytes": 2}),
    Case("newlines before the first frame", [b"\r\n\r\n" + framed(MSG)], [Frame(MSG)]),
    Case("two frames one chunk junk between", [framed(MSG) + b"xyz" + framed(MSG2)],
         [Frame(MSG), Junk(3), Frame(MSG2)]),
    Case("junk mixed with newlines is one junk run", [framed(MSG) + b"\r\nab\r\n" + framed(MSG2)],
         [Frame(MSG), Junk(6), Frame(MSG2)], counters={"junk_bytes": 6, "newline_bytes": 4}),
    Case("start block inside junk", [b"abc" + SB + b"def" + EB + CR],
         [Junk(3), Frame(b"def")]),
    Case("junk then eof", [framed(MSG) + b"trailing"], [Frame(MSG), Junk(8)], eof=True),
    Case("junk split across chunks is one run", [b"ab", b"cd", framed(MSG)],
         [Junk(4), Frame(MSG)]),
    Case("stray end block between frames is junk", [EB + CR + framed(MSG)],
         [Junk(2), Frame(MSG)]),
    Case("missing end block then eof", [SB + MSG], [Truncated(len(MSG))], eof=True),
    Case("lone EB then eof is truncated", [SB + MSG + EB], [Truncated(len(MSG) + 1)], eof=True),
    Case("start block only then eof", [SB], [Truncated(0)], eof=True),
    Case("empty frame", [SB + EB + CR], [EmptyFrame()], counters={"empty_frames": 1}),
    Case("empty frame byte by byte", [SB, EB, CR], [EmptyFrame()]),
    Case("empty frame between frames", [framed(MSG) + SB + EB + CR + framed(MSG2)],
         [Frame(MSG), EmptyFrame(), Frame(MSG2)]),
    Case("NUL bytes are data", [framed(b"A\x00B\x00\x00")], [Frame(b"A\x00B\x00\x00")]),
    Case("only NULs", [framed(b"\x00")], [Frame(b"\x00")]),
    Case("start block inside a frame is data", [framed(b"A" + SB + b"B")],
         [Frame(b"A" + SB + b"B")]),
    Case("EB without CR is data", [framed(b"A" + EB + b"B")], [Frame(b"A" + EB + b"B")]),
    Case("EB at chunk end then non-CR", [SB + b"A" + EB, b"B" + EB + CR],
         [Frame(b"A" + EB + b"B")]),
    Case("EB at chunk end then CR", [SB + b"A" + EB, CR], [Frame(b"A")]),
    Case("double EB then CR", [SB + b"A" + EB + EB + CR], [Frame(b"A" + EB)]),
    Case("double EB split", [SB + b"A" + EB, EB, CR], [Frame(b"A" + EB)]),
    Case("UTF-8 multibyte split across chunks",
         [SB + UTF8_MSG[:20], UTF8_MSG[20:21], UTF8_MSG[21:] + EB + CR], [Frame(UTF8_MSG)]),
    Case("oversize refused", [framed(b"x" * 2000)], [Oversize(2000)],
         counters={"oversize_frames": 1, "frames": 0}),
    Case("oversize in many chunks", [SB] + [b"x" * 100] * 30 + [EB + CR], [Oversize(3000)]),
    Case("oversize then a good frame", [framed(b"x" * 1500) + framed(MSG)],
         [Oversize(1500), Frame(MSG)]),
    Case("oversize by one byte", [framed(b"x" * 1025)], [Oversize(1025)]),
    Case("exactly at the limit", [framed(b"x" * 1024)], [Frame(b"x" * 1024)]),
    Case("exactly at the limit byte by byte", bytewise(framed(b"y" * 1024)), [Frame(b"y" * 1024)]),
    Case("at the limit with EB CR split", [SB + b"z" * 1024 + EB, CR], [Frame(b"z" * 1024)]),
    Case("limit then data EB is oversize", [SB + b"z" * 1024 + EB, b"q" + EB + CR],
         [Oversize(1026)]),
    Case("oversize then eof is truncated oversize", [SB + b"x" * 2000],
         [Truncated(2000, oversize=True)], eof=True),
    Case("frame with CR segment terminators", [framed(b"MSH|a\rPID|b\r")],
         [Frame(b"MSH|a\rPID|b\r")]),
    Case("frame followed by partial next, eof", [framed(MSG) + SB + b"MSH"],
         [Frame(MSG), Truncated(3)], eof=True),
    Case("tiny limit", [framed(b"ab") + framed(b"a")], [Oversize(2), Frame(b"a")],
         max_frame_bytes=1),
    Case("junk under the junk limit is only junk", [b"x" * 15 + framed(MSG)],
         [Junk(15), Frame(MSG)], max_junk_bytes=16),
    Case("junk reaching the junk limit is unframed", [b"x" * 16], [Unframed(16)],
         max_junk_bytes=16),
    Case("unframed once per run, then the run's junk", [b"\x00" * 40 + framed(MSG)],
         [Unframed(16), Junk(40), Frame(MSG)], max_junk_bytes=16),
    Case("each junk run counts on its own", [b"y" * 10 + framed(MSG) + b"z" * 10 + framed(MSG)],
         [Junk(10), Frame(MSG), Junk(10), Frame(MSG)], max_junk_bytes=16),
    Case("newlines alone never reach the junk limit", [b"\r\n" * 20 + framed(MSG)],
         [Frame(MSG)], max_junk_bytes=16),
    Case("newlines count in a junk run", [b"\r\n" * 8 + b"GET", framed(MSG)],
         [Unframed(16), Junk(19), Frame(MSG)], max_junk_bytes=16),
    Case("an HTTP request is junk", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
         [Unframed(16), Junk(27)], eof=True, max_junk_bytes=16),
    Case("bytes inside a frame are never junk", [SB + b"x" * 100], [], max_junk_bytes=16),
]
