"""Tests for accord.mllp.framing: the named corpus, chunking invariance, bounded memory."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.mllp.framing import Event, Frame, Framer, Oversize, Truncated

from .framing_cases import CASES, EB, MSG, SB, Case, framed


def run(chunks: list[bytes], *, eof: bool = False, max_frame_bytes: int = 1024,
        max_junk_bytes: int | None = None) -> list[Event]:
    framer = Framer(max_frame_bytes=max_frame_bytes, max_junk_bytes=max_junk_bytes)
    events: list[Event] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while (event := framer.next_event()) is not None:
            events.append(event)
    if eof:
        framer.receive_eof()
        while (event := framer.next_event()) is not None:
            events.append(event)
    return events


def test_corpus_has_at_least_30_distinct_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus(case: Case) -> None:
    framer = Framer(max_frame_bytes=case.max_frame_bytes, max_junk_bytes=case.max_junk_bytes)
    events: list[Event] = []
    for chunk in case.chunks:
        framer.receive_data(chunk)
        while (event := framer.next_event()) is not None:
            events.append(event)
    if case.eof:
        framer.receive_eof()
        assert framer.closed
        while (event := framer.next_event()) is not None:
            events.append(event)
    assert events == case.events
    for name, value in case.counters.items():
        assert getattr(framer, name) == value, name


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_same_events_byte_by_byte(case: Case) -> None:
    stream = b"".join(case.chunks)
    singles = [stream[i : i + 1] for i in range(len(stream))]
    assert run(singles, eof=case.eof, max_frame_bytes=case.max_frame_bytes,
               max_junk_bytes=case.max_junk_bytes) == case.events


_TOKENS = [SB, EB, b"\r", b"\n", b"\x00", b"A", b"MSH|x", b"\x1c\r", b"\xc3\xa9", framed(MSG)]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(_TOKENS), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    eof=st.booleans(),
    limit=st.sampled_from([1, 4, 16, 1024]),
    junk_limit=st.sampled_from([None, 1, 3, 16]),
)
def test_any_chunking_gives_the_same_events(
    parts: list[bytes], cuts: list[int], eof: bool, limit: int, junk_limit: int | None
) -> None:
    stream = b"".join(parts)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    assert run(chunks, eof=eof, max_frame_bytes=limit, max_junk_bytes=junk_limit) == run(
        [stream], eof=eof, max_frame_bytes=limit, max_junk_bytes=junk_limit
    )


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(
        st.binary(min_size=1, max_size=60).filter(lambda b: b"\x1c\r" not in b), max_size=10
    ),
    seps=st.sampled_from([b"", b"\r\n", b"\n"]),
)
def test_framed_payloads_come_back_intact(payloads: list[bytes], seps: bytes) -> None:
    stream = b"".join(Framer.frame(p) + seps for p in payloads)
    frames = [e.payload for e in run([stream], max_frame_bytes=64) if isinstance(e, Frame)]
    assert frames == payloads


def test_oversize_is_never_buffered() -> None:
    limit = 64 * 1024
    framer = Framer(max_frame_bytes=limit)
    framer.receive_data(SB)
    highest = 0
    for _ in range(100):  # 3.2 MB through a 64 KiB limit, without taking events
        framer.receive_data(b"x" * 32 * 1024)
        highest = max(highest, framer.buffered_bytes)
    assert highest <= limit + 1
    assert framer.buffered_bytes == 0
    assert framer.in_frame
    framer.receive_data(EB + b"\r")
    assert framer.next_event() == Oversize(100 * 32 * 1024)
    assert not framer.in_frame


def test_in_frame_tracks_block_boundaries() -> None:
    framer = Framer()
    assert not framer.in_frame
    framer.receive_data(b"junk" + SB + b"MSH")
    assert framer.in_frame
    framer.receive_data(EB)
    assert framer.in_frame
    framer.receive_data(b"\r")
    assert not framer.in_frame
    assert framer.pending_events == 2  # Junk, Frame


def test_next_frame_skips_other_events() -> None:
    framer = Framer(max_frame_bytes=8)
    framer.receive_data(b"zz" + framed(b"x" * 20) + SB + EB + b"\r" + framed(b"ok"))
    assert framer.next_frame() == b"ok"
    assert framer.next_frame() is None
    assert (framer.junk_bytes, framer.oversize_frames, framer.empty_frames) == (2, 1, 1)


def test_truncated_at_eof_reports_size_not_data() -> None:
    framer = Framer()
    framer.receive_data(SB + b"MSH|partial")
    framer.receive_eof()
    assert framer.next_event() == Truncated(11)
    assert framer.truncated_frames == 1


def test_receive_after_eof_is_a_bug() -> None:
    framer = Framer()
    framer.receive_eof()
    framer.receive_eof()  # idempotent
    with pytest.raises(RuntimeError):
        framer.receive_data(b"x")


def test_frame_wraps_and_refuses_end_block_inside() -> None:
    assert Framer.frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"
    assert Framer.frame(b"") == b"\x0b\x1c\r"
    assert Framer.frame(b"a\x1cb") == b"\x0ba\x1cb\x1c\r"
    with pytest.raises(ValueError):
        Framer.frame(b"a\x1c\rb")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Framer(max_frame_bytes=0)
    with pytest.raises(ValueError):
        Framer(max_junk_bytes=0)


def test_bytearray_input_gives_bytes_payloads() -> None:
    framer = Framer()
    framer.receive_data(bytearray(framed(b"abc")))  # type: ignore[arg-type]
    event = framer.next_event()
    assert event == Frame(b"abc") and type(event.payload) is bytes  # type: ignore[union-attr]
