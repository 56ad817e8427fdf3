"""Accepted associations that wait for their next request instead of polling for it.

Why: pynetdicom runs two threads per association, and both poll. The association's
reactor naps 1 ms, then looks for a DIMSE message, a release or abort request, a dead
DUL thread and the idle timer; the DUL provider's reactor naps (``DUL_IDLE_POLL`` of
``accord.dicom.scp``), then looks at its socket and at its queue of primitives to send.
Both go on for as long as the association is open, and a modality holds its association
open between exams: seven idle associations took a tenth of a core from the engine with
the association's nap at 1 ms (measured), and in the hour's soak, with seven modality
associations open, the two reactors' wake-ups were still about a tenth of the engine's
GIL samples (py-spy --gil), each wake-up a turn of the GIL taken from the writers.

Here, once an association is established (PS3.8 §9.2 state Sta6):
- its reactor blocks on its DIMSE message queue for up to :data:`WAIT` seconds and
  serves a request the moment it arrives; the other checks, each as pynetdicom 3.0's
  reactor makes it, run after every request, whenever the DUL provider tells it an
  A-RELEASE or A-ABORT came (or ended), and at least every :data:`WAIT` seconds;
- its DUL provider (:class:`WaitingDUL`) blocks on its socket and on a wake-up pipe,
  which every primitive handed to it to send writes to, for up to :data:`DUL_WAIT`
  seconds, instead of napping and looking. In the other states (negotiation, release,
  the ARTIM timer running) it naps and looks as pynetdicom does.

The server that accepts them (:class:`AcceptingServer`) leaves garbage collection to
Python instead of forcing a full collection every 30 s.

Rules:
- Only the reactors' waits change; the association is pynetdicom's, built,
  negotiated, bound to the server's event handlers and started by pynetdicom, and its
  DUL provider's loop is pynetdicom's own, but for where it naps.
- The pause protocol of pynetdicom (``_reactor_checkpoint``, ``_is_paused``) is kept
  around everything but the wait, as pynetdicom keeps it around everything but its nap.
- A wake-up that is lost costs at most one :data:`WAIT` or :data:`DUL_WAIT`: every wait
  is bounded, so nothing hangs on it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

LOG = logging.getLogger(__name__)

WAIT = 0.25
"""Seconds the reactor waits for a request before it looks at the association's state
anyway (the DUL provider wakes it sooner for a release or an abort): how late at most a
network idle timeout, or a kill from another thread, is acted on."""

DUL_WAIT = 1.0
"""Seconds an established association's DUL provider waits for its socket or a
primitive before it looks anyway."""

ESTABLISHED = "Sta6"  # PS3.8 §9.2: association established, ready for data transfer
_NO_REQUEST = (None, None)  # what the DUL provider puts on the DIMSE queue to wake the reactor


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


class WaitingDUL(DULServiceProvider):
    """An accepted association's DUL provider that, while the association is established,
    waits for its socket or for a primitive to send (module rules).

    pynetdicom's reactor naps with ``time.sleep(self._run_loop_delay)`` whenever its last
    look found nothing to do. Reading ``_run_loop_delay`` is where this class waits: in
    Sta6, on the reactor's own thread, it blocks until the peer sends, a primitive is
    handed over (:meth:`send_pdu`) or the provider is killed, and returns no nap at all.
    Anywhere else it is the nap as set.
    """

    _nap: float
    _wake_in: socket.socket
    _wake_out: socket.socket

    def arm(self) -> None:
        """Make the wake-up pipe; called once, before the provider's thread starts."""
        self._nap = self.__dict__.pop("_run_loop_delay", 0.001)  # pynetdicom's, set before
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)

    @property
    def _run_loop_delay(self) -> float:
        if threading.current_thread() is not self or self.socket is None or (
                self.state_machine.current_state != ESTABLISHED):
            return self._nap
        self._tell_reactor()
        self._wait(self.socket.socket)
        return 0.0

    @_run_loop_delay.setter
    def _run_loop_delay(self, nap: float) -> None:
        self._nap = nap

    def _wait(self, sock: socket.socket | None) -> None:
        waits_on: list[socket.socket] = [self._wake_in]
        if sock is not None:
            waits_on.append(sock)
        with contextlib.suppress(OSError, ValueError):  # a socket closed meanwhile
            select.select(waits_on, [], [], DUL_WAIT)
        with contextlib.suppress(OSError):
            while self._wake_in.recv(4096):
                pass

    def _tell_reactor(self) -> None:
        """An A-RELEASE or A-ABORT indication waits for the association's reactor: wake
        it, rather than let it find out at its next look."""
        if not self.to_user_queue.empty():
            self.assoc.dimse.msg_queue.put(_NO_REQUEST)

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # full (it is awake anyway) or closed (ended)
            self._wake_out.send(b"\0")

    def send_pdu(self, primitive: Any) -> None:
        super().send_pdu(primitive)
        self._poke()

    def kill_dul(self) -> None:
        super().kill_dul()
        self._poke()

    def run(self) -> None:
        """The provider's thread (pynetdicom's reactor), then the wake-up pipe closed."""
        try:
            super().run()
        finally:
            self.assoc.dimse.msg_queue.put(_NO_REQUEST)  # the reactor sees the DUL gone
            self._wake_in.close()
            self._wake_out.close()


class WaitingRequestHandler(RequestHandler):
    """pynetdicom's request handler, its accepted associations :class:`WaitingAssociation`
    with a :class:`WaitingDUL` provider."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        assoc.__class__ = WaitingAssociation  # the same object, only its reactor differs
        assoc.dul.__class__ = WaitingDUL  # likewise: only where it naps differs
        assert isinstance(assoc.dul, WaitingDUL)
        assoc.dul.arm()
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
