"""One exception root for Accord, split by who is at fault.

Each subclass carries the HL7 acknowledgment code to answer with (HL7 v2.5.1 §2.9.2,
table 0008) and, where known, the location of the fault (``"PID-3"``) and the table 0357
error code, so the single place that builds the ACK never has to guess.
"""

from __future__ import annotations


class AccordError(Exception):
    """Root of every error Accord raises on purpose. Anything else is a bug."""

    ack_code: str = "AE"
    error_code: str = "207"  # table 0357: application internal error

    def __init__(self, message: str, *, location: str = "", error_code: str | None = None):
        super().__init__(message)
        self.location = location
        if error_code is not None:
            self.error_code = error_code


class ParseError(AccordError):
    """The input is not an HL7 v2 message: answered AR (rejected)."""

    ack_code = "AR"
    error_code = "102"  # data type error (the nearest table 0357 code for "unparseable")


class ApplyError(AccordError):
    """Stored, but cannot be applied (unknown order, missing required field): AE."""

    ack_code = "AE"


class RejectError(AccordError):
    """Not accepted at all (sender not allowed, unsupported type): AR."""

    ack_code = "AR"
    error_code = "200"


class StoreError(AccordError):
    """The durable store failed; the sender must retry (AE, nothing was acknowledged)."""

    ack_code = "AE"


class StoreBusy(StoreError):
    """A write transaction asked not to wait found another writer holding the lock
    (SQLite); nothing was done. The caller retries where waiting is acceptable."""


class ConfigError(AccordError):
    """A configuration problem; the message names the key and the line."""


class StartupError(AccordError):
    """A part of the engine could not start (a listener's port in use, say): ``serve``
    stops with this one line, which names the port and the flag that sets it."""


class DeliveryError(AccordError):
    """A downstream system could not be reached or answered wrongly."""
