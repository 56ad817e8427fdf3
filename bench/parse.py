"""Benchmark: parse HL7 v2 and read fields, Accord vs python-hl7 vs hl7apy vs a bare split.

Run: ``.venv/bin/python bench/parse.py`` (about a minute). Cases:
  (a) a 1 KB ORM^O01, parsed, 11 typical fields read;
  (b) a 3.5 KB ORU^R01 with 30 OBX, every OBX-5 read;
  (c) a 100 KB ORU^R01, every OBX-5 read.
Each figure is the median of 5 repeats of a timed loop, all peers in the same run.
The floor is ``text.split("\\r")``, then ``"|"`` on each segment, then ``"^"`` on each
field: what no pure-Python parser beats. Memory is the tracemalloc size retained by one
parsed message (after the reads). Writes the ``parse`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import write_section
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

import hl7  # python-hl7
from accord.hl7 import parse

SAMPLES = Path(__file__).resolve().parent / "samples"
REPEATS = 5
LOOP_SECONDS = 0.25

# -- deterministic samples -------------------------------------------------------------------

MSH = "MSH|^~\\&|RIS|RADIOLOGY^1.2.840.10008.1^ISO|PACS|IMAGING^1.2.840.10008.2^ISO|{ts}||{typ}|{ctl}|P|2.5.1|||AL|NE||UNICODE UTF-8"  # noqa: E501
PID = "PID|1||PAT{n:05d}^^^HOSP&1.2.840.10008.3&ISO^MR~{n:08d}^^^NHS^NH||DOE^JANE^QUINN^^DR^^L||19700101|F|||1 MAIN ST^APT 2^SPRINGFIELD^IL^62701^USA^H||^PRN^PH^^1^217^5551234~^NET^Internet^jane@example.org|||M||ACCT{n:05d}^^^HOSP^AN"  # noqa: E501
PV1 = "PV1|1|O|RAD^XR1^1^HOSP^^^^^Radiology Room 1||||1234^SMITH^JOHN^A^^DR^^^NPI|5678^JONES^ANN^^^DR|||||||||||V{n:05d}^^^HOSP^VN|||||||||||||||||||||||||20240315083000"  # noqa: E501


def orm_1kb() -> str:
    segs = [
        MSH.format(ts="20240315083000", typ="ORM^O01^ORM_O01", ctl="MSG00042"),
        PID.format(n=42),
        PV1.format(n=42),
        "ORC|NW|PLC0042^RIS^1.2.3^ISO|FIL0042^PACS^1.2.4^ISO||SC||^^^20240315090000^^R||20240315083000|1001^CLERK^ANN|||1234^SMITH^JOHN^A^^DR|RAD^^^HOSP|^WPN^PH^^1^217^5550000",
        "OBR|1|PLC0042^RIS^1.2.3^ISO|FIL0042^PACS^1.2.4^ISO|71020^CHEST XRAY 2 VIEWS^CPT4^XR-CHEST^Chest 2V^L|||20240315083000|||||||||1234^SMITH^JOHN^A^^DR||ACC0042|RP0042|SPS0042||||CR|||^^^20240315090000^^R|||||||||20240315090000",  # noqa: E501
        "ZDS|1.2.840.113619.2.55.3.2831164355.123.1710491400.42^PACS^Application^DICOM",
    ]
    return "\r".join(segs)


def oru(obx_count: int, text_len: int) -> str:
    segs = [
        MSH.format(ts="20240315100000", typ="ORU^R01^ORU_R01", ctl="RES00042"),
        PID.format(n=42),
        PV1.format(n=42),
        "ORC|RE|PLC0042^RIS|FIL0042^PACS||CM",
        "OBR|1|PLC0042^RIS|FIL0042^PACS|71020^CHEST XRAY 2 VIEWS^CPT4|||20240315083000|||||||||1234^SMITH^JOHN||ACC0042|||||20240315100000||CR|F",  # noqa: E501
    ]
    words = ["lungs", "clear", "no", "focal", "consolidation", "effusion", "pneumothorax",
             "heart", "size", "normal"]
    for i in range(1, obx_count + 1):
        text = " ".join(words[(i + k) % len(words)] for k in range(text_len // 7))[:text_len]
        segs.append(f"OBX|{i}|TX|59776-5^Procedure Findings^LN|{i}|{text}||||||F|||20240315100000")
    return "\r".join(segs)


def samples() -> dict[str, str]:
    """The three case messages, written to bench/samples/ on first use and read after."""
    SAMPLES.mkdir(exist_ok=True)
    made = {"a_orm_o01_1kb.hl7": orm_1kb(), "b_oru_r01_30obx.hl7": oru(30, 32),
            "c_oru_r01_100kb.hl7": oru(800, 60)}
    out = {}
    for name, text in made.items():
        path = SAMPLES / name
        if not path.exists():
            path.write_bytes(text.encode("ascii"))
        out[name] = path.read_bytes().decode("ascii")
    return out


# -- the parsers, each doing the same work ----------------------------------------------------

A_PATHS = ["MSH-9", "MSH-10", "PID-3[1].1", "PID-3[1].4.1", "PID-5", "PID-7", "OBR-4",
           "OBR-18", "ORC-1", "ORC-2", "PV1-19"]


def ours_a(text: str) -> Any:
    m = parse(text)
    return [m.get(p) for p in A_PATHS], m


_ENCODED: dict[str, bytes] = {}


def ours_a_bytes(text: str) -> Any:
    """Same as ours_a, from bytes (MSH-18 read, charset decoded) as MLLP delivers them."""
    data = _ENCODED.get(text)
    if data is None:
        data = _ENCODED[text] = text.encode("utf-8")
    m = parse(data)
    return [m.get(p) for p in A_PATHS], m


def hl7_a(text: str) -> Any:
    m = hl7.parse(text)
    msh, pid, obr, orc = m.segment("MSH"), m.segment("PID"), m.segment("OBR"), m.segment("ORC")
    values = [str(msh[9]), str(msh[10]),
              m.extract_field("PID", field_num=3, repeat_num=1, component_num=1),
              m.extract_field("PID", field_num=3, repeat_num=1, component_num=4),
              str(pid[5]), str(pid[7]), str(obr[4]), str(obr[18]), str(orc[1]), str(orc[2]),
              str(m.segment("PV1")[19])]
    return values, m


def hl7apy_a(text: str) -> Any:
    m = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    pid = m.pid
    values = [m.msh.msh_9.value, m.msh.msh_10.value, pid.pid_3[0].cx_1.value,
              pid.pid_3[0].cx_4.value, pid.pid_5.value, pid.pid_7.value, m.obr.obr_4.value,
              m.obr.obr_18.value, m.orc.orc_1.value, m.orc.orc_2.value, m.pv1.pv1_19.value]
    return values, m


def floor_a(text: str) -> Any:
    split = [[f.split("^") for f in s.split("|")] for s in text.split("\r")]
    return split, split


def ours_obx(text: str) -> Any:
    m = parse(text)
    return [s.get("5") for s in m.segments_named("OBX")], m


def hl7_obx(text: str) -> Any:
    m = hl7.parse(text)
    return [str(s[5]) for s in m.segments("OBX")], m


def hl7apy_obx(text: str) -> Any:
    m = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    return [o.obx_5.value for o in m.obx], m


CASES: list[tuple[str, str, dict[str, Callable[[str], Any]]]] = [
    ("(a) 1 KB ORM^O01 + 11 reads", "a_orm_o01_1kb.hl7",
     {"accord": ours_a, "accord (bytes in)": ours_a_bytes, "python-hl7": hl7_a,
      "hl7apy": hl7apy_a, "bare split": floor_a}),
    ("(b) 3.5 KB ORU^R01, 30 OBX-5", "b_oru_r01_30obx.hl7",
     {"accord": ours_obx, "python-hl7": hl7_obx, "hl7apy": hl7apy_obx, "bare split": floor_a}),
    ("(c) 100 KB ORU^R01, 800 OBX-5", "c_oru_r01_100kb.hl7",
     {"accord": ours_obx, "python-hl7": hl7_obx, "hl7apy": hl7apy_obx, "bare split": floor_a}),
]


def rates(funcs: dict[str, Callable[[str], Any]], text: str) -> dict[str, float | None]:
    """Median messages/s of each parser over REPEATS rounds.

    Each round times every parser once in turn (a loop of at least LOOP_SECONDS, or one
    call), so that the load of a shared machine hits all peers alike and ratios hold.
    """
    samples: dict[str, list[float]] = {peer: [] for peer in funcs}
    failed: set[str] = set()
    for _ in range(REPEATS):
        for peer, func in funcs.items():
            if peer in failed:
                continue
            try:
                samples[peer].append(_loop(func, text))
            except Exception as exc:  # a peer failing a case is a result, not a crash
                print(f"{peer} failed: {exc!r}", file=sys.stderr)
                failed.add(peer)
    return {p: None if p in failed else statistics.median(v) for p, v in samples.items()}


def _loop(func: Callable[[str], Any], text: str) -> float:
    gc.collect()  # hl7apy leaves much cyclic garbage; do not bill the next peer for it
    count, start = 0, time.perf_counter()
    while True:
        func(text)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= LOOP_SECONDS:
            return count / elapsed


def retained_bytes(func: Callable[[str], Any], text: str, n: int) -> float:
    """tracemalloc bytes kept alive per parsed message (message + the values read)."""
    func(text)  # warm caches (path parsing, imports) outside the measurement
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [func(text) for _ in range(n)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / n


def check_same_values(texts: dict[str, str]) -> None:
    ours, theirs = ours_a(texts["a_orm_o01_1kb.hl7"])[0], hl7_a(texts["a_orm_o01_1kb.hl7"])[0]
    assert ours == theirs, (ours, theirs)


def main() -> None:
    texts = samples()
    check_same_values(texts)
    rows: list[str] = []
    summary: list[str] = []
    for title, name, funcs in CASES:
        text = texts[name]
        rates_now = rates(funcs, text)
        mems: dict[str, float | None] = {}
        for peer, func in funcs.items():
            r = rates_now[peer]
            mems[peer] = None if r is None else retained_bytes(
                func, text, max(2, min(200, int(r * 0.3))))
        mine = rates_now["accord"] or 0.0
        for peer in funcs:
            r, mem = rates_now[peer], mems[peer]
            if r is None:
                rows.append(f"| {title} | {peer} | failed | | |")
                continue
            ratio = mine / r
            kb = f"{mem / 1024:,.1f}" if mem is not None else ""
            shown = f"{r:,.0f}" if r >= 10 else f"{r:.2f}"
            rows.append(f"| {title} | {peer} | {shown} | {ratio:,.2f}× | {kb} |")
        summary.append(f"- {title}: accord {mine:,.0f} msg/s; " + ", ".join(
            f"{peer} ×{mine / r:,.1f}" for peer, r in rates_now.items() if r and peer != "accord"))
        print(f"{title} ({len(text):,} chars) done", file=sys.stderr)
    table = "\n".join([
        "| case | parser | messages/s (median of 5) | accord is × faster | KB retained / msg |",
        "|---|---|---:|---:|---:|", *rows])
    note = (f"Python {platform.python_version()}, {platform.machine()}; python-hl7 "
            f"{getattr(hl7, '__version__', '?')}, hl7apy with find_groups=False and "
            "TOLERANT validation. Input is `str`; reads per case as in bench/parse.py. "
            "`× faster` below 1 against the bare split means accord is slower than the floor "
            "(0.5 = within 2×).")
    markdown = "\n".join(["## parse", "", note, "", table, "", *summary])
    print(markdown)
    write_section("parse", markdown)


if __name__ == "__main__":
    main()
