"""``accord serve`` and ``accord demo`` (docs/interface.md, "Command line").

``serve`` runs the engine until SIGTERM or SIGINT, then stops gracefully (answers in
flight go out, nothing half-written). ``demo`` is ``serve`` plus a simulated department
(:mod:`accord.demo`): a RIS sending registrations, orders and reports to the engine's own
MLLP port at a modest rate, modalities querying the worklist and sending MPPS and, when
the config names no destination, a RIS and a PACS receiving what the engine sends. Both
print only what actually runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app
from accord.config import Config, load_config
from accord.demo.department import DemoDepartment
from accord.runtime import Runtime, build

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
    demo: DemoDepartment | None = None
    if demo_rate is not None:  # the simulated department (accord.demo)
        demo = DemoDepartment(demo_rate)
        cfg = await demo.prepare(cfg)
    rt = build(cfg)
    await rt.start()
    _announce(rt, demo)
    if demo is not None:
        demo.start(rt)
    await stop.wait()
    typer.echo("accord: stopping…", err=True)
    if demo is not None:
        await demo.stop()
    await rt.stop()
    if demo is not None:
        await demo.close()


def _announce(rt: Runtime, demo: DemoDepartment | None) -> None:
    lines = ["Accord is running (Ctrl-C to stop)."]
    lines += [f"  listening: {where}" for where in rt.listening()]
    cfg = rt.config.store
    lines.append(f"  store:     {cfg.url or (cfg.data_dir.resolve() / 'accord.db')}")
    if rt.setup_link:  # no console user yet: a one-time link creates the first admin
        lines.append(f"  setup:     {rt.setup_link}  (one-time link: creates the first admin)")
    for dest in rt.config.destinations:
        lines.append(f"  delivers:  {dest.name} ({', '.join(dest.send)}) to "
                     f"{dest.host}:{dest.port}")
    if demo is not None:
        lines += demo.describe(rt)
        lines.append("  try:       .venv/bin/accord send tests/samples/gateway_orm_o01_nw.hl7 "
                     f"--to 127.0.0.1:{rt.mllp_port}")
    typer.echo("\n".join(lines))
