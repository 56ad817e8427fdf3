"""A stored patient document's demographics, as the migrations that backfill identity
data read them (the store's codec lives above the schema, and a migration must not
import it: ``store/workflow/codec.py`` writes these documents)."""

from __future__ import annotations

from datetime import date
from typing import Any

from accord.workflow.model import Address, Demographics, PersonName


def demographics(doc: dict[str, Any]) -> Demographics:
    """The fields of a patient document matching reads."""
    name, address = doc.get("name") or {}, doc.get("address") or {}
    birth = doc.get("birth_date")
    return Demographics(
        name=PersonName(**{k: str(name.get(k, "")) for k in
                           ("family", "given", "middle", "suffix", "prefix")}),
        birth_date=date.fromisoformat(birth) if birth else None,
        sex=str(doc.get("sex") or ""),
        address=Address(**{k: str(address.get(k, "")) for k in
                           ("street", "other", "city", "state", "postal_code", "country")}),
        phone=str(doc.get("phone") or ""),
        national_id=str(doc.get("national_id") or ""),
        mothers_maiden_name=str(doc.get("mothers_maiden_name") or ""),
    )
