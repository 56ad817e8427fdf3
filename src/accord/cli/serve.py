"""``accord serve`` and ``accord demo`` (docs/interface.md, "Command line").

``serve`` runs the engine until SIGTERM or SIGINT, then stops gracefully: it stops
accepting, answers what is in flight and lets deliveries in progress finish, within
``shutdown_grace`` seconds, and exits 0. SIGHUP reloads the configuration file
(:mod:`accord.reload`); a file with an error is refused and the engine runs on as it was.
``--log-format json`` logs one JSON object per line (:mod:`accord.cli._logs`).

``demo`` is ``serve`` plus a simulated department (:mod:`accord.demo`): a RIS sending
registrations, orders and reports to the engine's own MLLP port at a modest rate,
modalities querying the worklist and sending MPPS and, when the config names no
destination, a RIS and a PACS receiving what the engine sends. Both
print only what actually runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app, fail
from accord.cli._logs import FORMATS, setup
from accord.config import Config, load_config
from accord.demo.department import DemoDepartment
from accord.errors import AccordError
from accord.runtime import Runtime, build

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (SQLite).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Store URL (postgresql://…).")]
MllpOpt = Annotated[int | None, typer.Option("--mllp-port", help="MLLP listener port.")]
DicomOpt = Annotated[int | None, typer.Option("--dicom-port", help="DICOM MWL/MPPS port.")]
HttpOpt = Annotated[int | None, typer.Option("--http-port", help="Console and API port.")]
RateOpt = Annotated[float, typer.Option("--rate", help="Demo: messages per second.")]
LogOpt = Annotated[str, typer.Option("--log-format", help="text (default) or json: one "
                                     "JSON object per line, for log collectors.")]
log = logging.getLogger("accord.serve")


def _loader(config: Path | None, data: Path | None, db: str | None, mllp_port: int | None,
            dicom_port: int | None, http_port: int | None) -> Callable[[], Config]:
    """Reads the configuration (the file, then the flags over it): at start, and again at
    every reload."""
    overrides = {"store.data_dir": str(data) if data is not None else None, "store.url": db,
                 "mllp.port": mllp_port, "dicom.port": dicom_port, "http.port": http_port}
    return lambda: load_config(config, overrides)


@app.command()
def serve(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None,
          mllp_port: MllpOpt = None, dicom_port: DicomOpt = None,
          http_port: HttpOpt = None, log_format: LogOpt = "text") -> None:
    """Run the engine: MLLP listener, store, delivery to the configured destinations."""
    load = _loader(config, data, db, mllp_port, dicom_port, http_port)
    cfg = load()
    _logging(log_format)
    asyncio.run(_run(cfg, None, config, load, log_format))


@app.command()
def demo(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None,
         mllp_port: MllpOpt = None, dicom_port: DicomOpt = None,
         http_port: HttpOpt = None, rate: RateOpt = 2.0, log_format: LogOpt = "text") -> None:
    """``serve`` plus a simulated department sending realistic (synthetic) traffic."""
    load = _loader(config, data, db, mllp_port, dicom_port, http_port)
    cfg = load()
    _logging(log_format)
    asyncio.run(_run(cfg, max(0.1, rate), config, None, log_format))


def _logging(fmt: str) -> None:
    if fmt not in FORMATS:
        raise fail(f"--log-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    setup(fmt)


async def _run(cfg: Config, demo_rate: float | None, source: Path | None,
               loader: Callable[[], Config] | None, fmt: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    demo: DemoDepartment | None = None
    if demo_rate is not None:  # the simulated department (accord.demo)
        demo = DemoDepartment(demo_rate)
        cfg = await demo.prepare(cfg)
    rt = build(cfg, source=source)
    rt.loader = loader
    await rt.start()
    reloads: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = asyncio.create_task(_reload(rt))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    _announce(rt, demo, fmt)
    if demo is not None:
        demo.start(rt)
    await stop.wait()
    if fmt == "json":
        log.info("stopping (up to %g s for what is in flight)", rt.config.shutdown_grace)
    else:
        typer.echo("accord: stopping…", err=True)
    loop.remove_signal_handler(signal.SIGHUP)
    if demo is not None:
        await demo.stop()
    await rt.stop()
    if demo is not None:
        await demo.close()


async def _reload(rt: Runtime) -> None:
    """SIGHUP: reload the configuration; an error is logged and changes nothing."""
    try:
        await rt.reload()  # logs what it applied
    except AccordError as exc:
        log.error("configuration not reloaded, the running one stays: %s", exc)
    except Exception:
        log.exception("configuration reload failed; the running configuration stays")


def _announce(rt: Runtime, demo: DemoDepartment | None, fmt: str = "text") -> None:
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
    if fmt == "json":  # one event, its parts as fields
        cfg = rt.config.store
        log.info("Accord is running", extra={
            "listening": rt.listening(),
            "store": str(cfg.url or (cfg.data_dir.resolve() / "accord.db")),
            "setup": rt.setup_link or "",
            "delivers": [d.name for d in rt.config.destinations]})
        return
    typer.echo("\n".join(lines))
