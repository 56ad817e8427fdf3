"""Alert rules: which conditions hold now, and which alerts to raise or clear.

Rules:
- Pure: figures in (a :class:`accord.store.views.dashboard.Dashboard`, the store's
  failing commits (:class:`accord.store.CommitFault`) and ``now``), conditions out. No
  clock reads, no I/O; :mod:`accord.web.alerts` polls and posts.
- A condition has a stable ``key`` (rule + subject). :class:`AlertState` raises ONE alert
  when a key appears and one "resolved" when it goes away: while a condition holds,
  however many times it is evaluated, nothing more is sent (never a flood).
- Alert texts name interfaces, destinations, counts and finding kinds only, never a
  patient (webhooks leave the console's audit boundary).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from accord.store import CommitFault
from accord.store.views.dashboard import Dashboard

RuleKind = Literal["queue_depth", "error_rate", "connection_down", "sender_silent", "finding",
                   "apply_lag", "storage_fault"]
KINDS: tuple[str, ...] = ("queue_depth", "error_rate", "connection_down", "sender_silent",
                          "finding", "apply_lag", "storage_fault")


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One rule. ``subject`` narrows it to one destination, sender or finding kind
    ("" = every one). ``threshold``: queue rows (queue_depth), a fraction 0..1
    (error_rate, with at least ``min_messages`` in the window), minutes (sender_silent),
    open findings (finding), seconds the oldest message answered on store may wait
    unapplied (apply_lag). ``storage_fault`` holds while a component's last commit failed
    (``subject``: ingest, apply, delivery, jobs, mpps; no threshold) and clears with its
    next successful commit."""

    kind: RuleKind
    subject: str = ""
    threshold: float = 0.0
    min_messages: int = 10
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert rule kind {self.kind!r}")
        if self.threshold < 0:
            raise ValueError("alert threshold must not be negative")


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule that holds now, about one subject."""

    key: str
    rule: str
    subject: str
    summary: str
    severity: str = "warning"


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition as raised (``since``) and, once it cleared, ``cleared``."""

    condition: Condition
    since: datetime
    cleared: datetime | None = None


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("connection_down", severity="error"),
    AlertRule("queue_depth", threshold=100),
    AlertRule("error_rate", threshold=0.2),
    AlertRule("finding", subject="cancelled_but_performed", threshold=1, severity="error"),
    AlertRule("apply_lag", threshold=300),
    AlertRule("storage_fault", severity="error"),
)


def rules_from_config(raw: Sequence[Mapping[str, Any]]) -> tuple[AlertRule, ...]:
    """Rules from the config's ``alerts.rules`` list (keys as :class:`AlertRule`)."""
    allowed = {"kind", "subject", "threshold", "min_messages", "severity"}
    rules = []
    for n, item in enumerate(raw, 1):
        unknown = set(item) - allowed
        if unknown:
            raise ValueError(f"alerts.rules[{n}]: unknown keys {sorted(unknown)}")
        rules.append(AlertRule(**item))
    return tuple(rules)


def _wanted(rule: AlertRule, subject: str) -> bool:
    return not rule.subject or rule.subject == subject


def _conditions(rule: AlertRule, dash: Dashboard, faults: Sequence[CommitFault],
                now: datetime) -> Iterable[Condition]:
    name = rule.kind
    if name == "storage_fault":
        for f in faults:
            if _wanted(rule, f.component):
                yield Condition(f"{name}:{f.component}", name, f.component,
                                _fault_summary(f), rule.severity)
    elif name == "queue_depth":
        for d in dash.destinations:
            if _wanted(rule, d.name) and d.queued > rule.threshold:
                yield Condition(f"{name}:{d.name}", name, d.name,
                                f"queue to {d.name} holds {d.queued} messages "
                                f"(threshold {rule.threshold:g})", rule.severity)
    elif name == "connection_down":
        for d in dash.destinations:
            if _wanted(rule, d.name) and d.state == "retrying":
                yield Condition(f"{name}:{d.name}", name, d.name,
                                # not the receiver's error text: it may quote the message
                                f"{d.name} is not accepting messages (deliveries retried)",
                                rule.severity)
    elif name == "error_rate":
        for i in dash.interfaces:
            if (_wanted(rule, i.sender) and i.received >= rule.min_messages
                    and i.errored / i.received > rule.threshold):
                yield Condition(f"{name}:{i.sender}", name, i.sender,
                                f"{i.sender}: {i.errored} of {i.received} messages refused "
                                f"(over {rule.threshold:.0%})", rule.severity)
    elif name == "sender_silent":
        yield from _silent(rule, dash, now)
    elif name == "apply_lag":
        oldest = dash.backlog_oldest
        if oldest is not None and (now - oldest).total_seconds() > rule.threshold:
            yield Condition(name, name, "", f"{dash.backlog} messages stored and not yet "
                            f"applied, the oldest for over {rule.threshold:g} s",
                            rule.severity)
    else:
        for kind, count in dash.findings:
            if _wanted(rule, kind) and count >= max(1.0, rule.threshold):
                yield Condition(f"{name}:{kind}", name, kind,
                                f"{count} open {kind} findings", rule.severity)


def _fault_summary(fault: CommitFault) -> str:
    """What happened, in words: the component, since when, how often, the driver's error
    (its class and first line: no statement parameters, so no patient)."""
    times = "once" if fault.failures == 1 else f"{fault.failures} times"
    return (f"the store cannot commit {fault.component} writes: failed {times} since "
            f"{fault.since:%Y-%m-%d %H:%M:%S} UTC ({fault.error_class}: {fault.error})")


def _silent(rule: AlertRule, dash: Dashboard, now: datetime) -> Iterable[Condition]:
    """A named sender that sent nothing for ``threshold`` minutes (no sender named: every
    sender seen in the window that then fell silent)."""
    limit = timedelta(minutes=rule.threshold)
    last = {i.sender: i.last_at for i in dash.interfaces}
    subjects = [rule.subject] if rule.subject else list(last)
    for sender in subjects:
        at = last.get(sender)
        if at is None or now - at > limit:
            yield Condition(f"sender_silent:{sender}", "sender_silent", sender,
                            f"no message from {sender} for {rule.threshold:g} minutes",
                            rule.severity)


def evaluate(rules: Sequence[AlertRule], dash: Dashboard, now: datetime,
             faults: Sequence[CommitFault] = ()) -> list[Condition]:
    """Every condition that holds now, one per key (the first rule naming it wins);
    ``faults``: the components whose last commit failed."""
    found: dict[str, Condition] = {}
    for rule in rules:
        for cond in _conditions(rule, dash, faults, now):
            found.setdefault(cond.key, cond)
    return list(found.values())


@dataclass
class AlertState:
    """Open alerts by key; :meth:`step` says what to send."""

    active: dict[str, Alert] = field(default_factory=dict)

    def step(self, holding: Sequence[Condition], now: datetime
             ) -> tuple[list[Alert], list[Alert]]:
        """``(raised, cleared)``: conditions new since the last step, and alerts whose
        condition no longer holds. A condition that keeps holding raises nothing."""
        keys = {c.key for c in holding}
        raised = []
        for cond in holding:
            if cond.key not in self.active:
                self.active[cond.key] = alert = Alert(cond, now)
                raised.append(alert)
        cleared = []
        for key in [k for k in self.active if k not in keys]:
            old = self.active.pop(key)
            cleared.append(Alert(old.condition, old.since, now))
        return raised, cleared
