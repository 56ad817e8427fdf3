"""Canonical order status (DESIGN.md, "The canonical model").

One meaning everywhere; each connected system's dialect maps its own codes onto these.
The transition table and ``apply()`` live here too (issue: the imaging workflow).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ORDERED = "ordered"  # order accepted, not yet scheduled (ORC-1 NW)
    SCHEDULED = "scheduled"  # time and station known; on the worklist (ORC-5 SC, SIU^S12)
    ARRIVED = "arrived"  # patient checked in (ADT^A10, SIU^S14)
    IN_PROGRESS = "in_progress"  # acquisition started (MPPS IN PROGRESS, ORC-5 IP)
    COMPLETED = "completed"  # acquisition done (MPPS COMPLETED, ORC-5 CM)
    PRELIMINARY = "preliminary"  # preliminary report (OBR-25 P)
    FINAL = "final"  # signed report (OBR-25 F)
    AMENDED = "amended"  # corrected after final (OBR-25 C after F)
    CANCELLED = "cancelled"  # stopped before start (ORC-1 CA, ORC-5 CA)
    DISCONTINUED = "discontinued"  # stopped after start (ORC-1 DC, MPPS DISCONTINUED)
