"""Every file of the corpus (tests/corpus) parses and round-trips, or is listed here as broken.

Round trip rule: ``to_er7()`` gives the input back with segment terminators as CR, the
BOM, blank lines and trailing terminators dropped; ``parse(m.to_er7())`` gives the same
value for every path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accord.hl7 import Message, ParseError, parse, parse_batch
from accord.hl7.parser import split_lines
from hl7_corpus import corpus_files

MIRTH = "nextgen-connect-mirth/server/tests"
CDC = "cdcgov-trusted-intermediary/examples"
XML_GOLDEN = "Mirth's XML rendering of a message, not ER7"

# relative path -> why parse_batch must raise ParseError on it
MUST_FAIL: dict[str, str] = {
    f"{CDC}/Test/Message/empty.hl7": "empty file",
    f"{CDC}/Test/Message/msh_present_but_missing_all_fields.hl7": "MSH with no MSH-2",
    f"{CDC}/Test/Message/msh_present_but_missing_msh-2.hl7": "MSH-2 empty ('MSH||...')",
    f"{CDC}/TN/001_TN_ORU_R01_LRI_annotated_for_transformation.hl7":
        "prose annotations ('Remap OBR with ...') between the segments",
    "hapi-hl7v2/guide.txt": "HAPI message-structure guide, not HL7",
    "hapi-hl7v2/messages.txt": "C-style comments (/* */, //) between the messages",
    "hapi-hl7v2/uuencoded.txt": "uuencoded payload fragment without MSH",
    "hapi-hl7v2/uuencoded_escaped.txt": "escaped payload fragment without MSH",
    f"{MIRTH}/test-hl7-1636-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-batch-output.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-missing-components-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-missing-fields-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-missing-subcomponents-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-output.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-repetitions-output.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-single-field-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-single-segment-input.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-subcomponents-output.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-whitespace-output.xml": XML_GOLDEN,
    f"{MIRTH}/test-hl7-single-field-output.txt": "one field's text, no MSH",
    f"{MIRTH}/test-hl7-single-segment-output.txt": "one PID segment, no MSH",
    "rethinkhealth-hl7v2/qa/fixtures/invalid-missing-msh.hl7": "starts with PID, no MSH",
    "rethinkhealth-hl7v2/qa/fixtures/invalid-segment-header-length.hl7":
        "segment IDs 'PIDX' and 'PV' are not 3 characters",
}
MESSAGE_FLOOR = 460  # 473 messages when this was written


def test_corpus_is_there(corpus: Path) -> None:
    assert len(corpus_files(corpus)) > 350


def test_every_listed_failure_exists(corpus: Path) -> None:
    present = {rel for rel, _ in corpus_files(corpus)}
    assert set(MUST_FAIL) <= present


@pytest.mark.parametrize("rel", sorted(MUST_FAIL))
def test_broken_file_raises_parse_error(corpus: Path, rel: str) -> None:
    data = (corpus / rel).read_bytes()
    with pytest.raises(ParseError) as info:
        parse_batch(data)
    assert "internal error" not in str(info.value)
    with pytest.raises(ParseError):
        parse(data)


def _expected_er7(data: bytes, charset: str) -> str:
    text = data.decode(charset)
    return "\r".join(line for line in split_lines(text) if line.strip())


def test_corpus_parses_and_round_trips(
    corpus: Path, walk: Callable[[Message], dict[str, str]]
) -> None:
    total = 0
    problems: list[str] = []
    for rel, path in corpus_files(corpus):
        if rel in MUST_FAIL:
            continue
        data = path.read_bytes()
        try:
            batch = parse_batch(data)
        except ParseError as exc:
            problems.append(f"{rel}: {exc}")
            continue
        total += len(batch.messages)
        if batch.to_er7() != _expected_er7(data, batch.charset):
            problems.append(f"{rel}: to_er7 differs from the input")
        for number, message in enumerate(batch.messages, 1):
            again = parse(message.to_er7())
            if again.to_er7() != message.to_er7() or walk(again) != walk(message):
                problems.append(f"{rel} message {number}: values differ after re-parse")
    assert not problems, "\n".join(problems)
    assert total >= MESSAGE_FLOOR


def test_single_message_files_parse_alone(corpus: Path) -> None:
    checked = 0
    for rel, path in corpus_files(corpus):
        if rel in MUST_FAIL:
            continue
        data = path.read_bytes()
        batch = parse_batch(data)
        if len(batch.messages) == 1 and batch.file_header is None and batch.batch_header is None:
            message = parse(data)
            assert message.to_er7() == batch.messages[0].to_er7(), rel
            checked += 1
    assert checked > 300
