"""The store options the maintenance commands share (``backup``, ``restore``, ``db``):
``--config FILE``, ``--data DIR`` and ``--db URL``, resolved as ``serve`` resolves them
(``--db`` wins over ``--data``, flags over the file; the default is ``./accord-data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.config import load_config
from accord.store import sqlite_url

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (SQLite).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Store URL (postgresql://…).")]


def store_url(config: Path | None, data: Path | None, db: str | None) -> str:
    """The URL of the store the flags (or the config file) name."""
    cfg = load_config(config, {"store.data_dir": str(data) if data is not None else None,
                               "store.url": db})
    return cfg.store.resolved_url()


def url_or_dir(value: str) -> str:
    """A store URL, or a data directory (its SQLite store)."""
    return value if "://" in value else sqlite_url(value)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database)."""
    return Path(url.split(":///", 1)[1]) if url.startswith("sqlite:///") else None


def require_existing(url: str) -> None:
    """A one-line error when a SQLite store the command would read does not exist (so
    that reading it does not create an empty one)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        from accord.cli import fail

        raise fail(f"no store at {path}")
