"""``accord backup`` and ``accord restore`` (docs/interface.md; how and when in
docs/operations.md, "Backup and restore").

``backup (--data DIR | --db URL) FILE`` writes a consistent copy of the store, also while
the engine runs (SQLite's online backup; ``pg_dump`` on PostgreSQL). ``restore FILE
(--data DIR | --db URL)`` puts it into an EMPTY store; a store holding data is refused
with one line. The flags may come before or after the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app
from accord.cli._stores import ConfigOpt, DataOpt, DbOpt, store_url
from accord.store import backup as backups

FileArg = Annotated[Path, typer.Argument(help="The backup file.")]


@app.command()
def backup(file: FileArg, config: ConfigOpt = None, data: DataOpt = None,
           db: DbOpt = None) -> None:
    """Write a consistent copy of the store to FILE (also while the engine runs)."""
    done = backups.backup(store_url(config, data, db), file)
    typer.echo(f"backed up the store (schema {done.revision}) to {done.path} "
               f"({done.kind}, {_size(done.size)})")


@app.command()
def restore(file: FileArg, config: ConfigOpt = None, data: DataOpt = None,
            db: DbOpt = None) -> None:
    """Restore the backup FILE into an empty store (a store with data is refused)."""
    url = store_url(config, data, db)
    revision = backups.restore(file, url)
    typer.echo(f"restored {file} (schema now {revision})")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
