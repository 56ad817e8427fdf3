"""Accepted associations that wait for their next request instead of polling for it.

Why: pynetdicom's association reactor naps 1 ms, then looks for a DIMSE message, a
release or abort request, a dead DUL thread and the idle timer, for as long as the
association is open. A modality holds its association open between exams, so every
connected modality cost the engine a thousand wake-ups a second: seven idle
associations took a tenth of a core from the engine, the GIL included (measured with
the nap at 1 ms and at 5 ms, the DUL threads' nap already 5 ms).

Here the reactor of an accepted association blocks on its DIMSE message queue for up to
:data:`WAIT` seconds and serves a request the moment it arrives; the other checks,
each as pynetdicom 3.0's reactor makes it, run after every request and at least every
:data:`WAIT` seconds (a peer's A-RELEASE is answered that much later at most).

The server that accepts them (:class:`AcceptingServer`) leaves garbage collection to
Python instead of forcing a full collection every 30 s.

Rules:
- Only the acceptor's reactor loop changes; the association is pynetdicom's, built,
  negotiated, bound to the server's event handlers and started by pynetdicom.
- The pause protocol of pynetdicom (``_reactor_checkpoint``, ``_is_paused``) is kept
  around everything but the wait, as pynetdicom keeps it around everything but its nap.
"""

from __future__ import annotations

import logging
import queue
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

LOG = logging.getLogger(__name__)

WAIT = 0.01
"""Seconds the reactor waits for a request before it looks at the association's state."""


class WaitingAssociation(Association):
    """An accepted association whose reactor waits on its DIMSE queue (module rules)."""

    def _run_reactor(self) -> None:
        self._is_paused = False
        while not self._kill:
            context_id, msg = self._next_request()
            self._is_paused = True
            self._reactor_checkpoint.wait()  # pynetdicom's pause: held while set
            self._is_paused = False
            if msg is not None:
                self._serve_request(msg, context_id)
            if self._ended():
                return

    def _next_request(self) -> tuple[Any, Any]:
        try:
            return self.dimse.msg_queue.get(timeout=WAIT)
        except queue.Empty:
            return None, None

    def _ended(self) -> bool:
        """The checks pynetdicom's reactor makes between requests; True once the
        association is over (released, aborted, its DUL gone or idle too long)."""
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            LOG.debug("association released by the peer")
            self.is_released, self.is_established = True, False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return True
        if self.acse.is_aborted():
            self.dul.receive_pdu(wait=False)  # so EVT_ACSE_RECV fires for its subscribers
            self.is_aborted, self.is_established = True, False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return True
        if not self.dul.is_alive():
            self.kill()
            return True
        if self.dul.idle_timer_expired():
            LOG.info("DICOM association idle past its network timeout: closed")
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return True
        return False


class WaitingRequestHandler(RequestHandler):
    """pynetdicom's request handler, its accepted associations :class:`WaitingAssociation`."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        assoc.__class__ = WaitingAssociation  # the same object, only its reactor differs
        return assoc


class AcceptingServer(ThreadedAssociationServer):
    """pynetdicom's threaded association server without its periodic full collection.

    Why: its serve loop runs ``gc.collect()`` every 60 polls (30 s) to reclaim dead
    association threads. A full collection walks every object the engine holds and
    holds the GIL while it does: under the soak, half an hour in, the call was 4% of
    the engine's GIL samples (py-spy --gil), a stall of every thread each time. Python's
    own collector reclaims those threads' cycles without it, with its full collections
    paced by how much the old generation grew.
    """

    def service_actions(self) -> None:
        """Nothing between polls (pynetdicom collects garbage here)."""
