"""Helpers for the scale-out tests (several nodes on one database): a fresh PostgreSQL
database on the shared server, per-node configs, numbered traffic with senders that fail
over between nodes, and the checks of the custody promise across nodes.

Traffic: ``patients`` synthetic patients, each with ``per_patient`` messages numbered
0, 1, 2, … (ORM^O01 mostly, ADT^A08 every fifth). The number travels in NTE-3 as
``SEQ <patient> <n> <inbound MSH-10>`` so the receiver can check each patient's order
although Accord gives every outbound copy its own MSH-10. A patient belongs to one sender,
which sends its next message only after the previous one was ACKed (as a RIS does).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from accord.demo.traffic import Receiver
from accord.errors import DeliveryError
from accord.hl7 import Message
from accord.mllp.client import MllpClient
from accord.store import StoredMessage, open_store

DESTINATIONS = (("pacs", True), ("ris", False))  # (name, per_patient)


# -- the database ---------------------------------------------------------------------
def restart_server() -> None:
    """Restart this machine's PostgreSQL cluster (every database on it)."""
    lines = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    version, cluster = next(line.split()[:2] for line in lines if " 5432 " in f" {line} ")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster,
                    "restart"], check=True, timeout=120)


def restart_allowed() -> bool:
    """Restarting the shared server disturbs other test runs: only when asked or in CI."""
    return os.environ.get("ACCORD_PG_RESTART_OK") == "1" or bool(os.environ.get("CI"))


# -- nodes -------------------------------------------------------------------------------
def node_config(path: Path, db_url: str, node_id: str, http_port: int,
                receivers: dict[str, int]) -> Path:
    """One node's config: its own node id and HTTP port, the shared database, and one
    destination per receiver (``pacs`` delivered per patient, ``ris`` FIFO)."""
    lines = [f"node_id: {node_id}", f"store: {{url: '{db_url}'}}",
             f"http: {{port: {http_port}}}", "dicom: {enabled: false}",
             "workflow: {enabled: false}", "destinations:"]
    for name, per_patient in DESTINATIONS:
        lines += [f"  - name: {name}", "    host: 127.0.0.1", f"    port: {receivers[name]}",
                  "    send: [adt, orders]", "    connect_timeout: 1", "    ack_timeout: 3",
                  "    backoff: {base: 0.05, cap: 0.5}",
                  f"    per_patient: {str(per_patient).lower()}", "    workers: 4"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- traffic -----------------------------------------------------------------------------
def message(patient: int, seq: int) -> tuple[str, bytes]:
    """(inbound MSH-10, ER7 bytes) of a patient's message number ``seq``."""
    cid = f"MN{patient:04d}S{seq:05d}"
    trigger = "ADT^A08^ADT_A01" if seq % 5 == 4 else "ORM^O01^ORM_O01"
    segs = [f"MSH|^~\\&|RIS|RADIOLOGY|ACCORD|RADIOLOGY|20260301080000||{trigger}|{cid}|P|2.5.1",
            f"PID|1||PT{patient:04d}^^^HOSP^MR||Test^Patient{patient}||19700101|F",
            "PV1|1|O|RAD^^^RADIOLOGY"]
    if trigger.startswith("ORM"):
        acc = f"A{patient:04d}{seq:05d}"
        segs += [f"ORC|NW|P{acc}^RIS|{acc}^PACS||SC",
                 f"OBR|1|P{acc}^RIS|{acc}^PACS|CT-HEAD^CT Head^LOCAL|||20260301080000"]
    segs.append(f"NTE|1||SEQ {patient} {seq} {cid}")
    return cid, ("\r".join(segs) + "\r").encode()


def seq_of(msg: Message) -> tuple[int, int]:
    """(patient, number) carried in NTE-3."""
    _tag, patient, seq, _cid = msg.get("NTE-3").split(" ")
    return int(patient), int(seq)


@dataclass
class Traffic:
    """What the senders saw: every MSH-10 answered AA, non-AA answers, resends, and how
    often a sender moved to another node."""

    acked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    resends: int = 0
    moves: int = 0


async def sender(ports: list[int], first: int, patients: list[int], per_patient: int,
                 traffic: Traffic) -> None:
    """Send each patient's messages in order; a message without an ACK (refused, cut,
    timed out) is resent with the same MSH-10 to the next node."""
    node = first
    client = MllpClient("127.0.0.1", ports[node], connect_timeout=1.0, ack_timeout=10.0)
    try:
        for seq in range(per_patient):
            for patient in patients:
                cid, payload = message(patient, seq)
                while True:
                    try:
                        result = await client.send_message(payload, cid)
                        break
                    except DeliveryError:
                        traffic.resends += 1
                        traffic.moves += 1
                        await client.close()
                        node = (node + 1) % len(ports)
                        client = MllpClient("127.0.0.1", ports[node], connect_timeout=1.0,
                                            ack_timeout=10.0)
                        await asyncio.sleep(0.05)
                (traffic.acked if result.code == "AA" else traffic.refused).append(cid)
    finally:
        await client.close()


def split_patients(patients: int, senders: int) -> list[list[int]]:
    return [list(range(n, patients, senders)) for n in range(senders)]


# -- checks ------------------------------------------------------------------------------
def stored_messages(db_url: str) -> tuple[dict[str, StoredMessage], int]:
    """Every stored inbound message that holds its MSH-10 (not a duplicate), by MSH-10,
    and how many duplicates were stored."""
    store = open_store(db_url)
    firsts: dict[str, StoredMessage] = {}
    duplicates = 0
    try:
        cursor: str | None = None
        while True:
            page = store.search_messages(limit=1000, cursor=cursor)
            for m in page.items:
                if m.status == "duplicate":
                    duplicates += 1
                else:
                    assert m.control_id not in firsts, f"{m.control_id} applied twice"
                    firsts[m.control_id] = m
            if page.next_cursor is None:
                return firsts, duplicates
            cursor = page.next_cursor
    finally:
        store.close()


def outbox_ids(db_url: str) -> dict[str, dict[str, str]]:
    """Per destination: outbound MSH-10 → status of every outbox row."""
    store = open_store(db_url)
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    try:
        cursor: str | None = None
        while True:
            page = store.list_outbox(limit=1000, cursor=cursor)
            for r in page.items:
                rows[r.destination][r.control_id] = r.status
            if page.next_cursor is None:
                return rows
            cursor = page.next_cursor
    finally:
        store.close()


def check_receiver(receiver: Receiver, routed: set[str], expected: int,
                   per_patient: int) -> None:
    """Every routed row arrived; after MSH-10 dedupe no inbound message arrived twice
    (under two outbound MSH-10s); each patient's numbers arrived in order, complete."""
    assert set(receiver.unique) == routed
    tags = [seq_of(m) for m in receiver.unique.values()]
    assert len(set(tags)) == len(tags) == expected, "a message was delivered twice"
    by_patient: dict[int, list[int]] = defaultdict(list)
    first_seen = dict.fromkeys(m.control_id for m in receiver.received)
    for cid in first_seen:
        patient, seq = seq_of(receiver.unique[cid])
        by_patient[patient].append(seq)
    for patient, seqs in by_patient.items():
        assert seqs == list(range(per_patient)), f"order broken for patient {patient}"
