"""Property tests: build → encode → parse keeps values; nothing but ParseError escapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.hl7 import Encoding, Message, ParseError, escape, parse, parse_batch, unescape

DELIMITERS = "|^~\\&#!@%*$+/:;?"
VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("|^~\\&#\r\n.brXHN"),
    max_size=30,
)
INDEX = st.integers(min_value=1, max_value=4)
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def encodings(draw: st.DrawFn) -> Encoding:
    chars = draw(st.permutations(DELIMITERS))
    truncation = chars[5] if draw(st.booleans()) else ""
    return Encoding(chars[0], chars[1], chars[2], chars[3], chars[4], truncation)


@st.composite
def paths(draw: st.DrawFn, field: int) -> str:
    path = f"ZZ{draw(st.sampled_from('ABC'))}-{field}"
    depth = draw(st.integers(0, 3))
    if depth >= 1:
        path += f"[{draw(INDEX)}]"
    if depth >= 2:
        path += f".{draw(INDEX)}"
    if depth >= 3:
        path += f".{draw(INDEX)}"
    return path


@given(enc=encodings(), data=st.data())
@FAST
def test_build_encode_parse_keeps_values(enc: Encoding, data: st.DataObject) -> None:
    msg = Message.new("ORU^R01".replace("^", enc.component), control_id="1",
                      charset="UNICODE UTF-8", encoding=enc)
    expected: dict[str, str] = {}
    for field in range(1, data.draw(st.integers(1, 6)) + 1):
        path = data.draw(paths(field))
        value = data.draw(VALUES)
        msg.set(path, value)
        expected[path] = value
    again = parse(msg.to_er7().encode("utf-8"))
    assert again.encoding == enc
    for path, value in expected.items():
        assert msg.get(path) == value, path
        assert again.get(path) == value, path
    assert again.to_er7() == msg.to_er7()


def _only_parse_errors(data: bytes | str) -> None:
    for func in (parse, parse_batch):
        try:
            func(data)
        except ParseError as exc:
            assert "internal error" not in str(exc)


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_raise_only_parse_error(data: bytes) -> None:
    _only_parse_errors(data)
    _only_parse_errors(b"MSH|^~\\&|" + data)


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_text_raises_only_parse_error(text: str) -> None:
    _only_parse_errors(text)
    _only_parse_errors("MSH" + text)


SEED_FILES = [
    "dcm4che/OMI^O23-ImagingOrder.hl7",
    "rethinkhealth-hl7v2/qa/fixtures/edge-custom-delimiters.hl7",
    "rethinkhealth-hl7v2/qa/fixtures/edge-escaped-delimiters.hl7",
    "hapi-hl7v2/segmentfinder_a24.hl7",
    "linuxforhealth-hl7v2-fhir-converter/sample_win.hl7",
    "linuxforhealth-hl7v2-fhir-converter/ORU-multiline-short.hl7",
]
MUTATION = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 10_000),
                     st.binary(min_size=1, max_size=4))


@given(seed=st.sampled_from(SEED_FILES), mutations=st.lists(MUTATION, min_size=1, max_size=4))
@FAST
def test_mutated_corpus_messages(
    corpus: Path, walk: Callable[[Message], dict[str, str]], seed: str,
    mutations: list[tuple[str, int, bytes]],
) -> None:
    data = bytearray((corpus / seed).read_bytes())
    for kind, where, chunk in mutations:
        at = where % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    try:
        msg = parse(bytes(data))
    except ParseError as exc:
        assert "internal error" not in str(exc)
        return
    again = parse(msg.to_er7())
    assert again.to_er7() == msg.to_er7()
    assert walk(again) == walk(msg)


SEGMENT = st.builds(
    lambda sid, fields: "|".join([sid, *fields]),
    st.sampled_from(["PID", "PV1", "OBX", "ZZ1", "NTE"]),
    st.lists(st.text(alphabet="AB1 ^~\\&é.|", max_size=12), max_size=6),
)


@given(st.lists(SEGMENT, max_size=6), st.sampled_from(["\r", "\n", "\r\n"]))
@FAST
def test_reparse_gives_the_same_values(
    walk: Callable[[Message], dict[str, str]], segments: list[str], terminator: str
) -> None:
    text = terminator.join(["MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5", *segments])
    try:
        msg = parse(text)
    except ParseError:
        return
    again = parse(msg.to_er7())
    assert walk(again) == walk(msg)
    assert again.to_er7() == msg.to_er7() == text.replace("\r\n", "\r").replace("\n", "\r")


@pytest.mark.parametrize("value", ["\\.br\\", "x\\E\\y", "\\X41\\", "a\\", "\\"])
def test_set_get_is_identity_on_tricky_values(value: str) -> None:
    msg = Message.new("ADT^A01")
    msg.set("PID-5.1", value)
    assert msg.get("PID-5.1") == value
    assert parse(msg.to_er7()).get("PID-5.1") == value


@given(enc=encodings(), value=VALUES)
@settings(max_examples=300, deadline=None)
def test_unescape_inverts_escape(enc: Encoding, value: str) -> None:
    escaped = escape(value, enc)
    assert not any(c in escaped for c in (enc.field, enc.component, enc.repetition,
                                          enc.subcomponent, "\r", "\n"))
    assert unescape(escaped, enc) == value
