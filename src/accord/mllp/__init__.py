"""MLLP transport (HL7 v2 Transport Specification, MLLP Release 2).

``framing`` is the pure framer; ``server`` and ``client`` are the asyncio edges around it;
``tls`` builds TLS 1.2+ contexts for both.
"""

from accord.mllp.client import AckMismatchError, AckResult, MllpClient
from accord.mllp.framing import (
    EmptyFrame,
    Event,
    Frame,
    Framer,
    Junk,
    Oversize,
    Truncated,
    Unframed,
)
from accord.mllp.server import MllpLimits, MllpServer, PeerInfo, ServerStats
from accord.mllp.tls import client_context, server_context

__all__ = [
    "AckMismatchError",
    "AckResult",
    "EmptyFrame",
    "Event",
    "Frame",
    "Framer",
    "Junk",
    "MllpClient",
    "MllpLimits",
    "MllpServer",
    "Oversize",
    "PeerInfo",
    "ServerStats",
    "Truncated",
    "Unframed",
    "client_context",
    "server_context",
]
