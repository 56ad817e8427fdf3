"""``accord send`` as a subprocess against an in-test MLLP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from accord.mllp.server import MllpServer, PeerInfo
from accord.mllp.tls import server_context

SAMPLES = Path(__file__).parents[1] / "samples" / "mllp"
ACCORD = Path(sys.executable).parent / "accord"

Answer = Callable[[bytes], Awaitable[bytes | None]]


def control_id_of(payload: bytes) -> str:
    return payload.split(b"\r")[0].split(b"|")[9].decode()


def ack(control_id: str, code: str = "AA", text: str = "") -> bytes:
    return (f"MSH|^~\\&|RCV|HOSP|RIS|HOSP|20260101120001||ACK|A-{control_id}|P|2.5.1\r"
            f"MSA|{code}|{control_id}|{text}\r").encode()


async def answer_aa(payload: bytes) -> bytes:
    return ack(control_id_of(payload))


class Receiver:
    """An MllpServer on its own event loop in a thread, recording what it receives."""

    def __init__(self, answer: Answer, ssl_context: object = None) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = MllpServer(self._handle, host="127.0.0.1", port=0,
                                 ssl_context=ssl_context)  # type: ignore[arg-type]

    async def _handle(self, payload: bytes, peer: PeerInfo) -> bytes | None:
        self.received.append(payload)
        return await self.answer(payload)

    def __enter__(self) -> Receiver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def to(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(answer: Answer = answer_aa, ssl_context: object = None) -> Receiver:
        rcv = Receiver(answer, ssl_context).__enter__()
        started.append(rcv)
        return rcv

    yield start
    for rcv in started:
        rcv.__exit__()


def accord_send(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ACCORD_DEBUG"}
    return subprocess.run([str(ACCORD), "send", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accord: error:"), proc.stderr


def test_all_aa_exits_0(receiver: Callable[..., Receiver]) -> None:
    rcv = receiver()
    proc = accord_send(SAMPLES / "send_orm_o01.hl7", "--to", rcv.to)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["SEND0001 AA"]
    assert rcv.received == [(SAMPLES / "send_orm_o01.hl7").read_bytes()]


def test_an_ae_exits_1_and_shows_the_text(receiver: Callable[..., Receiver]) -> None:
    async def answer(payload: bytes) -> bytes:
        cid = control_id_of(payload)
        return ack(cid, "AE", "unknown order") if cid == "SEND0102" else ack(cid)

    rcv = receiver(answer)
    proc = accord_send(SAMPLES / "send_two_messages_lf.hl7", "--to", rcv.to)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["SEND0101 AA", "SEND0102 AE unknown order"]


def test_multi_message_file_goes_out_message_by_message_with_cr(
    receiver: Callable[..., Receiver],
) -> None:
    rcv = receiver()
    proc = accord_send(SAMPLES / "send_two_messages_lf.hl7", "--to", rcv.to)
    assert proc.returncode == 0, proc.stderr
    assert [control_id_of(p) for p in rcv.received] == ["SEND0101", "SEND0102"]
    lines = (SAMPLES / "send_two_messages_lf.hl7").read_bytes().split(b"\n")
    assert rcv.received[0] == b"\r".join(lines[:3]) + b"\r"
    assert all(b"\n" not in p for p in rcv.received)


def test_fhs_batch_sends_its_messages_without_the_envelope(
    receiver: Callable[..., Receiver],
) -> None:
    rcv = receiver()
    proc = accord_send(SAMPLES / "send_batch_fhs.hl7", "--to", rcv.to)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["SEND0201 AA", "SEND0202 AA"]
    assert len(rcv.received) == 2
    assert all(p.startswith(b"MSH|") and b"BHS" not in p and b"BTS" not in p
               for p in rcv.received)


def test_original_charset_bytes_are_kept(receiver: Callable[..., Receiver]) -> None:
    rcv = receiver()
    sample = SAMPLES / "send_latin1_8859-1.hl7"
    proc = accord_send(sample, "--to", rcv.to)
    assert proc.returncode == 0, proc.stderr
    assert rcv.received == [sample.read_bytes()]
    assert b"M\xdcLLER" in rcv.received[0]


def test_several_files_and_verbose(receiver: Callable[..., Receiver]) -> None:
    rcv = receiver()
    proc = accord_send(SAMPLES / "send_orm_o01.hl7", SAMPLES / "send_batch_fhs.hl7",
                       "--to", rcv.to, "--verbose")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "SEND0001 AA"
    assert "MSA|AA|SEND0001|" in out
    assert [line for line in out if line.startswith("SEND")] == [
        "SEND0001 AA", "SEND0201 AA", "SEND0202 AA"]


def test_many_messages(receiver: Callable[..., Receiver], tmp_path: Path) -> None:
    template = (SAMPLES / "send_orm_o01.hl7").read_bytes()
    many = tmp_path / "many.hl7"
    many.write_bytes(b"".join(template.replace(b"SEND0001", b"MANY%04d" % i)
                              for i in range(30)))
    rcv = receiver()
    proc = accord_send(many, "--to", rcv.to)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"MANY{i:04d} AA" for i in range(30)]
    assert "Traceback" not in proc.stderr


def test_wrong_msa_2_is_a_mismatch_exit_1(receiver: Callable[..., Receiver]) -> None:
    async def answer(payload: bytes) -> bytes:
        return ack("NOT-THIS-ONE")

    rcv = receiver(answer)
    proc = accord_send(SAMPLES / "send_two_messages_lf.hl7", "--to", rcv.to)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert len(out) == 2 and all(" MISMATCH " in line for line in out)
    assert len(rcv.received) == 2  # the second message still went out, on a new connection


def test_no_answer_in_time_is_a_one_line_error(receiver: Callable[..., Receiver]) -> None:
    async def silent(payload: bytes) -> None:
        return None

    rcv = receiver(silent)
    proc = accord_send(SAMPLES / "send_orm_o01.hl7", "--to", rcv.to, "--timeout", "0.3")
    assert_one_line_error(proc)
    assert "no ACK" in proc.stderr


def test_connection_refused_is_a_one_line_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = accord_send(SAMPLES / "send_orm_o01.hl7", "--to", f"127.0.0.1:{port}")
    assert_one_line_error(proc)
    assert "cannot connect" in proc.stderr


def test_unknown_host_is_a_one_line_error() -> None:
    proc = accord_send(SAMPLES / "send_orm_o01.hl7", "--to", "no-such-host.invalid:2575",
                       "--timeout", "5")
    assert_one_line_error(proc)


@pytest.mark.parametrize("to", ["localhost", "127.0.0.1:", "127.0.0.1:notaport", ":2575",
                                "127.0.0.1:70000"])
def test_bad_target_is_a_one_line_error(to: str) -> None:
    assert_one_line_error(accord_send(SAMPLES / "send_orm_o01.hl7", "--to", to))


def test_bad_files_are_one_line_errors(receiver: Callable[..., Receiver],
                                       tmp_path: Path) -> None:
    rcv = receiver()
    assert_one_line_error(accord_send(SAMPLES / "send_not_hl7.txt", "--to", rcv.to))
    assert_one_line_error(accord_send(tmp_path / "missing.hl7", "--to", rcv.to))
    # A bad file anywhere in the list stops the run before anything is sent.
    assert_one_line_error(accord_send(SAMPLES / "send_orm_o01.hl7",
                                      SAMPLES / "send_not_hl7.txt", "--to", rcv.to))
    assert rcv.received == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(receiver: Callable[..., Receiver], tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=tmp_path, check=True, capture_output=True)
    ctx = server_context(tmp_path / "cert.pem", tmp_path / "key.pem")
    rcv = receiver(ssl_context=ctx)
    sample = SAMPLES / "send_orm_o01.hl7"
    good = accord_send(sample, "--to", rcv.to, "--tls", "--ca", tmp_path / "cert.pem")
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == ["SEND0001 AA"]
    unverified = accord_send(sample, "--to", rcv.to, "--no-verify")
    assert unverified.returncode == 0, unverified.stderr
    untrusted = accord_send(sample, "--to", rcv.to, "--tls")  # system CAs do not know it
    assert_one_line_error(untrusted)
    assert_one_line_error(accord_send(sample, "--to", rcv.to, "--ca", tmp_path / "nope.pem"))


def _run_with_terminal_stderr(*args: str | Path) -> tuple[int, str, bytes]:
    """Run ``accord send`` with standard error on a pseudo-terminal (as a user sees it).

    The terminal is described to the child, not inherited from whoever runs the tests:
    a capable one (``xterm-256color``, 80 columns); on a ``dumb`` one rich draws nothing
    live, which is right for such a terminal but not what this test is about.
    """
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80"}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    proc = subprocess.Popen([str(ACCORD), "send", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    out, _ = proc.communicate(timeout=120)
    os.close(slave)
    err = b""
    with contextlib.suppress(OSError):  # EIO once the terminal has nothing more
        while chunk := os.read(master, 65536):
            err += chunk
    os.close(master)
    return proc.returncode, out.decode(), err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux pty")
def test_progress_bar_on_a_terminal_only_when_sending_many(
    receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    template = (SAMPLES / "send_orm_o01.hl7").read_bytes()
    many = tmp_path / "many.hl7"
    many.write_bytes(b"".join(template.replace(b"SEND0001", b"BAR%04d" % i) for i in range(25)))
    rcv = receiver()
    code, out, err = _run_with_terminal_stderr(many, "--to", rcv.to)
    assert code == 0 and len(out.splitlines()) == 25
    assert b"sending" in err and b"25/25" in err
    code, out, err = _run_with_terminal_stderr(SAMPLES / "send_orm_o01.hl7", "--to", rcv.to)
    assert code == 0 and out.splitlines() == ["SEND0001 AA"]
    assert b"sending" not in err
