"""``accord serve`` and ``accord demo`` (CONTRACT.md, "Command line").

``serve`` runs the engine until SIGTERM or SIGINT, then stops gracefully (answers in
flight go out, nothing half-written). ``demo`` is ``serve`` plus a simulated department:
a RIS sending exams to the engine's own MLLP port at a modest rate and, when the config
names no destination, a simulated PACS receiving what the engine routes. Both print only
what actually runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app
from accord.config import Config, Destination, load_config
from accord.errors import DeliveryError
from accord.mllp.client import MllpClient
from accord.runtime import Runtime, build
from accord.sim import PROCEDURES, Department, Receiver

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (SQLite).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Store URL (postgresql://…).")]
MllpOpt = Annotated[int | None, typer.Option("--mllp-port", help="MLLP listener port.")]
DicomOpt = Annotated[int | None, typer.Option("--dicom-port", help="DICOM MWL/MPPS port.")]
HttpOpt = Annotated[int | None, typer.Option("--http-port", help="Console and API port.")]
RateOpt = Annotated[float, typer.Option("--rate", help="Demo: messages per second.")]


def _config(config: Path | None, data: Path | None, db: str | None, mllp_port: int | None,
            dicom_port: int | None, http_port: int | None) -> Config:
    return load_config(config, {
        "store.data_dir": str(data) if data is not None else None, "store.url": db,
        "mllp.port": mllp_port, "dicom.port": dicom_port, "http.port": http_port})


@app.command()
def serve(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None,
          mllp_port: MllpOpt = None, dicom_port: DicomOpt = None,
          http_port: HttpOpt = None) -> None:
    """Run the engine: MLLP listener, store, delivery to the configured destinations."""
    cfg = _config(config, data, db, mllp_port, dicom_port, http_port)
    _logging()
    asyncio.run(_run(cfg, demo_rate=None))


@app.command()
def demo(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None,
         mllp_port: MllpOpt = None, dicom_port: DicomOpt = None,
         http_port: HttpOpt = None, rate: RateOpt = 2.0) -> None:
    """``serve`` plus a simulated department sending realistic (synthetic) traffic."""
    cfg = _config(config, data, db, mllp_port, dicom_port, http_port)
    _logging()
    asyncio.run(_run(cfg, demo_rate=max(0.1, rate)))


def _logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations: quiet unless wrong


async def _run(cfg: Config, demo_rate: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    receiver: Receiver | None = None
    if demo_rate is not None and not cfg.destinations:
        receiver = Receiver()
        await receiver.start()
        pacs = Destination(name="pacs-sim", host="127.0.0.1", port=receiver.port,
                           send=("adt", "orders", "reports"))
        cfg = cfg.model_copy(update={"destinations": (pacs,)})
    if demo_rate is not None and not cfg.workflow.catalog:
        # The simulated RIS's procedure codes, each scheduled on its station (the MWL).
        catalog = {"procedures": [{"code": code, "description": text, "modality": modality,
                                   "stations": [station]}
                                  for code, text, modality, station in PROCEDURES]}
        cfg = cfg.model_copy(update={"workflow": cfg.workflow.model_copy(
            update={"catalog": catalog})})
    rt = build(cfg)
    await rt.start()
    _announce(rt, receiver, demo_rate)
    tasks = []
    if demo_rate is not None:
        tasks.append(asyncio.create_task(_simulate(rt.mllp_port, demo_rate)))
        tasks.append(asyncio.create_task(_report(rt, receiver)))
    await stop.wait()
    typer.echo("accord: stopping…", err=True)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await rt.stop()
    if receiver is not None:
        await receiver.stop()


def _announce(rt: Runtime, receiver: Receiver | None, demo_rate: float | None) -> None:
    lines = ["Accord is running (Ctrl-C to stop)."]
    lines += [f"  listening: {where}" for where in rt.listening()]
    cfg = rt.config.store
    lines.append(f"  store:     {cfg.url or (cfg.data_dir.resolve() / 'accord.db')}")
    if rt.setup_link:  # no console user yet: a one-time link creates the first admin
        lines.append(f"  setup:     {rt.setup_link}  (one-time link: creates the first admin)")
    for dest in rt.config.destinations:
        lines.append(f"  delivers:  {dest.name} ({', '.join(dest.send)}) to "
                     f"{dest.host}:{dest.port}")
    if demo_rate is not None:
        lines.append(f"  demo:      a simulated RIS sends ~{demo_rate:g} message(s)/s to "
                     f"port {rt.mllp_port}")
        if receiver is not None:
            lines.append(f"  demo:      a simulated PACS receives on 127.0.0.1:{receiver.port}")
        lines.append("  try:       .venv/bin/accord send tests/samples/gateway_orm_o01_nw.hl7 "
                     f"--to 127.0.0.1:{rt.mllp_port}")
    typer.echo("\n".join(lines))


async def _simulate(port: int, rate: float) -> None:
    """Send exams, one message every ``1/rate`` s; each exam's messages in order."""
    dept = Department()
    async with MllpClient("127.0.0.1", port, ack_timeout=30.0) as client:
        while True:
            for text in dept.exam(datetime.now(UTC)).messages:
                control_id = text.split("|", 10)[9]
                with contextlib.suppress(DeliveryError):
                    await client.send_message(text.encode("utf-8"), control_id)
                await asyncio.sleep(1.0 / rate)


async def _report(rt: Runtime, receiver: Receiver | None) -> None:
    """One line of counts every 30 s (no patient data)."""
    while True:
        await asyncio.sleep(30)
        stats = await asyncio.to_thread(rt.store.stats)
        got = f", simulated PACS got {len(receiver.unique)}" if receiver is not None else ""
        typer.echo(f"accord demo: {stats['messages']} messages stored, "
                   f"{stats['outbox_delivered']} delivered, "
                   f"{stats['outbox_pending']} pending{got}")
