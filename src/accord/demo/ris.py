"""The demo department's RIS: orders out, procedure status in, reports out.

In IHE Radiology Scheduled Workflow (RAD TF-1 §3) the RIS registers the patient (RAD-1,
ADT^A04/A08) and places the order (RAD-2/RAD-4, ORM^O01 NW); the modality reports what it
performed by MPPS (RAD-6/RAD-7) to the MPPS manager — Accord — which forwards the status
to the RIS as ORM^O01 ORC-1 SC with ORC-5 IP/CM/DC (Accord's outbound status messages).
Once an exam is completed the radiologist reads it and the RIS sends the report (RAD-28,
ORU^R01) with OBR-25 P (preliminary), then F (final).

:class:`SimulatedRis` plays that part: it sends the
:meth:`~accord.demo.traffic.Department.visit` traffic to Accord's MLLP port at ``rate``
messages per second, listens (a :class:`~accord.demo.traffic.Receiver`) for the status
Accord sends to a ``send: [status]`` destination, and reports on the exams that reached
CM. It keeps counts only: nothing it logs names a patient or an identifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from accord.demo.traffic import Department, Receiver, SimOrder
from accord.errors import DeliveryError, ParseError
from accord.hl7 import Message, parse
from accord.mllp.client import MllpClient

LOG = logging.getLogger(__name__)
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REMEMBERED = 5000  # orders kept for reporting (older ones are forgotten)


class SimulatedRis:
    """The RIS of ``accord demo``: see the module docstring.

    ``reading`` is the range (seconds) of the radiologist's delay, from CM to the
    preliminary report and from preliminary to final; ``now`` the clock of the messages.
    """

    def __init__(self, accord_port: int, rate: float, *, seed: int | None = None,
                 host: str = "127.0.0.1", reading: tuple[float, float] = (4.0, 12.0),
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._rng = random.Random(seed)
        # MSH-10 unique per run: a second demo on the same store must not look like a
        # resend of the first (same MSH-3, MSH-4, MSH-10 is answered, not applied).
        run = "".join(self._rng.choice(_BASE36) for _ in range(4))
        self.dept = Department(self._rng.getrandbits(64), control_prefix=f"SIM{run}-")
        self.inbox = Receiver(on_message=self._on_status)
        self.counts: Counter[str] = Counter()
        self._host, self._port, self._rate = host, accord_port, max(0.1, rate)
        self._reading, self._now = reading, now
        self.orders: OrderedDict[str, SimOrder] = OrderedDict()  # placed, by accession
        self._due: list[tuple[float, str, bool]] = []  # (monotonic time, accession, final)

    def set_target(self, accord_port: int) -> None:
        """Send to this MLLP port (known once the engine listens)."""
        self._port = accord_port

    async def start(self) -> int:
        """Listen for procedure status; returns the port (a destination's ``port``)."""
        return await self.inbox.start()

    async def stop(self) -> None:
        await self.inbox.stop()

    async def run(self) -> None:
        """Send until cancelled, one message every ``1/rate`` s; reports first when due."""
        async with MllpClient(self._host, self._port, ack_timeout=30.0) as client:
            while True:
                for text in self.next_messages():
                    await self._send(client, text)
                    await asyncio.sleep(1.0 / self._rate)

    def next_messages(self) -> list[str]:
        """The next message(s) to send: a report that is due, else a new visit."""
        clock = time.monotonic()
        due = [d for d in self._due if d[0] <= clock]
        if due:
            first = min(due)
            self._due.remove(first)
            _, accession, final = first
            order = self.orders.get(accession)
            if order is not None:
                if not final:
                    self._schedule(accession, final=True)
                self.counts["final reports" if final else "preliminary reports"] += 1
                return [self.dept.report(self._now(), order, final=final)]
        visit = self.dept.visit(self._now())
        if visit.order is not None:
            self.orders[visit.order.accession] = visit.order
            while len(self.orders) > _REMEMBERED:
                self.orders.popitem(last=False)
        self.counts["orders"] += 1
        if visit.mess is not None:
            self.counts[visit.mess] += 1
        return list(visit.messages)

    def summary(self) -> str:
        """Counts for the demo's periodic line (no patient data)."""
        c = self.counts
        return (f"RIS sent {c['sent']} (AA {c['AA']}, AE {c['AE']}, AR {c['AR']}), "
                f"got status IP {c['status IP']} / CM {c['status CM']} / DC {c['status DC']}, "
                f"reports {c['preliminary reports']} prelim + {c['final reports']} final")

    def _schedule(self, accession: str, *, final: bool) -> None:
        wait = self._rng.uniform(*self._reading)
        self._due.append((time.monotonic() + wait, accession, final))

    def _on_status(self, msg: Message) -> None:
        """ORM^O01 ORC-1 SC from Accord: count it; a CM puts the exam up for reading."""
        if msg.get("ORC-1") != "SC":
            return
        status, accession = msg.get("ORC-5"), msg.get("OBR-18")
        self.counts[f"status {status}"] += 1
        if status == "CM" and accession in self.orders:
            self._schedule(accession, final=False)

    async def _send(self, client: MllpClient, text: str) -> None:
        payload = text.encode("utf-8")
        self.counts["sent"] += 1
        try:
            if not text.startswith("MSH"):  # the malformed one: no MSH-10 to match
                ack = await client.send(payload)
                self.counts[_ack_code(ack)] += 1
                return
            result = await client.send_message(payload, text.split("|", 10)[9])
            self.counts[result.code] += 1
        except DeliveryError as exc:
            self.counts["failed"] += 1
            LOG.debug("simulated RIS: send failed: %s", exc)
            with contextlib.suppress(DeliveryError, OSError):
                await client.close()


def _ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK ("?" when it cannot be read)."""
    try:
        return parse(ack).get("MSA-1") or "?"
    except ParseError:
        return "?"
