"""Inbound mapping: a parsed message and its sender's dialect → workflow commands.

Rules:
- Pure: ``map_message`` reads the message, the dialect and the procedure catalog, and
  returns a :class:`Mapped`; it never looks at stored state (the engine does).
- A required field that is empty refuses the whole message (AE, ERR-2 names the field,
  table 0357 code 101) and is a ``missing_required_field`` finding; nothing is applied.
- A message type the workflow has no use for is refused with AR (0357 code 200), except
  ADT triggers, which all carry a PID: those update the patient.
- ORU^R01 report text: the OBX-5 values of TX, FT and ST observations, in order, one
  line per repetition, FT formatting (``\\.br\\``…) laid out as text (HL7 v2.5.1 §2.7.6);
  ST values that are DICOM references (OBX-3 113014, "... Instance UID") are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accord.hl7 import Message, formatted_text
from accord.mapping.checks import Checks
from accord.mapping.dialect import Dialect
from accord.mapping.ordering import Partial, order_commands, order_ref, siu_commands
from accord.mapping.procedures import Catalog
from accord.mapping.segments import (
    Context,
    Group,
    identifiers,
    order_groups,
    patient,
    person,
    visit,
    when,
)
from accord.workflow.commands import (
    ChangeIdentifier,
    Command,
    MergePatients,
    RegisterPatient,
    ReportResult,
    UpdatePatient,
    VisitAction,
    VisitData,
    VisitEvent,
)
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.outcome import Refusal


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one message means: commands to apply, findings, and a refusal if any."""

    source: str  # MSH-3.1
    message_ref: str  # SENDER/MSH-10
    message_type: str  # "ORM^O01"
    at: datetime
    commands: tuple[Command, ...] = ()
    findings: tuple[Finding, ...] = ()
    refusal: Refusal | None = None
    field_values: tuple[tuple[str, str], ...] = ()  # watched fields, for field_drift


_REGISTER = frozenset({"A01", "A04", "A05", "A28"})
# Patient merges (A41/A42 merge accounts and visits, not patients: plain updates here).
_MERGE = frozenset({"A40", "A34", "A18", "A30", "A39"})
_VISIT: dict[str, VisitAction] = {
    "A10": "arrived", "A11": "undo_arrival", "A12": "update", "A13": "update",
    "A02": "update", "A03": "update", "A06": "update", "A07": "update", "A38": "update",
}
_ORDERS = frozenset({"ORM^O01", "OMI^O23", "OMG^O19"})
_DICOM_REFS = frozenset({"113014", "112002", "121139"})


def map_message(
    msg: Message, dialect: Dialect, *, now: datetime, catalog: Catalog | None = None,
    checks: Checks | None = None,
) -> Mapped:
    """The commands ``msg`` asks for, in ``dialect``'s meaning (see the module rules);
    ``checks``: the order checks to run (``accord.mapping.checks``)."""
    ctx = Context(msg, dialect, now, catalog, checks)
    out = Partial()
    kind, trigger = msg.get("MSH-9.1"), msg.get("MSH-9.2")
    if kind == "ADT":
        _adt(ctx, trigger, out)
    elif f"{kind}^{trigger}" in _ORDERS:
        order_commands(ctx, order_groups(msg), out)
    elif kind == "SIU":
        siu_commands(ctx, trigger, out)
    elif f"{kind}^{trigger}" == "ORU^R01":
        _oru(ctx, out)
    else:
        out.refusal = Refusal(
            "MSH-9", f"{kind}^{trigger} is not a message the workflow applies",
            ack_code="AR", error_code="200")
    if out.refusal is not None and out.refusal.error_code == "101":
        out.findings.append(ctx.finding(
            FindingKind.MISSING_REQUIRED_FIELD, out.refusal.text,
            location=out.refusal.location, subject=msg.message_type))
    return Mapped(
        source=ctx.source, message_ref=ctx.message_ref, message_type=msg.message_type,
        at=now, commands=tuple(out.commands), findings=tuple(out.findings),
        refusal=out.refusal, field_values=_watched(msg, dialect),
    )


def _watched(msg: Message, dialect: Dialect) -> tuple[tuple[str, str], ...]:
    """The watched fields whose segment is in the message (absent segments say nothing)."""
    present = {seg.id for seg in msg.segments}
    return tuple((p, msg.get(p)) for p in dialect.drift_fields if p[:3] in present)


def _adt(ctx: Context, trigger: str, out: Partial) -> None:
    """ADT (HL7 v2.5.1 chapter 3). A40/A34/A18 may repeat PID/MRG pairs (§3.3.40)."""
    msg, d = ctx.msg, ctx.dialect
    if trigger in _MERGE or trigger == "A47":
        pairs = max(1, msg.count("MRG"))
        for n in range(1, pairs + 1):
            survivor = patient(msg, d, n)
            merged = identifiers(msg, f"MRG[{n}]-1", d)
            if not survivor.identifiers:
                out.refusal = Refusal("PID-3", "no patient identifier in PID-3")
                return
            if not merged:
                out.refusal = Refusal("MRG-1", "no prior patient identifier in MRG-1")
                return
            if trigger == "A47":
                out.commands.append(
                    ChangeIdentifier(merged[0], survivor.identifiers[0], trigger, survivor))
            else:
                out.commands.append(MergePatients(survivor, merged, trigger))
        return
    pat = patient(msg, d)
    if not pat.identifiers:
        out.refusal = Refusal("PID-3", "no patient identifier in PID-3")
        return
    vis = visit(msg)
    if trigger in _VISIT:
        out.commands.append(UpdatePatient(pat, trigger, vis))
        if _VISIT[trigger] != "update":  # no PV1-19: every open order of the patient
            out.commands.append(VisitEvent(pat, vis or VisitData(""), trigger, _VISIT[trigger]))
    elif trigger in _REGISTER:
        out.commands.append(RegisterPatient(pat, trigger, vis))
    else:
        out.commands.append(UpdatePatient(pat, trigger, vis))


def _oru(ctx: Context, out: Partial) -> None:
    """ORU^R01 (§7.3.1): one ReportResult per OBR group, OBR-25 mapped by the dialect."""
    groups = order_groups(ctx.msg)
    if not groups:
        out.refusal = Refusal("OBR", "no OBR segment")
        return
    pat = patient(ctx.msg, ctx.dialect)
    vis = visit(ctx.msg)
    for g in groups:
        ref, acc_path = order_ref(g, ctx)
        code = g.get("OBR-25")
        if not ref:
            out.refusal = Refusal(acc_path, f"no order number: OBR-2, OBR-3 and {acc_path} empty")
            return
        if not code:
            out.refusal = Refusal("OBR-25", "no result status in OBR-25")
            return
        if code not in ctx.dialect.report_status:
            out.findings.append(ctx.finding(
                FindingKind.UNMAPPED_CODE,
                f"OBR-25 {code} has no meaning in dialect {ctx.dialect.name}",
                accession=ref.accession, subject=f"OBR-25 {code}", location="OBR-25"))
            out.refusal = Refusal("OBR-25", f"OBR-25 {code} is not in the dialect's table",
                                  error_code="103")
            return
        status = ctx.dialect.report_status[code]
        if status is None:
            continue  # results stored, not reportable yet (table 0123 R, I)
        out.commands.append(ReportResult(
            ref=ref, status=status, code=f"OBR-25 {code}", text=report_text(g),
            interpreter=_interpreter(g), observed_at=when(ctx.msg, g.path("OBR-22"))
            or when(ctx.msg, g.path("OBR-7")),
            patient=pat if pat.identifiers else None,
            visit_number=vis.visit_number if vis else "",
        ))


def _interpreter(g: Group) -> str:
    """OBR-32 principal result interpreter (NDL: the name is in OBR-32.1's subcomponents)."""
    family, given = g.get("OBR-32.1.2"), g.get("OBR-32.1.3")
    if family:
        return f"{family}^{given}" if given else family
    return g.get("OBR-32.1.1") or person(g.msg, g.path("OBR-16"))


def report_text(g: Group) -> str:
    """The report body: TX/FT/ST OBX-5 lines of the group, in order (module rules)."""
    lines: list[str] = []
    for nth in range(1, g.count("OBX") + 1):
        value_type = g.get("OBX-2", nth)
        if value_type not in ("TX", "FT", "ST"):
            continue
        if value_type == "ST" and (
            g.get("OBX-3.1", nth) in _DICOM_REFS or g.get("OBX-3.2", nth).endswith("Instance UID")
        ):
            continue
        full = g.path("OBX-5", nth)
        count = g.msg.repetitions(full)
        for rep in range(1, count + 1):
            # get() resolves escapes and keeps formatting sequences for formatted_text
            # (senders put \.br\ in TX too, so every type is laid out the same way).
            lines.append(formatted_text(g.msg.get(f"{full}[{rep}]"), g.msg.encoding))
        if count == 0:
            lines.append("")
    return "\n".join(lines).strip("\n")
