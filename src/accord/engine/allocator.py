"""The C allocator's memory: bounded arenas, free pages handed back.

Why: under a long mixed load (MLLP, MPPS and C-FIND on pynetdicom's threads, the console,
delivery) the engine's resident memory crept ~0.3 MB/min while the memory in use stayed
flat (Python objects, SQLite's caches, malloc's bytes in use: measured in the process).
What grew was glibc malloc's *free* memory: each thread that meets a locked arena gets
an arena of its own (up to 8 per core), and the free chunks scattered through those
heaps are kept, not returned to the system. Two measures, both glibc only (elsewhere
they do nothing):
- :func:`limit_arenas`: at most ``ARENAS`` arenas (``mallopt(M_ARENA_MAX)``). glibc
  fixes its arena limit the first time a thread needs a second arena, so this is called
  before the engine starts its threads (``Runtime.start``). ``MALLOC_ARENA_MAX`` in the
  environment, when set, is the operator's choice and is left as it is.
- :func:`trim`: ``malloc_trim(0)``, which gives back every whole free page of every
  arena; :func:`trimming_loop` calls it every ``TRIM_INTERVAL`` seconds (a few ms each
  time). Once a minute was too seldom: between two trims the resident memory climbed
  ~10 MB (6%) as freed memory was touched again, then fell at the trim, a sawtooth
  bigger than any trend.

One arena, trimmed every 2 s: on a store of 100,000 patients under the soak's mix
(MLLP, MPPS, C-FIND, the console, delivery; the process's mappings read every 5 s for
8 minutes), the main heap swung ±4 MB between trims every 10 s, and the second arena,
the one pynetdicom's and the executor's threads share, grew 11 MB in 7 minutes: free
chunks kept in one arena that the other's threads could not reuse. After the first
3 minutes the resident memory spread 9.3% with two arenas trimmed every 10 s, 8.0%
trimmed every 2 s, 7.2% with one arena, at the same message rate: the Python threads
take turns under the interpreter lock anyway, so one arena's lock costs little.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

ARENAS = 1
TRIM_INTERVAL = 2.0  # seconds
_M_ARENA_MAX = -8  # glibc malloc.h


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (absent from musl: not glibc)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Allow glibc malloc at most ``arenas`` arenas (unless ``MALLOC_ARENA_MAX`` is set);
    whether the limit is in force."""
    if _LIBC is None:
        return False
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True  # glibc read it at process start
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the free pages of every arena back to the system; whether any were."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


async def trimming_loop(interval: float = TRIM_INTERVAL) -> None:
    """:func:`trim` every ``interval`` seconds until cancelled (off the event loop: the
    arenas' locks are held while it runs)."""
    if _LIBC is None:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(trim)
        except Exception as exc:  # never fatal: memory is only kept longer
            log.warning("malloc_trim failed: %s", exc)
