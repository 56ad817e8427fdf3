"""The simulated department around a running engine, for ``accord demo``.

What runs, all on 127.0.0.1 (nothing leaves the machine):
- a RIS (:class:`accord.demo.ris.SimulatedRis`) sending registrations, orders and
  reports to the engine's MLLP port, and receiving procedure status as destination
  ``ris-sim`` (``send: [status]``);
- one modality per station of the procedure catalog
  (:class:`accord.demo.modality.Modalities`): worklist C-FIND and MPPS to the DICOM port;
- a PACS (:class:`accord.demo.traffic.Receiver`) receiving ADT, orders and reports as
  destination ``pacs-sim``.
When the config names destinations of its own, those are used instead of ``ris-sim`` and
``pacs-sim`` (and the RIS, getting no status, sends no reports). When it has no
procedure catalog the RIS's procedure codes are the catalog, each on its station, so the
RIS's orders reach the worklist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from accord.config import Config, Destination
from accord.demo.modality import Modalities, stations_of
from accord.demo.ris import SimulatedRis
from accord.demo.traffic import PROCEDURES, Receiver
from accord.runtime import Runtime

LOG = logging.getLogger(__name__)


def demo_catalog() -> dict[str, Any]:
    """The simulated RIS's procedure codes, each scheduled on its station (the MWL)."""
    return {"procedures": [{"code": code, "description": text, "modality": modality,
                            "stations": [station]}
                           for code, text, modality, station in PROCEDURES]}


class DemoDepartment:
    """The simulated systems: :meth:`prepare` the config, then :meth:`start` them around
    a started runtime, :meth:`describe` them, :meth:`stop` them."""

    def __init__(self, rate: float, seed: int | None = None) -> None:
        self.rate = rate
        self.seed = seed
        self.ris: SimulatedRis | None = None
        self.pacs: Receiver | None = None
        self.modalities: Modalities | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def prepare(self, cfg: Config) -> Config:
        """Start the simulated receivers (when the config names no destination) and return
        the config with their destinations and the demo catalog filled in."""
        if not cfg.destinations:
            self.ris = SimulatedRis(0, self.rate, seed=self.seed)
            self.pacs = Receiver()
            ris_port, pacs_port = await self.ris.start(), await self.pacs.start()
            cfg = cfg.model_copy(update={"destinations": (
                Destination(name="ris-sim", host="127.0.0.1", port=ris_port,
                            send=("status",)),
                Destination(name="pacs-sim", host="127.0.0.1", port=pacs_port,
                            send=("adt", "orders", "reports")))})
        if not cfg.workflow.catalog:
            cfg = cfg.model_copy(update={"workflow": cfg.workflow.model_copy(
                update={"catalog": demo_catalog()})})
        return cfg

    def start(self, rt: Runtime) -> None:
        """Start the RIS traffic, the modalities and the periodic summary."""
        if self.ris is None:  # destinations of the config's own: a RIS without inbox
            self.ris = SimulatedRis(0, self.rate, seed=self.seed)
        self.ris.set_target(rt.mllp_port)
        self._tasks.append(asyncio.create_task(self.ris.run(), name="demo-ris"))
        stations = stations_of(rt.config.workflow.catalog)
        if rt.dicom_port and stations:
            logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one line per PDU
            self.modalities = Modalities(stations, "127.0.0.1", rt.dicom_port,
                                         rt.config.dicom.ae_title, seed=self.seed)
            self._tasks.append(asyncio.create_task(self.modalities.run(),
                                                   name="demo-modalities"))
        self._tasks.append(asyncio.create_task(self._report(rt), name="demo-report"))

    async def stop(self) -> None:
        """Cancel the traffic (before the runtime stops), then close the receivers."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def close(self) -> None:
        """Stop the simulated receivers (after the runtime stopped delivering)."""
        if self.ris is not None:
            await self.ris.stop()
        if self.pacs is not None:
            await self.pacs.stop()

    def describe(self, rt: Runtime) -> list[str]:
        """The announcement lines: what is simulated and where to look."""
        lines = []
        if rt.http is not None and rt.http.port:
            url = f"http://{rt.http.host}:{rt.http.port}"
            lines.append(f"  console:   {url}")
            if not rt.setup_link:
                lines.append(f"  login:     {url}/login with a console user "
                             "(accord user add NAME --role admin --data DIR)")
            token = "$ACCORD_API_TOKEN" if os.environ.get("ACCORD_API_TOKEN") else \
                f"<token> (make one at {url}/tokens, or set ACCORD_API_TOKEN)"
            lines.append(f"  API:       {url}/api/stats with Authorization: Bearer {token}")
        inbox = f"; gets status on 127.0.0.1:{self.ris.inbox.port} (ris-sim)" \
            if self.ris is not None and self.ris.inbox.port else ""
        lines.append(f"  demo RIS:  a simulated RIS sends registrations, orders, reports "
                     f"(~{self.rate:g} msg/s) to 127.0.0.1:{rt.mllp_port}{inbox}")
        stations = stations_of(rt.config.workflow.catalog)
        if rt.dicom_port and stations:
            names = ", ".join(f"{s.ae_title} ({s.modality})" for s in stations)
            lines.append(f"  demo MOD:  simulated modalities {names} query the worklist "
                         f"(C-FIND) and send MPPS to {rt.config.dicom.ae_title}@127.0.0.1:"
                         f"{rt.dicom_port}")
        if self.pacs is not None:
            lines.append(f"  demo PACS: a simulated PACS receives ADT, orders, reports on "
                         f"127.0.0.1:{self.pacs.port} (pacs-sim)")
        lines.append("  demo mess: now and then a look-alike patient under a new MRN "
                     "(duplicates), an unmapped procedure code, a resent MSH-10 (answered "
                     "once), a message without MSH (AR), an update without MRN (AE: error "
                     "queue), an unscheduled MPPS")
        return lines

    async def _report(self, rt: Runtime, every: float = 30.0) -> None:
        """One line of counts every ``every`` s (no patient data)."""
        while True:
            await asyncio.sleep(every)
            stats = await asyncio.to_thread(rt.store.stats)
            parts = [f"{stats['messages']} messages stored, {stats['outbox_delivered']} "
                     f"delivered, {stats['outbox_pending']} pending"]
            if self.ris is not None:
                parts.append(self.ris.summary())
            if self.modalities is not None:
                parts.append(self.modalities.summary())
            print("accord demo: " + "; ".join(parts), flush=True)
