"""bench/aging.py: the runs' traffic gives each sender whole exams in order (an order's
messages never travel on two connections), every message parses, MSH-10 and accessions
are never reused, and enhanced mode sets MSH-15/MSH-16."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import aging
import population

from accord.hl7 import parse


def _traffic(size: int = 200) -> aging.Traffic:
    pop = population.skewed(size + 500, seed=3)
    return aging.Traffic(aging.Store("skewed", size, Path("unused"), pop))


def test_each_sender_sends_whole_exams_in_order() -> None:
    traffic = _traffic()
    senders = 8
    batch = traffic.messages(600, senders)
    assert len(batch) >= 600 and len(batch) % senders == 0
    messages = [parse(m) for m in batch]
    control_ids = Counter(m.control_id for m in messages)
    assert max(control_ids.values()) == 1
    sender_of: dict[str, int] = {}
    steps: dict[str, list[str]] = {}
    for n, m in enumerate(messages):
        accession = m.get("OBR-18")
        if not accession:
            continue
        assert sender_of.setdefault(accession, n % senders) == n % senders
        steps.setdefault(accession, []).append(f"{m.get('ORC-1')}/{m.get('ORC-5')}")
    kinds = Counter(m.message_type.split("^")[0] for m in messages)
    assert kinds["ADT"] and kinds["ORM"] and kinds["ORU"]
    for life in steps.values():
        assert life[0] == "NW/SC"
        assert life[1:] in ([], ["CA/CA"], ["SC/IP", "SC/CM", "RE/CM"],
                            ["XO/SC", "SC/IP", "SC/CM", "RE/CM"]), life
    again = traffic.messages(100, senders)  # a later run: nothing reused
    assert not {parse(m).control_id for m in again} & set(control_ids)


def test_enhanced_mode() -> None:
    msg = parse(_traffic().messages(10, 1, enhanced=True)[0])
    assert (msg.get("MSH-15"), msg.get("MSH-16")) == ("AL", "NE")
