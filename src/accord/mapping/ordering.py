"""Order messages to commands: ORM^O01, OMI^O23, OMG^O19 and SIU^S12–S26.

Rules:
- One ORC/OBR group is one requested procedure; several groups give several orders.
- Order numbers: placer ORC-2/OBR-2, filler ORC-3/OBR-3, accession where the dialect
  says (default OBR-18, IHE RAD TF-2 Table 4.4-6; else IPC-1), requested procedure ID
  OBR-19/IPC-2, SPS ID OBR-20/IPC-4, Study Instance UID ZDS-1/IPC-3.
- Stations, first that applies: IPC-9 (the sender chose), the highest-priority matching
  scheduled-station rule, the code table, the dialect's default station. An unmapped
  procedure code is an ``unmapped_code`` finding; with no station from IPC-9 or a rule
  it follows the dialect policy (default station, or hold: kept off the worklist, AE).
- ORC-1 (with ORC-5) is looked up in the dialect; an unknown pair is refused (AE, 103).
- New and changed orders are checked (``accord.mapping.checks``): findings, not refusals.
Each decision is written into ``OrderData.rules`` in plain words for the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from accord.mapping.checks import order_findings, profile_problems
from accord.mapping.procedures import Procedure, choose_stations
from accord.mapping.segments import Context, Group, patient, person, visit, when
from accord.workflow.commands import (
    CancelOrder,
    Command,
    OrderData,
    OrderRef,
    PlaceOrder,
    UpdateOrder,
)
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import ProcedureStep
from accord.workflow.outcome import Refusal
from accord.workflow.status import STOPPED, Status


@dataclass(slots=True)
class Partial:
    """Commands and findings gathered so far; a refusal stops the message."""

    commands: list[Command] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    refusal: Refusal | None = None


@dataclass(slots=True)
class _Stations:
    stations: tuple[str, ...] = ()
    rules: list[str] = field(default_factory=list)
    hold: str = ""


def order_ref(g: Group, ctx: Context) -> tuple[OrderRef, str]:
    """The order's numbers, and the path the accession was read from."""
    acc_path, accession = g.first(ctx.dialect.accession, "IPC-1")
    return OrderRef(
        accession=accession,
        placer_number=g.first("ORC-2.1", "OBR-2.1")[1],
        filler_number=g.first("ORC-3.1", "OBR-3.1")[1],
        study_instance_uid=g.first("ZDS-1.1", "IPC-3")[1],
        requested_procedure_id=g.first("OBR-19", "IPC-2")[1],
        sps_id=g.first("OBR-20", "IPC-4")[1],
    ), acc_path


def lookup(ctx: Context, code: str, location: str, ref: OrderRef, out: Partial) -> (
    tuple[Procedure | None, list[str]]
):
    """The code table entry for ``code``; an ``unmapped_code`` finding when none."""
    if ctx.catalog is None or not code:
        return None, []
    found = ctx.catalog.table.lookup(code)
    if found is not None:
        proc, version = found
        return proc, [f"{location} code {code} mapped to '{proc.description or proc.code}'"
                      f" (code table version {version})"]
    current = ctx.catalog.table.current
    number = current.number if current else 0
    # Keyed by sender and code, not by order: the same unknown code is one finding.
    out.findings.append(ctx.finding(
        FindingKind.UNMAPPED_CODE,
        f"{location} code {code} is not in the procedure code table (version {number});"
        f" last seen on {ref.describe()}",
        subject=code, location=location,
    ))
    return None, [f"{location} code {code} is not mapped in the procedure code table"]


def stations_for(
    g: Group, ctx: Context, code: str, location: str, proc: Procedure | None,
    explicit: tuple[str, ...],
) -> _Stations:
    """The scheduled station AE titles of a step, and why (see the module rules)."""
    if explicit:
        return _Stations(explicit, [f"station {', '.join(explicit)} named by the sender (IPC-9)"])
    result = _Stations()
    if ctx.catalog is not None and ctx.catalog.rules:
        rule, losers = choose_stations(ctx.catalog.rules, g.get)
        result.rules.extend(losers)
        if rule is not None:
            result.stations = rule.stations
            result.rules.append(f"station {', '.join(rule.stations)} chosen by {rule.describe()}")
            return result
    if proc is not None and proc.stations:
        result.stations = proc.stations
        result.rules.append(f"station {', '.join(proc.stations)} from the code table for {code}")
        return result
    unmapped = ctx.catalog is not None and proc is None and bool(code)
    d = ctx.dialect
    if unmapped and d.unmapped_code == "hold":
        result.hold = f"{location} code {code} is not mapped (policy: hold)"
        result.rules.append(f"not on any worklist: {result.hold}")
    elif d.default_station:
        result.stations = (d.default_station,)
        why = f"{location} code {code} is not mapped" if unmapped else "no rule or table entry"
        result.rules.append(
            f"station {d.default_station} is the default of dialect {d.name} ({why})")
    else:
        result.rules.append(
            f"not on any worklist: no rule, code table entry or default station names a "
            f"station for {location} code {code or '(empty)'}")
    return result


def _repeats(g: Group, path: str, nth: int) -> tuple[str, ...]:
    full = g.path(path, nth)
    count = g.msg.repetitions(full)
    return tuple(v for i in range(1, count + 1) if (v := g.msg.get(f"{full}[{i}]")))


def order_data(
    g: Group, ctx: Context, out: Partial, *, code_path: str = "OBR-4", ref: OrderRef | None = None
) -> OrderData:
    """One group's requested procedure and its procedure steps (``ref``: its numbers,
    when the caller has read them already)."""
    if ref is None:
        ref, _ = order_ref(g, ctx)
    code = g.get(f"{code_path}.1")
    proc, rules = lookup(ctx, code, code_path, ref, out)
    start_path = next((p for p in ("TQ1-7", "OBR-27.4", "ORC-7.4", "OBR-36", "AIS-4")
                       if g.get(p)), "")
    start = when(g.msg, g.path(start_path)) if start_path else None
    modality = g.first("IPC-5", "OBR-24")[1] or (proc.modality if proc else "")
    description = g.get(f"{code_path}.2") or (proc.description if proc else "")
    steps: list[ProcedureStep] = []
    hold = ""
    for nth in range(1, max(1, g.count("IPC")) + 1):
        explicit = _repeats(g, "IPC-9", nth) if g.has("IPC") else ()
        chosen = stations_for(g, ctx, code, code_path, proc, explicit)
        rules.extend(chosen.rules)
        hold = hold or chosen.hold
        steps.append(ProcedureStep(
            sps_id=g.get("IPC-4", nth) or (ref.sps_id if nth == 1 else ""),
            modality=g.get("IPC-5", nth) or modality,
            station_ae_titles=chosen.stations,
            station_name=g.get("IPC-7", nth),
            location=g.get("IPC-8", nth),
            start=start,
            description=description,
            protocol_code=g.get("IPC-6.1", nth),
        ))
    return OrderData(
        ref=ref, procedure_code=code, procedure_description=description,
        coding_system=g.get(f"{code_path}.3"), modality=modality,
        body_part=proc.body_part if proc else "", steps=tuple(steps),
        priority=g.first("TQ1-9.1", "ORC-7.6", "OBR-27.6")[1],
        referring_physician=person(g.msg, g.path("OBR-16")) or person(g.msg, g.path("ORC-12")),
        reason=g.first("OBR-31.2", "OBR-31.1")[1], hold_reason=hold, rules=tuple(rules),
    )


def _required(g: Group, ctx: Context, ref: OrderRef, acc_path: str, new: bool) -> Refusal | None:
    if not ref.placer_number and not ref.filler_number and not ref.accession:
        return Refusal("ORC-2", f"no order number: ORC-2, ORC-3 and {acc_path} are empty")
    if new and not g.get("OBR-4.1"):
        return Refusal("OBR-4", "no procedure code in OBR-4")
    if new and not ref.study_instance_uid and ctx.dialect.study_uid_policy == "reject":
        where = "IPC-3" if g.has("IPC") else "ZDS-1"
        return Refusal(where, f"no Study Instance UID in {where} (policy: reject)")
    return None


def _initial_status(status: Status, data: OrderData) -> tuple[Status, list[str]]:
    """NW: ordered with a start time and a station is scheduled (a time and a station
    known is what ``scheduled`` means; docs/model.md, "The canonical status")."""
    step = data.steps[0] if data.steps else None
    on_list = step is not None and step.start is not None and bool(step.station_ae_titles)
    if status is Status.ORDERED and on_list and not data.hold_reason:
        return Status.SCHEDULED, ["scheduled: start time and station are known"]
    if status is Status.SCHEDULED and data.hold_reason:
        return Status.ORDERED, [f"kept as ordered, not scheduled: {data.hold_reason}"]
    return status, []


def order_commands(ctx: Context, groups: list[Group], out: Partial) -> None:
    """ORM^O01 / OMI^O23 / OMG^O19: one command per ORC group (HL7 v2.5.1 §4.5.1, §4.4.6)."""
    pat = patient(ctx.msg, ctx.dialect)
    vis = visit(ctx.msg)
    problems: list[str] | None = None  # the message's profile errors, read once
    for g in groups:
        control, order_status = g.get("ORC-1"), g.get("ORC-5")
        ref, acc_path = order_ref(g, ctx)
        refusal = _required(g, ctx, ref, acc_path, control == "NW")
        if refusal is None and not pat.identifiers and control == "NW":
            refusal = Refusal("PID-3", "no patient identifier in PID-3")
        known, status = ctx.dialect.order_status_for(control, order_status)
        said = f"ORC-1 {control}" + (f", ORC-5 {order_status}" if order_status else "")
        if refusal is None and not known:
            out.findings.append(ctx.finding(
                FindingKind.UNMAPPED_CODE, f"{said} has no meaning in dialect {ctx.dialect.name}",
                accession=ref.accession, subject=said, location="ORC-1"))
            refusal = Refusal("ORC-1", f"{said} is not in the dialect's table", error_code="103")
        if refusal is not None:
            out.refusal = refusal
            return
        if status in STOPPED:
            out.commands.append(CancelOrder(ref, status or Status.CANCELLED, said, patient=pat))
            continue
        data = order_data(g, ctx, out, ref=ref)
        _hold(data, "OBR-4", out)
        if control in CHECKED and ctx.checks is not None:
            if problems is None:
                problems = profile_problems(ctx.msg, ctx.checks.profile)
            out.findings += _checked(ctx, data, problems)
        if control == "NW":
            first, notes = _initial_status(status or Status.ORDERED, data)
            data = _with_rules(data, notes)
            out.commands.append(PlaceOrder(pat, data, first, said, vis))
        else:
            out.commands.append(UpdateOrder(pat, data, status, said, vis))


CHECKED = frozenset({"NW", "XO"})  # new and changed orders (``mapping.checks``)


def _checked(ctx: Context, data: OrderData, problems: list[str] | None = None
             ) -> list[Finding]:
    """The order checks' findings (``accord.mapping.checks``); ``problems``: the
    message's profile errors when the caller read them already."""
    if ctx.checks is None:
        return []
    if problems is None:
        problems = profile_problems(ctx.msg, ctx.checks.profile)
    return order_findings(ctx.checks, problems, data, now=ctx.now, finding=ctx.finding)


def _with_rules(data: OrderData, notes: list[str]) -> OrderData:
    return replace(data, rules=data.rules + tuple(notes)) if notes else data


_SIU_DEFAULT: dict[str, Status | None] = {
    "S12": Status.SCHEDULED, "S13": Status.SCHEDULED, "S14": None,
    "S15": Status.CANCELLED, "S17": Status.CANCELLED, "S26": Status.CANCELLED,
}


def siu_commands(ctx: Context, trigger: str, out: Partial) -> None:
    """SIU^S12 (book), S13 (reschedule), S14 (modify / arrived per dialect), S15 (cancel),
    S17 (delete), S26 (no-show): HL7 v2.5.1 §10.4, SCH-25 mapped by the dialect."""
    d = ctx.dialect
    g = Group(ctx.msg)
    placer = (g.get(d.siu_placer) if d.siu_placer else "") or ""
    filler = (g.get(d.siu_filler) if d.siu_filler else "") or ""
    accession = g.get(d.siu_accession) if d.siu_accession else ""
    if not (placer or filler or accession):
        placer, filler = g.get("SCH-1.1"), g.get("SCH-2.1")
    ref = OrderRef(accession=accession, placer_number=placer, filler_number=filler)
    pat = patient(ctx.msg, d)
    if not ref:
        out.refusal = Refusal(d.siu_placer or "SCH-1", "no appointment or order number")
        return
    said = f"SIU^{trigger}" + (f", SCH-25 {g.get('SCH-25.1')}" if g.get("SCH-25.1") else "")
    status = _SIU_DEFAULT.get(trigger)
    if trigger in ("S12", "S13", "S14") and g.get("SCH-25.1") in d.siu_status:
        status = d.siu_status[g.get("SCH-25.1")]
    if trigger == "S14" and d.s14 == "arrival":
        status = Status.ARRIVED
    if trigger in ("S15", "S17", "S26"):
        reason = {"S15": "cancelled", "S17": "deleted", "S26": "no-show"}[trigger]
        out.commands.append(CancelOrder(ref, Status.CANCELLED, said, reason, pat))
        return
    data = order_data(g, ctx, out, code_path="AIS-3")
    data = replace(data, ref=ref)
    _hold(data, "AIS-3", out)
    if trigger in ("S12", "S13"):
        out.findings += _checked(ctx, data)
    if trigger == "S12":
        if not pat.identifiers:
            out.refusal = Refusal("PID-3", "no patient identifier in PID-3")
            return
        first, notes = _initial_status(status or Status.SCHEDULED, data)
        out.commands.append(PlaceOrder(pat, _with_rules(data, notes), first, said, visit(ctx.msg)))
    else:
        out.commands.append(UpdateOrder(pat, data, status, said, visit(ctx.msg)))


def _hold(data: OrderData, location: str, out: Partial) -> None:
    """Policy hold: the order is kept (off the worklist) and the ACK is AE (103)."""
    if data.hold_reason and out.refusal is None:
        out.refusal = Refusal(location, data.hold_reason, error_code="103", keep=True)
