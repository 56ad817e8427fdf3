"""The interpreter lock's switch interval: how long a thread running Python keeps the
GIL while another thread waits for it.

Why: on SQLite the engine's writers (ingest, MPPS, delivery, the jobs) take turns at one
write gate (:mod:`accord.store.db.write_gate`), and the writer holding it lets the GIL go
at every SQLite call and at the commit's sync. Back from each, it waits for the GIL behind
whichever thread is running Python (pynetdicom's association threads, the event loop,
the console) for up to the switch interval, 5 ms by default, while every other writer
waits at the gate. Under the soak's mix (HL7 at 200 msg/s, MPPS for every exam, C-FIND,
the console; ``bench/soak.py``) ingest spent half its time waiting for the gate and fell
behind the senders; with 1 ms it kept up, at the same CPU per message (measured, 10-minute
runs side by side).
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL = 0.001  # seconds


def shorten_switch_interval() -> None:
    """Set the switch interval to :data:`SWITCH_INTERVAL` (process-wide; called once
    by the runtime before its threads start)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
