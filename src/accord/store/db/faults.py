"""Injected storage faults at the commit, for tests of a real process only.

Some storage faults cannot be made real in a test: an I/O error needs a failing disk.
``ACCORD_TEST_STORE_FAULTS=<file>`` in the environment (never set in production, never a
config key) puts a hook on the store's engine: before each COMMIT it looks at ``file``
and, when it holds one of the words below, makes the commit fail as the driver would,
with its error text; the transaction is then rolled back by its owner, exactly as after
a real failure. An absent or empty file means no fault, so a test turns a fault on and
off by writing the file while the engine runs.

- ``io``: ``disk I/O error`` (SQLite ``SQLITE_IOERR``);
- ``full``: ``database or disk is full`` (SQLite ``SQLITE_FULL``).

``<word>@<name>`` aims the fault at one commit point: only commits made on a thread
whose name starts with ``name`` fail (the applier's is ``accord-apply``, ingest's
writer ``accord-ingest``), so a test can fail the applier while ingest still stores.

Disk full and PostgreSQL going away are also tested for real (a small filesystem, the
database's connections terminated): this seam is for what cannot be.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

ENV = "ACCORD_TEST_STORE_FAULTS"
FAULTS = {"io": "disk I/O error", "full": "database or disk is full"}


class InjectedFault(Exception):
    """The driver error an injected fault stands for (its text is the driver's)."""


def install(engine: Engine, control: str | None = None) -> bool:
    """Hook ``engine``'s commits when ``control`` (default: ``$ACCORD_TEST_STORE_FAULTS``)
    names a file; returns whether it did."""
    path = control if control is not None else os.environ.get(ENV, "")
    if not path:
        return False
    flag = Path(path)

    def before_commit(_conn: Any) -> None:
        try:
            word = flag.read_text(encoding="utf-8").strip()
        except OSError:  # no file: no fault
            return
        word, _, thread = word.partition("@")
        if word in FAULTS and threading.current_thread().name.startswith(thread):
            raise OperationalError("COMMIT", None, InjectedFault(FAULTS[word]))

    event.listen(engine, "commit", before_commit)
    return True
