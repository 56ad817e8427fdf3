"""Validation profiles as data: what each message type must carry, and the code tables.

Rule: no logic here; ``accord.hl7.validate`` interprets these tables. A profile is a
name, a description and message rules; a rule lists the segments and the fields (with
alternatives: "OBR-18 or IPC-1") a message of the matching types must carry, and the
fields whose value must come from an HL7 table.

The ``ihe-swf`` rules follow IHE Radiology Technical Framework Vol. 2, Scheduled
Workflow: RAD-1/RAD-12 patient registration/update (ADT), RAD-2/3 placer/filler order
and RAD-4/RAD-13 procedure scheduled/updated (ORM^O01 with ZDS, §4.4.4.1.2; or OMI^O23
with IPC, §4.4.4.2 in the HL7 v2.5.1 option), and RAD-28 structured report export
results (ORU^R01).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "IHE_SWF",
    "KNOWN_VERSIONS",
    "TABLES",
    "MessageRule",
    "Need",
    "ProfileSpec",
    "TableCheck",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Need:
    """A value the message must carry: one of ``paths`` valued in every occurrence.

    ``paths`` are alternatives, first preferred (the one named when all are missing).
    ``timestamp``: the value must also be a valid DTM (error 102 otherwise).
    """

    paths: tuple[str, ...]
    what: str
    severity: Severity = "error"
    timestamp: bool = False


@dataclass(frozen=True, slots=True)
class TableCheck:
    """A field whose value, when present, must be in HL7 table ``table`` (error 103)."""

    path: str
    table: str
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class MessageRule:
    """Requirements for messages whose MSH-9 (``"ORM^O01"``) is in ``types``.

    ``"ADT^*"`` matches every event of a message code; the first matching rule applies.
    """

    types: tuple[str, ...]
    segments: tuple[str, ...] = ()
    needs: tuple[Need, ...] = ()
    tables: tuple[TableCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """A named validation profile: the ``basic`` checks plus its message rules."""

    name: str
    description: str
    rules: tuple[MessageRule, ...] = field(default=())


#: HL7 v2 versions (MSH-12, table 0104) Accord accepts.
KNOWN_VERSIONS: frozenset[str] = frozenset({
    "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1",
    "2.8", "2.8.1", "2.8.2", "2.9",
})

#: The HL7 tables the profiles check (v2.5.1 values; "" is never listed).
TABLES: dict[str, frozenset[str]] = {
    # 0103 processing ID, 0155 accept/application acknowledgment conditions
    "0103": frozenset({"D", "P", "T"}),
    "0155": frozenset({"AL", "NE", "ER", "SU"}),
    # 0119 order control codes
    "0119": frozenset({
        "AF", "CA", "CH", "CN", "CR", "DC", "DE", "DF", "DR", "FU", "HD", "HR", "LI",
        "NA", "NW", "OC", "OD", "OE", "OF", "OH", "OK", "OP", "OR", "PA", "PR", "PY",
        "RE", "RF", "RL", "RO", "RP", "RQ", "RR", "RU", "SC", "SN", "SR", "SS", "UA",
        "UC", "UD", "UF", "UH", "UM", "UN", "UR", "UX", "XO", "XR", "XX",
    }),
    # 0038 order status
    "0038": frozenset({"A", "CA", "CM", "DC", "ER", "HD", "IP", "RP", "SC"}),
    # 0123 result status (OBR-25)
    "0123": frozenset({"O", "I", "S", "A", "P", "C", "R", "F", "X", "Y", "Z"}),
    # 0085 observation result status (OBX-11)
    "0085": frozenset({"C", "D", "F", "I", "N", "O", "P", "R", "S", "U", "W", "X"}),
    # 0125 value type (OBX-2); CM and the v2.6+ types are still sent by real systems
    "0125": frozenset({
        "AD", "CE", "CF", "CK", "CM", "CN", "CNE", "CP", "CWE", "CX", "DR", "DT", "DTM",
        "ED", "EI", "FT", "HD", "ID", "IS", "MA", "MO", "NA", "NM", "NR", "PN", "RP",
        "SI", "SN", "ST", "TM", "TN", "TQ", "TS", "TX", "XAD", "XCN", "XON", "XPN", "XTN",
    }),
}

_PID = (
    Need(("PID-3",), "patient identifier (PID-3)"),
    Need(("PID-3.4",), "assigning authority of the patient identifier (PID-3.4)"),
    Need(("PID-5",), "patient name (PID-5)"),
)

def _order(ipc_first: bool) -> tuple[Need, ...]:
    """Order needs; an OMI^O23 names the IPC/TQ1 field first, an ORM^O01 the OBR/ZDS one."""

    def alt(obr: str, ipc: str, what: str, timestamp: bool = False) -> Need:
        paths = (ipc, obr) if ipc_first else (obr, ipc)
        return Need(paths, f"{what} ({paths[0]} or {paths[1]})", timestamp=timestamp)

    return (
        Need(("ORC-1",), "order control (ORC-1)"),
        Need(("ORC-2", "OBR-2"), "placer order number (ORC-2 or OBR-2)"),
        Need(("ORC-3", "OBR-3"), "filler order number (ORC-3 or OBR-3)"),
        Need(("OBR-4",), "universal service identifier (OBR-4)"),
        alt("OBR-18", "IPC-1", "accession number"),
        alt("OBR-19", "IPC-2", "requested procedure ID"),
        alt("OBR-20", "IPC-4", "scheduled procedure step ID"),
        alt("ZDS-1", "IPC-3", "Study Instance UID"),
        alt("OBR-27.4", "TQ1-7", "scheduled start date/time", timestamp=True),
        alt("OBR-24", "IPC-5", "modality"),
    )


_ORDER_TABLES = (TableCheck("ORC-1", "0119"), TableCheck("ORC-5", "0038"))

#: IHE Radiology Scheduled Workflow (see the module docstring for the transactions).
IHE_SWF = ProfileSpec(
    "ihe-swf",
    "IHE RAD Scheduled Workflow: ADT (RAD-1/12), ORM^O01+ZDS and OMI^O23+IPC "
    "(RAD-2/3/4/13), ORU^R01 (RAD-28)",
    (
        MessageRule(
            ("ADT^A01", "ADT^A02", "ADT^A03", "ADT^A04", "ADT^A05", "ADT^A06", "ADT^A07",
             "ADT^A08", "ADT^A11", "ADT^A12", "ADT^A13"),
            ("EVN", "PID", "PV1"),
            (*_PID, Need(("PV1-2",), "patient class (PV1-2)")),
        ),
        MessageRule(
            ("ADT^A40",),
            ("PID", "MRG"),
            (*_PID, Need(("MRG-1",), "prior patient identifier (MRG-1)"),
             Need(("MRG-1.4",), "assigning authority of the prior identifier (MRG-1.4)")),
        ),
        MessageRule(("ADT^*",), ("PID",), _PID),
        MessageRule(("ORM^O01",), ("PID", "ORC", "OBR"), (*_PID, *_order(False)),
                    _ORDER_TABLES),
        MessageRule(("OMI^O23",), ("PID", "ORC", "OBR"), (*_PID, *_order(True)),
                    _ORDER_TABLES),
        MessageRule(
            ("ORU^R01",),
            ("PID", "OBR", "OBX"),
            (
                *_PID,
                Need(("OBR-4",), "universal service identifier (OBR-4)"),
                Need(("OBR-7",), "observation date/time (OBR-7)", "warning", timestamp=True),
                Need(("OBR-25",), "result status (OBR-25)"),
                Need(("OBX-2",), "value type (OBX-2)"),
                Need(("OBX-3",), "observation identifier (OBX-3)"),
                Need(("OBX-5",), "observation value (OBX-5)", "warning"),
                Need(("OBX-11",), "observation result status (OBX-11)"),
            ),
            (
                TableCheck("OBR-25", "0123"),
                TableCheck("OBX-2", "0125"),
                TableCheck("OBX-11", "0085"),
            ),
        ),
    ),
)
