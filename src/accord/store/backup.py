"""Backing a store up, and restoring it into an empty one (``accord backup``,
``accord restore``; docs/operations.md, "Backup and restore").

Rules:
- A backup is consistent, also while the engine runs: SQLite's online backup API copies
  the database in one step under one read transaction (in WAL mode writers go on
  meanwhile), and ``pg_dump`` reads one snapshot. What was committed (and so
  acknowledged) before the backup began is in it.
- A backup file is a SQLite database (from a SQLite store) or a ``pg_dump`` archive in
  custom format (from PostgreSQL); :func:`restore` tells them by their first bytes. It is
  written beside its final name and renamed when complete, and never over an existing
  file: a half-written or overwritten backup is worse than none.
- A restore goes into an EMPTY store only (:mod:`accord.store.copy`: housekeeping rows
  aside), and is then migrated to this code's schema, so a backup made by an older
  release restores into a newer one. A backup made by a newer release is refused.
- A SQLite backup restores into SQLite (page for page) or PostgreSQL (copied table by
  table); a ``pg_dump`` archive restores into PostgreSQL with ``pg_restore``.
- Rows that were in flight when the backup was taken are given back to their queue
  (``pending``), and the job leases dropped: the nodes that held them are not the ones
  that will run on the restored store. Such a row is sent again, with its MSH-10, so
  the receiver recognises the resend (at least once, never lost).
- The database password never appears on a command line (other users could read it in
  the process list): ``pg_dump``/``pg_restore`` get it through ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url

from accord.errors import ConfigError, StoreError
from accord.store.copy import copy_store, occupied, refuse_unless_empty
from accord.store.db import connect
from accord.store.schema import job_locks, metadata, outbox
from accord.store.schema.migrations import check_known, current_revision, revisions

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
BUSY_MS = 30_000
TOOL_TIMEOUT = 24 * 3600.0  # a dump of a large store takes long; never hang forever


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup: its file, format (``sqlite`` or ``pg_dump``), size and the
    schema revision of the store it holds."""

    path: Path
    kind: str
    size: int
    revision: str


def backup(url: str, out: Path) -> BackupResult:
    """Back the store at ``url`` up into the new file ``out`` (module rules)."""
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists already; a backup never overwrites a file")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a directory")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if url.startswith("sqlite"):
            revision = _sqlite_backup(_sqlite_path(url), partial)
            kind = "sqlite"
        else:
            revision = _pg_dump(url, partial)
            kind = "pg_dump"
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(out, kind, out.stat().st_size, revision)


def restore(file: Path, url: str) -> str:
    """Restore the backup ``file`` into the empty store at ``url``; returns the schema
    revision the store is at afterwards (this code's head)."""
    file = Path(file)
    kind = backup_kind(file)
    if kind == "pg_dump":
        if not url.startswith(("postgresql", "postgres:")):
            raise ConfigError(f"{file} is a PostgreSQL archive (pg_dump): it restores into "
                              "PostgreSQL only (then accord db copy moves it elsewhere)")
        _pg_restore(file, url)
    else:
        _check_backup_revision(file)
        if url.startswith("sqlite"):
            _sqlite_restore(file, _sqlite_path(url))
        else:
            _sqlite_into_other(file, url)
    return _migrate(url)


def backup_kind(file: Path) -> str:
    """``sqlite`` or ``pg_dump``, from the file's first bytes; ConfigError otherwise."""
    try:
        with file.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "pg_dump"
    raise ConfigError(f"{file} is not an Accord backup (neither a SQLite database nor a "
                      "pg_dump archive)")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise ConfigError("the SQLite store needs a file path (sqlite:///path/accord.db)")
    return Path(database)


def _migrate(url: str, *, settle: bool = True) -> str:
    """Upgrade the restored store to head and (``settle``) free what its old nodes held."""
    from accord.store.gateway.store import SqlStore

    store = SqlStore.open(url)
    try:
        with store.database.write() as conn:
            if settle:
                conn.execute(update(outbox).where(outbox.c.status == "in_flight").values(
                    status="pending", claimed_by=None, lease_until=None))
                conn.execute(delete(job_locks))
            return current_revision(conn) or ""
    finally:
        store.close()


# --- SQLite -------------------------------------------------------------------------------

def _sqlite_backup(source: Path, out: Path) -> str:
    if not source.is_file():
        raise ConfigError(f"no store at {source}")
    src = sqlite3.connect(_read_only(source), uri=True, timeout=BUSY_MS / 1000)
    try:
        revision = _revision_of(src, source)
        with closing(sqlite3.connect(out)) as dst:
            src.backup(dst)  # pages=-1: one step, one read transaction: a consistent copy
            _check_integrity(dst, out)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
    return revision


def _read_only(path: Path) -> str:
    """The URI that opens ``path`` read-only (any character in the path escaped)."""
    return f"{path.resolve().as_uri()}?mode=ro"


def _revision_of(conn: sqlite3.Connection, where: Path) -> str:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        row = None
    if row is None:
        raise ConfigError(f"{where} is not an Accord store (no schema revision)")
    return str(row[0])


def _check_integrity(conn: sqlite3.Connection, where: Path) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()
    if result is None or result[0] != "ok":
        raise StoreError(f"{where}: integrity check failed: {result[0] if result else '?'}")


def _check_backup_revision(file: Path) -> None:
    with closing(sqlite3.connect(_read_only(file), uri=True)) as conn:
        revision = _revision_of(conn, file)
        _check_integrity(conn, file)
    if revision not in revisions():
        raise StoreError(f"{file} holds schema revision {revision}, newer than this Accord "
                         "knows: restore it with the release that made it")


def _sqlite_restore(file: Path, target: Path) -> None:
    """Page for page into ``target``, which must not exist or be an empty store."""
    if target.exists():
        database = connect(f"sqlite:///{target}")
        try:
            refuse_unless_empty(database, f"the store at {target}")
        finally:
            database.close()
        for suffix in ("", "-wal", "-shm"):  # an empty store: replaced whole
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(_read_only(file), uri=True)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _sqlite_into_other(file: Path, url: str) -> None:
    """A SQLite backup into PostgreSQL: upgraded to head on a scratch copy (the backup
    itself is never written), then copied table by table."""
    with tempfile.TemporaryDirectory(prefix="accord-restore-") as scratch:
        work = Path(scratch) / "accord.db"
        shutil.copyfile(file, work)
        work_url = f"sqlite:///{work}"
        _migrate(work_url, settle=False)
        copy_store(work_url, url)


# --- PostgreSQL ---------------------------------------------------------------------------

def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found: install the PostgreSQL client tools of the "
                          "server's version (Debian: postgresql-client)")
    return found


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise StoreError(f"{what} failed: {lines[0] if lines else f'exit {done.returncode}'}")


def _pg_dump(url: str, out: Path) -> str:
    database = connect(url)
    try:
        with database.read() as conn:
            check_known(conn)
            revision = current_revision(conn)
    finally:
        database.close()
    if revision is None:
        raise ConfigError("that database is not an Accord store (no schema revision)")
    uri, env = _libpq(url)
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
          f"--file={out}", f"--dbname={uri}"], env, "pg_dump")
    return revision


def _pg_restore(file: Path, url: str) -> None:
    database = connect(url)
    try:
        refuse_unless_empty(database, "the target database")
        with database.write() as conn:  # an empty store's (empty) tables make way
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        database.close()
    uri, env = _libpq(url)
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", f"--dbname={uri}", str(file)], env, "pg_restore")


__all__ = ["BackupResult", "backup", "backup_kind", "occupied", "restore"]
