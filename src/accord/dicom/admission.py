"""Who may hold an association with the DICOM SCP, and for how long.

Rules (PS3.8 7.1.1.9 for the A-ASSOCIATE-RJ reasons):

- **Address allow-list** (``dicom.allowed_addresses``, CIDR; empty: any). A connection
  from another address is closed before its A-ASSOCIATE-RQ is read.
- **Calling AE allow-list** (``dicom.allowed_calling_aes``; empty: any). A request from
  another calling AE title is rejected permanently, "calling AE title not recognised"
  (result 1, source 1, reason 3).
- **Limits**: at most ``max_per_ae`` associations per calling AE title and
  ``max_per_peer`` per address at once (besides pynetdicom's ``maximum_associations``
  for the listener). One more is rejected transiently, "local limit exceeded" (result 2,
  source 3, reason 2): the modality may try again later.
- **Idle**: an association with no PDU for ``idle_timeout`` is released (A-RELEASE; it is
  aborted when the peer does not answer the release).
- Every refusal is counted per address (:class:`~accord.mllp.admission.PeerCounters`:
  ``denied`` for either allow-list, ``refused`` for a limit; ``messages`` counts the
  associations accepted, ``silent`` those released for idling) and logged at most once a
  minute per address and reason, naming the address and the calling AE title only.

The gate works through pynetdicom's hooks: ``verify_request`` of the association server
(before any byte is read) and the ``EVT_REQUESTED`` handler, which may send the
A-ASSOCIATE-RJ itself (pynetdicom then skips its own negotiation).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pynetdicom import evt
from pynetdicom.pdu_primitives import A_RELEASE

from accord.mllp.admission import AllowList, Network, OncePerInterval, PeerCounters, PeerTable

LOG = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 Table 9-21.
REJECT_UNKNOWN_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)


@dataclass(frozen=True, slots=True)
class GateSettings:
    """The admission settings (the configuration's ``dicom.*`` keys of the same names)."""

    allowed_addresses: tuple[Network, ...] = ()
    allowed_calling_aes: tuple[str, ...] = ()
    max_per_ae: int = 8
    max_per_peer: int = 8
    idle_timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class _Held:
    assoc: Any  # a pynetdicom Association (a thread)
    calling_ae: str
    host: str


class AssociationGate:
    """Applies the module rules to one SCP; thread-safe (pynetdicom runs an association
    per thread)."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self.allow = AllowList(settings.allowed_addresses)
        self.aes = frozenset(settings.allowed_calling_aes)
        self.peer_table = PeerTable()
        self._once = OncePerInterval()
        self._lock = threading.Lock()
        self._held: list[_Held] = []

    def peers(self) -> list[PeerCounters]:
        """Each recent client address's counters (copies), by address."""
        with self._lock:
            return self.peer_table.snapshot()

    def handlers(self) -> list[Any]:
        """The pynetdicom event handlers that apply the rules."""
        return [(evt.EVT_REQUESTED, self.on_requested), (evt.EVT_ACSE_RECV, self.on_acse_received),
                (evt.EVT_CONN_CLOSE, self.on_closed)]

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """The association server's hook: False closes the connection unread."""
        host = str(client_address[0]) if client_address else ""
        with self._lock:
            counters = self.peer_table.seen(host, time.monotonic())
            if self.allow.allows(host):
                return True
            counters.denied += 1
            warn = self._warn("denied", host)
        if warn:
            LOG.warning("DICOM: refused connection from %s: address not allowed", host)
        return False

    def on_requested(self, event: evt.Event) -> None:
        """EVT_REQUESTED: reject, or admit and count the association as held."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        calling = str(request.calling_ae_title).strip() if request is not None else ""
        host = str(assoc.requestor.address)
        with self._lock:
            counters = self.peer_table.seen(host, time.monotonic())
            reject, why = self._decide(calling, host)
            if reject is None:
                self._held.append(_Held(assoc, calling, host))
                counters.open += 1
                counters.messages += 1
            elif reject == REJECT_UNKNOWN_CALLING_AE:
                counters.denied += 1
            else:
                counters.refused += 1
            warn = reject is not None and self._warn(why, host)
        if reject is None:
            # Quiet for idle_timeout: released (pynetdicom aborts when that fails).
            assoc.network_timeout = self.settings.idle_timeout
            assoc.network_timeout_response = "A-RELEASE"
            return
        if warn:
            LOG.warning("DICOM: rejected association from %s (calling AE %s): %s", host,
                        calling, why)
        assoc.acse.send_reject(*reject)
        assoc.kill()

    def on_acse_received(self, event: evt.Event) -> None:
        """EVT_ACSE_RECV: an A-RELEASE answer (it carries a result) is the peer agreeing
        to a release this SCP asked for, and the SCP asks only when the association was
        idle past ``idle_timeout``: count it for the address."""
        primitive = event.primitive  # type: ignore[attr-defined]
        if not (isinstance(primitive, A_RELEASE) and primitive.result is not None):
            return
        host = str(event.assoc.requestor.address)
        with self._lock:
            self.peer_table[host].silent += 1
        LOG.info("DICOM: released the association from %s: idle for %g s", host,
                 self.settings.idle_timeout)

    def on_closed(self, event: evt.Event) -> None:
        """EVT_CONN_CLOSE: the association no longer counts against the limits."""
        with self._lock:
            for held in [h for h in self._held if h.assoc is event.assoc]:
                self._drop(held)

    def _decide(self, calling: str, host: str) -> tuple[tuple[int, int, int] | None, str]:
        if self.aes and calling not in self.aes:
            return REJECT_UNKNOWN_CALLING_AE, "calling AE title not allowed"
        for held in [h for h in self._held if not h.assoc.is_alive()]:
            self._drop(held)  # ended without a close event (a killed thread)
        s = self.settings
        if sum(1 for h in self._held if h.calling_ae == calling) >= s.max_per_ae:
            return REJECT_LOCAL_LIMIT, f"{s.max_per_ae} associations from this AE title"
        if sum(1 for h in self._held if h.host == host) >= s.max_per_peer:
            return REJECT_LOCAL_LIMIT, f"{s.max_per_peer} associations from this address"
        return None, ""

    def _drop(self, held: _Held) -> None:
        self._held.remove(held)
        self.peer_table[held.host].open -= 1

    def _warn(self, kind: str, host: str) -> bool:
        return self._once(kind, host, time.monotonic())
