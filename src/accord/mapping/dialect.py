"""Dialects: what each connected system's fields and codes mean (docs/model.md, "Dialects").

A dialect is chosen per sender (MSH-3, optionally with MSH-4) and says where the
identifiers, the accession and the order numbers live, what the sender's ORC-1/ORC-5
pairs, OBR-25 and SCH-25 codes mean in canonical statuses, which outbound form it takes
(ORM^O01 v2.3.1 or OMI^O23 v2.5.1, IHE RAD TF-2 RAD-4/RAD-13), how Study Instance UIDs
are found or made (reject / accession-based / generate under a root, as dcm4chee
offers), and the policies for unmapped codes, unknown orders and merged identifiers.

Config schema (one mapping per dialect, every key optional; see ``Dialect.from_config``)::

    name: ris-a
    match: {application: RIS_A, facility: ""}   # MSH-3.1 (and MSH-4.1 when given)
    authority: HOSP            # authoritative assigning authority (PID-3 CX-4.1)
    default_authority: HOSP    # given to PID-3 identifiers that carry no CX-4
    mrn_repetition: 0          # which PID-3 repetition is the MRN (0: by authority)
    accession: OBR-18          # or IPC-1, OBR-3, OBR-20, ... (read in the order group)
    order_status: {"SC/CM": completed, "XO": null}   # ORC-1[/ORC-5] -> status (merged
    report_status: {P: preliminary}                   #   over the defaults below)
    siu_status: {Booked: scheduled}                  # SCH-25.1 -> status
    s14: modification          # or arrival (SIU^S14 = patient arrived)
    siu_order: {placer: SCH-26.1, filler: SCH-27.1, accession: ""}
    outbound: ORM^O01          # or OMI^O23
    study_uid: {policy: generate, root: "1.2.826.0.1.3680043.2.1143"}
    default_station: ""        # AE title when no rule or code table names one
    unmapped_code: default_station   # or hold (kept off the worklist, answered AE)
    unknown_order: keep        # or reject (AE naming the accession field)
    merged_reference: apply    # or reject (AE naming PID-3)
    drift_threshold: 20
    drift_fields: [PID-3, PID-5, PID-7, PV1-19, ORC-2, OBR-4, OBR-18]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from accord.errors import ConfigError
from accord.workflow.status import Status

# ORC-1 (order control, table 0119) alone or "ORC-1/ORC-5" (order status, table 0038).
# The pair wins over ORC-1 alone; ``None`` means "details only, no status change".
DEFAULT_ORDER_STATUS: Mapping[str, Status | None] = {
    "NW": Status.ORDERED,
    "NW/IP": Status.ORDERED,  # v2 "IP" before v2.5 meant "in process, unspecified"
    "NW/SC": Status.SCHEDULED,
    "XO": None,
    "XO/SC": Status.SCHEDULED,
    "SC": None,
    "SC/SC": Status.SCHEDULED,
    "SC/IP": Status.IN_PROGRESS,
    "SC/A": Status.IN_PROGRESS,  # "some, but not all, results available"
    "SC/CM": Status.COMPLETED,
    "SC/DC": Status.DISCONTINUED,
    "SC/CA": Status.CANCELLED,
    "SC/HD": None,
    "CA": Status.CANCELLED,
    "OC": Status.CANCELLED,
    "DC": Status.DISCONTINUED,
    "OD": Status.DISCONTINUED,
    "CR": Status.CANCELLED,  # "canceled as requested"
}

# OBR-25 result status (table 0123).
DEFAULT_REPORT_STATUS: Mapping[str, Status | None] = {
    "P": Status.PRELIMINARY,
    "F": Status.FINAL,
    "C": Status.AMENDED,
    "X": Status.CANCELLED,
    "R": None,  # results stored, not verified: no status change
    "I": None,  # specimen in lab, pending
}

# SCH-25 filler status code (table 0278).
DEFAULT_SIU_STATUS: Mapping[str, Status | None] = {
    "Pending": Status.SCHEDULED,
    "Booked": Status.SCHEDULED,
    "Overbook": Status.SCHEDULED,
    "Waitlist": None,
    "Blocked": None,
    "Started": Status.IN_PROGRESS,
    "Complete": Status.COMPLETED,
    "Cancelled": Status.CANCELLED,
    "Dc": Status.DISCONTINUED,
    "Deleted": Status.CANCELLED,
    "Noshow": Status.CANCELLED,
}

DEFAULT_DRIFT_FIELDS = ("PID-3", "PID-5", "PID-7", "PID-8", "PV1-19", "ORC-2", "OBR-4", "OBR-18")

_CHOICES: Mapping[str, tuple[str, ...]] = {
    "s14": ("modification", "arrival"),
    "outbound": ("ORM^O01", "OMI^O23"),
    "unmapped_code": ("default_station", "hold"),
    "unknown_order": ("keep", "reject"),
    "merged_reference": ("apply", "reject"),
    "study_uid_policy": ("generate", "accession", "reject"),
}


# Where a field is written in the config when its name there differs (error locations).
_KEYS: Mapping[str, str] = {"study_uid_policy": "study_uid.policy"}


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one connected system speaks. ``Dialect()`` is a sane default (IHE SWF)."""

    name: str = "default"
    application: str = ""  # MSH-3.1 this dialect is for ("" = any)
    facility: str = ""  # MSH-4.1 ("" = any)
    authority: str = ""
    default_authority: str = ""
    mrn_repetition: int = 0
    accession: str = "OBR-18"
    order_status: Mapping[str, Status | None] = field(
        default_factory=lambda: dict(DEFAULT_ORDER_STATUS))
    report_status: Mapping[str, Status | None] = field(
        default_factory=lambda: dict(DEFAULT_REPORT_STATUS))
    siu_status: Mapping[str, Status | None] = field(
        default_factory=lambda: dict(DEFAULT_SIU_STATUS))
    s14: str = "modification"
    siu_placer: str = "SCH-26.1"
    siu_filler: str = "SCH-27.1"
    siu_accession: str = ""
    outbound: str = "ORM^O01"
    study_uid_policy: str = "generate"
    uid_root: str = ""
    default_station: str = ""
    unmapped_code: str = "default_station"
    unknown_order: str = "keep"
    merged_reference: str = "apply"
    drift_threshold: int = 20
    drift_fields: tuple[str, ...] = DEFAULT_DRIFT_FIELDS

    def __post_init__(self) -> None:
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ConfigError(
                    f"dialect {self.name}: {key} must be one of {', '.join(choices)}, "
                    f"not {getattr(self, key)!r}", location=_KEYS.get(key, key)
                )
        if self.drift_threshold < 1:
            raise ConfigError(f"dialect {self.name}: drift_threshold must be at least 1",
                              location="drift_threshold")

    def order_status_for(self, control: str, status: str) -> tuple[bool, Status | None]:
        """(known, status) for ORC-1 ``control`` with ORC-5 ``status``: pair, then alone."""
        for key in (f"{control}/{status}" if status else "", control):
            if key and key in self.order_status:
                return True, self.order_status[key]
        return False, None

    @property
    def identifier_authority(self) -> str:
        """The authority given to a PID-3 identifier that carries none."""
        return self.default_authority or self.authority

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], name: str = "") -> Dialect:
        """A dialect from one config mapping; ``ConfigError`` names the bad key."""
        name = str(raw.get("name", name or "default"))
        known = {f.name for f in fields(cls)} | {"match", "study_uid", "siu_order"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"dialect {name}: unknown key(s) {', '.join(unknown)}",
                              location=unknown[0])
        values: dict[str, Any] = {"name": name}
        for key in ("authority", "default_authority", "accession", "s14", "outbound",
                    "default_station", "unmapped_code", "unknown_order", "merged_reference",
                    "application", "facility"):
            if key in raw:
                values[key] = "" if raw[key] is None else str(raw[key])
        match = raw.get("match") or {}
        values.setdefault("application", str(match.get("application", "")))
        values.setdefault("facility", str(match.get("facility", "")))
        uid = raw.get("study_uid") or {}
        values["study_uid_policy"] = str(uid.get("policy", raw.get("study_uid_policy", "generate")))
        values["uid_root"] = str(uid.get("root", raw.get("uid_root", "")))
        siu = raw.get("siu_order") or {}
        for part in ("placer", "filler", "accession"):
            if part in siu:
                values[f"siu_{part}"] = str(siu[part] or "")
        for key in ("mrn_repetition", "drift_threshold"):
            if key in raw:
                values[key] = _int(raw[key], name, key)
        if "drift_fields" in raw:
            values["drift_fields"] = tuple(str(f) for f in raw["drift_fields"])
        for key, base in (("order_status", DEFAULT_ORDER_STATUS),
                          ("report_status", DEFAULT_REPORT_STATUS),
                          ("siu_status", DEFAULT_SIU_STATUS)):
            values[key] = _codes(base, raw.get(key), name, key)
        return cls(**values)


def _int(value: Any, name: str, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"dialect {name}: {key} must be an integer", location=key) from exc


def _codes(
    base: Mapping[str, Status | None], extra: Any, name: str, key: str
) -> dict[str, Status | None]:
    table = dict(base)
    if not extra:
        return table
    if not isinstance(extra, Mapping):
        raise ConfigError(f"dialect {name}: a status table must be a mapping of code to status",
                          location=key)
    for code, value in extra.items():
        if value is None or value == "":
            table[str(code)] = None
            continue
        try:
            table[str(code)] = Status(str(value))
        except ValueError as exc:
            raise ConfigError(
                f"dialect {name}: {code!r} maps to {value!r}, not a canonical status "
                f"({', '.join(s.value for s in Status)})", location=f"{key}.{code}"
            ) from exc
    return table


@dataclass(frozen=True, slots=True)
class Dialects:
    """Every configured dialect, chosen per sender; ``default`` when none matches."""

    items: tuple[Dialect, ...] = ()
    default: Dialect = field(default_factory=Dialect)

    def for_sender(self, application: str, facility: str = "") -> Dialect:
        """The dialect for MSH-3.1/MSH-4.1: application and facility, then application."""
        for d in self.items:
            if d.application == application and d.facility and d.facility == facility:
                return d
        for d in self.items:
            if d.application == application and not d.facility:
                return d
        return self.default

    @classmethod
    def from_config(cls, raw: Mapping[str, Mapping[str, Any]]) -> Dialects:
        """From the config's ``dialects:`` mapping (name → dialect); a dialect named
        ``default`` (no ``match``) replaces the built-in default."""
        items = tuple(Dialect.from_config(v, name=k) for k, v in raw.items())
        default = next((d for d in items if d.name == "default"), Dialect())
        return cls(tuple(d for d in items if d.name != "default"), default)
