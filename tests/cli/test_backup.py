"""``accord backup`` while a real ``accord serve`` takes traffic, and ``accord restore``
into an empty store: every message ACKed before the backup began is in the restored
store, with its outbox rows (same MSH-10s, states no further along than the live store's);
an engine started on the restore delivers what was still queued. Refusals are one line."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from accord.store import sqlite_url
from accord.store.db import connect
from accord.store.schema import messages, outbox
from accord.store.schema.migrations import head_revision
from ops_support import (
    AckPeer,
    accord,
    ack_code,
    control_id,
    dead_port,
    destination,
    one_line_error,
    order,
    send,
    serving,
    write_config,
)
from pg_support import fresh_database

ORDER_OF_STATES = {"pending": 0, "in_flight": 0, "error": 1, "cancelled": 1, "delivered": 1}


@dataclass
class Sender:
    """Sends order after order over MLLP from a thread, noting when each ACK came back."""

    port: int
    acked: list[tuple[int, str, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 5000:
            ack = send(self.port, order(n))
            self.acked.append((n, ack_code(ack), time.monotonic()))
            n += 1

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass(frozen=True)
class Row:
    destination: str
    control_id: str
    status: str


def _state(url: str) -> tuple[set[str], dict[str, list[Row]]]:
    """MSH-10s of the stored messages, and the outbox rows of each (by its MSH-10)."""
    database = connect(url)
    try:
        with database.read() as conn:
            ids = dict(conn.execute(select(messages.c.id, messages.c.control_id)).all())
            rows: dict[str, list[Row]] = {}
            for r in conn.execute(select(outbox).order_by(outbox.c.id)):
                source = ids.get(r.source_message_id, "")
                rows.setdefault(source, []).append(Row(r.destination, r.control_id, r.status))
    finally:
        database.close()
    return set(ids.values()), rows


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The live store and the (empty) one to restore into, on one database kind."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "live"), sqlite_url(tmp_path / "restored")
        return
    with fresh_database("accord_live", "backup tests") as live, \
            fresh_database("accord_restored", "backup tests") as restored:
        yield live, restored


def test_backup_under_load_then_restore(tmp_path: Path, stores: tuple[str, str]) -> None:
    live_url, restored_url = stores
    pacs, ris_down = AckPeer(), dead_port()
    config = write_config(tmp_path / "accord.yaml", destinations=[
        destination("pacs", pacs.port), destination("ris", ris_down.getsockname()[1], ["orders"])])
    out = tmp_path / ("backup.db" if live_url.startswith("sqlite") else "backup.dump")
    try:
        with serving(["--config", str(config), "--db", live_url], tmp_path / "live.log") as eng:
            sender = Sender(eng.mllp_port)
            thread = threading.Thread(target=sender.run, daemon=True)
            thread.start()
            sender.wait_for(40)
            began = time.monotonic()
            # Both argument orders work: flags after the file here, before it below.
            made = accord("backup", str(out), "--db", live_url)
            sender.wait_for(len(sender.acked) + 10)  # traffic went on during the backup
            sender.stop.set()
            thread.join(30)
            assert made.returncode == 0, made.stderr
            assert f"schema {head_revision()}" in made.stdout
            assert eng.stop() == 0
    finally:
        pacs.close()
        ris_down.close()
    before = {control_id(n) for n, code, at in sender.acked if code == "AA" and at < began}
    assert len(before) >= 40

    done = accord("restore", "--db", restored_url, str(out))
    assert done.returncode == 0, done.stderr
    live_ids, live_rows = _state(live_url)
    kept_ids, kept_rows = _state(restored_url)
    assert before <= kept_ids <= live_ids
    for cid in before:
        kept, final = kept_rows[cid], live_rows[cid]
        assert [(r.destination, r.control_id) for r in kept] == \
            [(r.destination, r.control_id) for r in final]  # same rows, same MSH-10s
        for was, now in zip(kept, final, strict=True):
            assert ORDER_OF_STATES[was.status] <= ORDER_OF_STATES[now.status], (was, now)
            assert was.status != "in_flight"  # leases of the old nodes given back
        assert {r.status for r in kept if r.destination == "ris"} == {"pending"}

    # Restoring again, over what is now a store with data: refused, one line.
    one_line_error(accord("restore", str(out), "--db", restored_url), "not empty", "messages")
    if restored_url.startswith("sqlite"):
        _serve_restored(tmp_path, restored_url, kept_rows)


def _serve_restored(tmp_path: Path, url: str, rows: dict[str, list[Row]]) -> None:
    """An engine on the restored store sends what was queued for pacs, MSH-10s kept."""
    pacs = AckPeer()
    queued = {r.control_id for rs in rows.values() for r in rs
              if r.destination == "pacs" and r.status == "pending"}
    config = write_config(tmp_path / "restored.yaml",
                          destinations=[destination("pacs", pacs.port)])
    try:
        with serving(["--config", str(config), "--db", url], tmp_path / "restored.log"):
            deadline = time.monotonic() + 60
            while not queued <= set(pacs.received) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert queued <= set(pacs.received)
    finally:
        pacs.close()


def test_refusals_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert accord("db", "upgrade", "--data", str(data)).returncode == 0
    out = tmp_path / "b.db"
    assert accord("backup", "--data", str(data), str(out)).returncode == 0
    one_line_error(accord("backup", "--data", str(data), str(out)), "exists already")
    one_line_error(accord("backup", "--data", str(tmp_path / "none"), str(tmp_path / "c.db")),
                   "no store at")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a backup at all")
    one_line_error(accord("restore", str(junk), "--data", str(tmp_path / "r")),
                   "not an Accord backup")
    archive = tmp_path / "fake.dump"
    archive.write_bytes(b"PGDMP\x01\x0e")
    one_line_error(accord("restore", str(archive), "--data", str(tmp_path / "r")),
                   "restores into PostgreSQL only")
    # An empty store (schema, no data) is a valid target; it is replaced.
    assert accord("db", "upgrade", "--data", str(tmp_path / "empty")).returncode == 0
    r = accord("restore", str(out), "--data", str(tmp_path / "empty"))
    assert r.returncode == 0, r.stderr
