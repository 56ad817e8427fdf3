"""``accord serve`` as a real process: SIGTERM mid-traffic stops it gracefully (exit 0,
every ACKed message stored, the delivery in progress finished and recorded); SIGHUP and
the admin's API action reload destinations and dialects without dropping a connection;
a file with an error is refused, naming the key and line, and the engine runs on."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from accord.store import sqlite_url
from accord.store.db import connect
from accord.store.schema import audit_log, messages, outbox
from ops_support import (
    END,
    START,
    AckPeer,
    ack_code,
    control_id,
    destination,
    order,
    send,
    serve_env,
    serving,
    write_config,
)

TOKEN = "ops-test-admin-token-0123456789"


def _wait(condition: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigterm_mid_traffic_finishes_what_is_in_flight(tmp_path: Path) -> None:
    slow = AckPeer(delay=1.5)  # every delivery is in progress for 1.5 s
    data = tmp_path / "data"
    config = write_config(tmp_path / "accord.yaml", shutdown_grace=20,
                          destinations=[destination("pacs", slow.port, ack_timeout=10)])
    acked: list[str] = []
    stop = threading.Event()

    def traffic(port: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                ack = send(port, order(n))
            except OSError:  # the listener stopped accepting
                return
            if ack_code(ack) == "AA":
                acked.append(control_id(n))
            n += 1

    try:
        with serving(["--config", str(config), "--data", str(data)],
                     tmp_path / "serve.log") as eng:
            sender = threading.Thread(target=traffic, args=(eng.mllp_port,), daemon=True)
            sender.start()
            assert _wait(lambda: len(acked) >= 20 and slow.received)
            assert eng.stop(signal.SIGTERM) == 0, eng.log()
            stop.set()
            sender.join(30)
            log = eng.log()
    finally:
        slow.close()
    assert "stopped" in log and "Traceback" not in log
    database = connect(sqlite_url(data))
    try:
        with database.read() as conn:
            stored = set(conn.scalars(select(messages.c.control_id)))
            in_flight = conn.scalar(select(func.count()).select_from(outbox)
                                    .where(outbox.c.status == "in_flight"))
            delivered = set(conn.scalars(select(outbox.c.control_id)
                                         .where(outbox.c.status == "delivered")))
    finally:
        database.close()
    assert set(acked) <= stored
    assert in_flight == 0  # the row being sent at SIGTERM got its ACK, and it was recorded
    assert set(slow.received) <= delivered


def _persistent(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _exchange(sock: socket.socket, payload: bytes) -> str:
    sock.sendall(START + payload + END)
    buf = b""
    while END not in buf:
        chunk = sock.recv(65536)
        assert chunk, "the connection was closed"
        buf += chunk
    return ack_code(buf)


def test_reload_by_sighup_and_by_the_admin_api(tmp_path: Path) -> None:
    first, second, third = AckPeer(), AckPeer(), AckPeer()
    path = tmp_path / "accord.yaml"
    write_config(path, destinations=[destination("pacs", first.port)])
    env = {**serve_env(), "ACCORD_API_TOKEN": TOKEN}
    data = tmp_path / "data"
    try:
        with serving(["--config", str(path), "--data", str(data)], tmp_path / "serve.log",
                     env=env) as eng:
            conn = _persistent(eng.mllp_port)
            assert _exchange(conn, order(1)) == "AA"
            assert _wait(lambda: len(first.received) == 2)  # adt + orders

            # SIGHUP: pacs moves to another port, ris appears; the connection stays.
            write_config(path, destinations=[destination("pacs", second.port),
                                              destination("ris", third.port, ["orders"])])
            eng.process.send_signal(signal.SIGHUP)
            assert _wait(lambda: "configuration reloaded" in eng.log())
            assert _exchange(conn, order(2)) == "AA"
            assert _wait(lambda: len(second.received) == 2 and len(third.received) == 1)
            assert len(first.received) == 2

            # A file with an error: refused, key and line named, nothing changes.
            write_config(path, destinations=[destination("pacs", first.port),
                                              destination("ris", third.port, ["letters"])])
            text = path.read_text()
            line = text[: text.index("letters")].count("\n") + 1
            eng.process.send_signal(signal.SIGHUP)
            assert _wait(lambda: "configuration not reloaded" in eng.log())
            refused = next(ln for ln in eng.log().splitlines() if "not reloaded" in ln)
            assert "destinations[1].send[0]" in refused and f"line {line})" in refused
            assert _exchange(conn, order(3)) == "AA"
            assert _wait(lambda: len(second.received) == 4 and len(third.received) == 2)

            # The admin's action: the same reload, over the API, audited.
            write_config(path, destinations=[destination("pacs", second.port)],
                         dialects={"ris": {"match": {"application": "RIS"},
                                           "unknown_order": "sometimes"}})
            api = httpx.Client(base_url=eng.url, headers={"Authorization": f"Bearer {TOKEN}"})
            refused_api = api.post("/api/config/reload")
            assert refused_api.status_code == 400
            assert "dialects.ris.unknown_order" in refused_api.json()["detail"]
            write_config(path, destinations=[destination("pacs", second.port)],
                         node_id="renamed", mllp={"limits": {"max_connections": 50}})
            done = api.post("/api/config/reload")
            assert done.status_code == 200, done.text
            assert done.json()["applied"] == ["destinations", "mllp.limits"]
            assert done.json()["restart"] == ["node_id"]
            running = api.get("/api/config").json()
            assert running["node_id"] is None  # read at start only
            assert running["mllp"]["limits"]["max_connections"] == 50
            assert _exchange(conn, order(4)) == "AA"
            assert _wait(lambda: len(second.received) == 6)
            assert len(third.received) == 2  # ris is gone
            conn.close()
    finally:
        for peer in (first, second, third):
            peer.close()
    database = connect(sqlite_url(data))
    try:
        with database.read() as db:
            audited = [(r.action, r.outcome) for r in db.execute(
                select(audit_log).where(audit_log.c.action == "config.reload"))]
    finally:
        database.close()
    assert audited == [("config.reload", "refused"), ("config.reload", "ok")]


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "accord.yaml")
    log_path = tmp_path / "serve.log"
    with serving(["--config", str(config), "--data", str(tmp_path / "data"),
                  "--log-format", "json"], log_path, ports=_json_ports) as eng:
        assert ack_code(send(eng.mllp_port, order(1))) == "AA"
        assert eng.stop() == 0
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    running = [e for e in events if e["message"] == "Accord is running"]
    assert running and any("mllp://" in x for x in running[0]["listening"])


def _json_ports(text: str) -> tuple[int, int] | None:
    for line in text.splitlines():
        event = json.loads(line)
        if event.get("message") == "Accord is running":
            ports = {x.split("://")[0].split()[-1]: int(x.rsplit(":", 1)[1])
                     for x in event["listening"]}
            return ports["mllp"], ports["http"]
    return None
