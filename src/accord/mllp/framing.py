# Rule: no sockets, no asyncio, no clocks here; bytes in, frames out.
"""Sans-I/O MLLP framer (HL7 v2 Transport Specification: MLLP, Release 2, §1.4 "Block format").

A block is ``<SB> payload <EB><CR>`` with SB = 0x0B and EB = 0x1C. The :class:`Framer` is fed
whatever bytes the network delivers (:meth:`Framer.receive_data`, :meth:`Framer.receive_eof`)
and hands back events (:meth:`Framer.next_event`), as ``h11.Connection`` does for HTTP.

Strategy: input is processed as soon as it arrives, so the only bytes ever held are the
payload of the frame in progress (at most ``max_frame_bytes`` + 1) and complete events not
yet taken. Every byte is looked at once: a chunk is searched with ``bytes.find`` from where
the previous search stopped, so byte-by-byte feeding and 100 frames in one write are both
linear.

Rules (each has a case in ``tests/mllp/framing_cases.py``):

1. Between frames, everything up to the next SB is skipped. A run of skipped bytes made only
   of CR and LF (senders often add a newline after the end block) is counted in
   ``newline_bytes`` and otherwise ignored; any other run is reported as one :class:`Junk`
   event, emitted when the run ends (at the next SB or at EOF), so the events do not depend
   on how the stream was chunked.
2. Inside a frame every byte is data, including NUL, SB (0x0B) and an EB that is not
   immediately followed by CR. Only EB CR ends a frame.
3. ``SB EB CR`` gives :class:`EmptyFrame` (the server answers AR).
4. A payload longer than ``max_frame_bytes`` is refused without being buffered: once the
   limit is passed, the bytes held are dropped and the rest is only counted until EB CR, which
   gives one :class:`Oversize` event with the full payload size. Exactly ``max_frame_bytes``
   is accepted.
5. EOF inside a frame (also right after a lone EB) gives :class:`Truncated` with the payload
   size seen. A frame is never completed by EOF: a sender that ends blocks with EB alone is
   not MLLP and is not guessed at.
6. With ``max_junk_bytes`` set, a junk run (rule 1) that reaches that many bytes gives one
   :class:`Unframed` event at the byte where it does, before the run's :class:`Junk`: the
   peer is not speaking MLLP, and whoever owns the connection may close it without waiting
   for a start block that may never come.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
_SB = b"\x0b"
_END = b"\x1c\x0d"
_NEWLINES = frozenset(b"\r\n")
DEFAULT_MAX_FRAME_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete, non-empty block: the payload between SB and EB CR."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class EmptyFrame:
    """A block with no payload (``SB EB CR``)."""


@dataclass(frozen=True, slots=True)
class Oversize:
    """A block whose payload (``size`` bytes) exceeded the limit; its bytes were dropped."""

    size: int


@dataclass(frozen=True, slots=True)
class Truncated:
    """EOF arrived inside a block after ``size`` payload bytes (or a dropped oversize one)."""

    size: int
    oversize: bool = False


@dataclass(frozen=True, slots=True)
class Junk:
    """``size`` bytes between blocks that were not only CR/LF, skipped."""

    size: int


@dataclass(frozen=True, slots=True)
class Unframed:
    """``size`` bytes (the framer's ``max_junk_bytes``) arrived between blocks without a
    start block and were not only CR/LF (rule 6); the run goes on."""

    size: int


Event = Frame | EmptyFrame | Oversize | Truncated | Junk | Unframed


class _State(enum.Enum):
    BETWEEN = "between"  # looking for SB
    IN_FRAME = "in_frame"  # holding payload bytes
    DISCARDING = "discarding"  # in an oversize frame: counting only
    CLOSED = "closed"  # after receive_eof


class Framer:
    """Splits a byte stream into MLLP blocks; frames payloads for sending.

    Counters (plain attributes, for metrics): ``frames``, ``empty_frames``,
    ``oversize_frames``, ``truncated_frames``, ``junk_bytes``, ``newline_bytes``.
    ``max_junk_bytes`` (None: no limit) is rule 6's threshold.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 max_junk_bytes: int | None = None) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be at least 1")
        if max_junk_bytes is not None and max_junk_bytes < 1:
            raise ValueError("max_junk_bytes must be at least 1")
        self.max_frame_bytes = max_frame_bytes
        self.max_junk_bytes = max_junk_bytes
        self._state = _State.BETWEEN
        self._payload = bytearray()
        self._size = 0  # payload bytes seen in the current block (held or dropped)
        self._pending_eb = False  # the last byte seen in a block was EB: CR may follow
        self._run = 0  # length of the current run of bytes between blocks
        self._run_is_junk = False
        self._run_reported = False  # this run's Unframed event was emitted (rule 6)
        self._events: deque[Event] = deque()
        self.frames = 0
        self.empty_frames = 0
        self.oversize_frames = 0
        self.truncated_frames = 0
        self.junk_bytes = 0
        self.newline_bytes = 0

    @staticmethod
    def frame(payload: bytes) -> bytes:
        """Wrap ``payload`` in SB ... EB CR. Refuses a payload holding EB CR (unframeable)."""
        if _END in payload:
            raise ValueError("payload contains the MLLP end block 0x1C 0x0D")
        return b"".join((_SB, payload, _END))

    @property
    def in_frame(self) -> bool:
        """True once SB has been seen and the block has not ended (a frame deadline runs)."""
        return self._state in (_State.IN_FRAME, _State.DISCARDING)

    @property
    def closed(self) -> bool:
        """True after :meth:`receive_eof`."""
        return self._state is _State.CLOSED

    @property
    def buffered_bytes(self) -> int:
        """Payload bytes held for the block in progress (never above max_frame_bytes + 1)."""
        return len(self._payload) + (1 if self._pending_eb else 0)

    @property
    def pending_junk(self) -> int:
        """Bytes of the junk run in progress (rule 1), not yet reported by a Junk event."""
        return self._run if self._run_is_junk else 0

    @property
    def pending_events(self) -> int:
        """Events ready to be taken with :meth:`next_event`."""
        return len(self._events)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes as received. An empty ``data`` is ignored (use :meth:`receive_eof`)."""
        if self._state is _State.CLOSED:
            raise RuntimeError("receive_data after receive_eof")
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray/memoryview must not leak into Frame payloads
        pos, n = 0, len(data)
        while pos < n:
            if self._state is _State.BETWEEN:
                pos = self._skip_between(data, pos)
            else:
                pos = self._take_payload(data, pos)

    def receive_eof(self) -> None:
        """The peer closed its side: flush a junk run, report an unfinished block."""
        if self._state is _State.CLOSED:
            return
        if self._state is _State.BETWEEN:
            self._end_run()
        else:
            size = self._size + (1 if self._pending_eb else 0)
            self.truncated_frames += 1
            self._events.append(Truncated(size, oversize=self._state is _State.DISCARDING))
            self._reset_block()
        self._state = _State.CLOSED

    def next_event(self) -> Event | None:
        """The next event, or None when more data (or EOF) is needed."""
        return self._events.popleft() if self._events else None

    def next_frame(self) -> bytes | None:
        """The next complete non-empty payload, skipping every other event (counters still
        count them). For callers that only want payloads, such as a client reading an ACK."""
        while self._events:
            event = self._events.popleft()
            if isinstance(event, Frame):
                return event.payload
        return None

    def _skip_between(self, data: bytes, pos: int) -> int:
        i = data.find(_SB, pos)
        end = len(data) if i < 0 else i
        if end > pos:
            skipped = data[pos:end]
            newlines = skipped.count(b"\r") + skipped.count(b"\n")
            self.newline_bytes += newlines
            self._run += end - pos
            if newlines != end - pos:
                self._run_is_junk = True
            limit = self.max_junk_bytes
            if (limit is not None and self._run_is_junk and not self._run_reported
                    and self._run >= limit):
                self._run_reported = True
                self._events.append(Unframed(limit))
        if i < 0:
            return len(data)
        self._end_run()
        self._state = _State.IN_FRAME
        return i + 1

    def _end_run(self) -> None:
        if self._run_is_junk:
            self.junk_bytes += self._run
            self._events.append(Junk(self._run))
        self._run = 0
        self._run_is_junk = False
        self._run_reported = False

    def _take_payload(self, data: bytes, pos: int) -> int:
        if self._pending_eb:
            self._pending_eb = False
            if data[pos] == CARRIAGE_RETURN:
                self._end_block()
                return pos + 1
            self._append(b"\x1c")  # rule 2: EB not followed by CR is data
        i = data.find(_END, pos)
        if i >= 0:
            if self._size == 0 and 0 < i - pos <= self.max_frame_bytes:
                # Fast path: the whole block is in this chunk; one copy, no buffer.
                self.frames += 1
                self._events.append(Frame(data[pos:i]))
                self._state = _State.BETWEEN
                return i + 2
            self._append(data[pos:i])
            self._end_block()
            return i + 2
        end = len(data)
        if data[end - 1] == END_BLOCK:
            self._pending_eb = True
            end -= 1
        self._append(data[pos:end])
        return len(data)

    def _append(self, part: bytes) -> None:
        self._size += len(part)
        if self._state is _State.DISCARDING:
            return
        if self._size > self.max_frame_bytes:
            self._state = _State.DISCARDING
            self._payload = bytearray()  # release the memory now, not at the end block
            return
        self._payload += part

    def _end_block(self) -> None:
        if self._state is _State.DISCARDING:
            self.oversize_frames += 1
            self._events.append(Oversize(self._size))
        elif self._size == 0:
            self.empty_frames += 1
            self._events.append(EmptyFrame())
        else:
            self.frames += 1
            self._events.append(Frame(bytes(self._payload)))
        self._reset_block()
        self._state = _State.BETWEEN

    def _reset_block(self) -> None:
        self._payload = bytearray()
        self._size = 0
        self._pending_eb = False
