"""The simulated department's generator (``accord.demo.traffic``): what the demo sends is
real HL7 that the engine reads as intended, mess included; the Receiver sees each MSH-10
once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from accord.demo.traffic import (
    FAMILY,
    FEMALE,
    MALE,
    MESS,
    PROCEDURES,
    SLOTS_AFTER,
    SLOTS_BEFORE,
    UNMAPPED,
    Department,
    Receiver,
    Visit,
)
from accord.errors import ParseError
from accord.hl7 import Message, parse
from accord.mllp.client import MllpClient

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _visits(seed: int, n: int) -> list[Visit]:
    dept = Department(seed=seed)
    return [dept.visit(NOW) for _ in range(n)]


def test_visit_is_a_registration_then_an_order() -> None:
    visit = Department(seed=1).visit(NOW)
    assert visit.mess is None and visit.order is not None
    adt, orm = (parse(m) for m in visit.messages)
    assert adt.message_type.startswith("ADT^A04")
    assert orm.get("ORC-1") == "NW" and orm.get("OBR-18") == visit.order.accession
    assert orm.get("ZDS-1.1") == visit.order.study_uid
    assert orm.get("OBR-21") == visit.order.procedure[3]
    assert orm.get("PID-3.1") == adt.get("PID-3.1") == visit.order.patient.mrn


def test_numbers_fit_dicom_short_strings() -> None:
    """Accession, Requested Procedure ID and SPS ID go to the worklist as SH (16 chars)."""
    for visit in _visits(2, 30):
        orm = parse(visit.messages[-1])
        for path in ("OBR-18", "OBR-19", "OBR-20"):
            assert 0 < len(orm.get(path)) <= 16, (path, orm.get(path))


def test_orders_are_in_quarter_hour_slots_spread_over_today() -> None:
    dept = Department(seed=3)
    for now in (datetime(2026, 3, 2, 23, 21, tzinfo=UTC),
                datetime(2026, 3, 2, 10, 7, tzinfo=UTC),
                datetime(2026, 3, 2, 0, 40, tzinfo=UTC)):
        slots = set()
        for _ in range(60):
            order = dept.visit(now).order
            assert order is not None
            when = order.scheduled
            assert when.date() == now.date() and when.minute % 15 == 0 and when.second == 0
            assert now - SLOTS_BEFORE - timedelta(minutes=15) <= when <= now + SLOTS_AFTER
            slots.add(when)
        assert len(slots) >= 3, (now, slots)  # spread, not one time for every order


def test_sex_agrees_with_the_given_name() -> None:
    dept = Department(seed=5)
    people = [dept.patient() for _ in range(200)]
    assert {p.sex for p in people} == {"F", "M"}
    assert all(p.given in (FEMALE if p.sex == "F" else MALE) for p in people)
    lookalike = dept.lookalike(people[0])
    assert (lookalike.given, lookalike.sex) == (people[0].given, people[0].sex)


def test_each_kind_of_mess_comes_early_then_rarely() -> None:
    visits = _visits(4, 300)
    early = [v.mess for v in visits[:3 * len(MESS)]]
    assert [m for m in early if m] == list(MESS)
    later = [v.mess for v in visits[3 * len(MESS):]]
    assert 0 < sum(1 for m in later if m) < len(later) // 5  # mostly clean


def _mess(kind: str) -> Visit:
    dept = Department(seed=5)
    while True:
        visit = dept.visit(NOW)
        if visit.mess == kind:
            return visit


def test_lookalike_is_a_known_person_under_a_new_mrn() -> None:
    dept = Department(seed=6)
    original = dept.patient()
    seen_swap = False
    for _ in range(50):
        twin = dept.lookalike(original)
        assert twin.mrn != original.mrn and twin.given == original.given
        assert twin.family != original.family
        assert abs(len(twin.family) - len(original.family)) <= 1
        if twin.birth_date != original.birth_date:
            seen_swap = True
            b = original.birth_date
            assert twin.birth_date == b[:4] + b[6:8] + b[4:6]
    assert seen_swap == (int(original.birth_date[6:8]) <= 12
                         and original.birth_date[4:6] != original.birth_date[6:8])


def test_a_typo_always_changes_the_name() -> None:
    dept = Department(seed=10)
    for family in FAMILY:
        for _ in range(30):
            twin = dept.lookalike(replace(dept.patient(), family=family))
            assert twin.family != family


def test_unmapped_resend_malformed_incomplete() -> None:
    unmapped = _mess("unmapped")
    assert parse(unmapped.messages[-1]).get("OBR-4.1") == UNMAPPED[0]
    assert UNMAPPED[0] not in {p[0] for p in PROCEDURES}
    resend = _mess("resend")
    msgs = resend.messages
    assert msgs[-1] == msgs[-2] and parse(msgs[-1]).control_id
    malformed = _mess("malformed")
    with pytest.raises(ParseError):
        parse(malformed.messages[1])
    incomplete = _mess("incomplete")
    update = parse(incomplete.messages[1])
    assert update.message_type.startswith("ADT^A08") and update.get("PID-3.1") == ""


def test_reports_preliminary_then_final() -> None:
    dept = Department(seed=7)
    order = dept.visit(NOW).order
    assert order is not None
    prelim, final = (parse(dept.report(NOW, order, final=f)) for f in (False, True))
    for msg, code in ((prelim, "P"), (final, "F")):
        assert msg.message_type.startswith("ORU^R01")
        assert msg.get("OBR-18") == order.accession and msg.get("OBR-25") == code
        assert msg.get("OBX[2]-11") == code
    assert prelim.control_id != final.control_id


def test_same_seed_same_traffic() -> None:
    a, b = _visits(8, 10), _visits(8, 10)
    assert [v.messages for v in a] == [v.messages for v in b]


async def test_receiver_reports_each_control_id_once() -> None:
    seen: list[Message] = []
    receiver = Receiver(on_message=seen.append)
    port = await receiver.start()
    try:
        text = Department(seed=9).visit(NOW).messages[0]
        control_id = parse(text).control_id
        async with MllpClient("127.0.0.1", port) as client:
            for _ in range(2):
                ack = await client.send_message(text.encode(), control_id)
                assert ack.code == "AA"
        assert [m.control_id for m in seen] == [control_id]
        assert len(receiver.received) == 2
    finally:
        await receiver.stop()
