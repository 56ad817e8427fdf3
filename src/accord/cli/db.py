"""``accord db upgrade|current|copy`` (docs/interface.md, docs/operations.md).

``current`` prints the store's schema revision without changing anything; ``upgrade``
applies the migrations this release ships (``serve`` does too at start; this is for an
upgrade done on its own, before the new release is started); ``copy`` moves a whole store
into another, empty one (SQLite to PostgreSQL), with a progress bar on a terminal.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from accord.cli import app, fail
from accord.cli._stores import ConfigOpt, DataOpt, DbOpt, require_existing, store_url, url_or_dir
from accord.store.copy import Copied, copy_store
from accord.store.db import connect
from accord.store.schema.migrations import current_revision, head_revision, revisions

db_app = typer.Typer(help="The store's schema: its revision, upgrades, copies.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def _revision(url: str) -> str | None:
    database = connect(url)
    try:
        with database.read() as conn:
            return current_revision(conn)
    finally:
        database.close()


def describe(revision: str | None) -> str:
    """A revision and where it stands against this release's head."""
    head = head_revision()
    if revision is None:
        return "none (an empty store: serve or db upgrade creates the schema)"
    if revision == head:
        return f"{revision} (head)"
    known = revisions()
    if revision not in known:
        return f"{revision} (newer than this release, whose head is {head})"
    behind = len(known) - 1 - known.index(revision)
    return f"{revision} ({behind} behind head {head}: accord db upgrade applies them)"


@db_app.command("current")
def current(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None) -> None:
    """Print the store's schema revision (changes nothing)."""
    url = store_url(config, data, db)
    require_existing(url)
    typer.echo(describe(_revision(url)))


@db_app.command("upgrade")
def upgrade(config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None) -> None:
    """Apply the migrations this release ships (idempotent; a newer store is refused)."""
    from accord.store import open_store

    url = store_url(config, data, db)
    before = _revision(url)
    open_store(url).close()  # migrates under the same lock serve takes
    after = head_revision()
    if before == after:
        typer.echo(f"the store is at {after} (head): nothing to do")
    else:
        typer.echo(f"upgraded the store from {before or 'none'} to {after}")


FromOpt = Annotated[str, typer.Option("--from", help="Source store URL (or data directory).")]
ToOpt = Annotated[str, typer.Option("--to", help="Target store URL (empty; or data directory).")]


@db_app.command("copy")
def copy(source: FromOpt, target: ToOpt) -> None:
    """Copy a whole store into another, empty one (e.g. SQLite to PostgreSQL)."""
    src, dst = url_or_dir(source), url_or_dir(target)
    require_existing(src)
    if src == dst:
        raise fail("--from and --to name the same store")
    err = Console(stderr=True)
    if err.is_terminal:
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as bar:
            tasks: dict[str, object] = {}

            def shown(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=max(total, 1))
                bar.update(tasks[table], completed=done)  # type: ignore[arg-type]

            copied = copy_store(src, dst, progress=shown)
    else:
        copied = copy_store(src, dst)
    _summary(copied)


def _summary(copied: Copied) -> None:
    tables = sum(1 for n in copied.rows.values() if n)
    typer.echo(f"copied {copied.total} rows in {tables} tables (schema {copied.revision})")
    for name, n in copied.rows.items():
        if n:
            print(f"  {name:<22} {n}", file=sys.stdout)
