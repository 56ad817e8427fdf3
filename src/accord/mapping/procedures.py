"""Procedure code tables and scheduled-station rules (docs/model.md, "Order, requested
procedure, procedure step").

A code table maps a sender's local procedure code (OBR-4.1, AIS-3.1) to a procedure:
modality, description, body part, station AE title(s), duration, and optionally a
RadLex Playbook or LOINC code. Tables are versioned: each change is a new version with
its time, author and note, and every earlier version is kept, so the trace can say which
version mapped an order.

Scheduled-station rules work like dcm4chee's ``hl7OrderScheduledStation``: each rule has
a priority and conditions (a message path and a regular expression that must match the
whole value); the matching rule with the highest priority chooses the station AE titles.

Pure values; loading them from config or the store happens elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from accord.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Procedure:
    """What a local code means (DICOM PS3.4 K.6 Requested Procedure / SPS attributes)."""

    code: str
    description: str = ""
    modality: str = ""
    body_part: str = ""
    stations: tuple[str, ...] = ()  # Scheduled Station AE Title(s)
    duration_minutes: int = 0
    radlex: str = ""  # RadLex Playbook RPID
    loinc: str = ""

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("procedure code is empty")


@dataclass(frozen=True, slots=True)
class TableVersion:
    """One version of a code table: the full mapping as of ``at``, and who changed it."""

    number: int
    at: datetime
    author: str
    note: str
    entries: Mapping[str, Procedure]


@dataclass(frozen=True, slots=True)
class CodeTable:
    """A versioned code table. ``versions[-1]`` is current; none is ever dropped."""

    name: str
    versions: tuple[TableVersion, ...] = ()

    @property
    def current(self) -> TableVersion | None:
        return self.versions[-1] if self.versions else None

    def lookup(self, code: str) -> tuple[Procedure, int] | None:
        """The procedure for ``code`` in the current version, with the version number."""
        version = self.current
        if version is None or code not in version.entries:
            return None
        return version.entries[code], version.number

    def change(
        self,
        *,
        at: datetime,
        author: str,
        note: str,
        upsert: tuple[Procedure, ...] = (),
        remove: tuple[str, ...] = (),
    ) -> CodeTable:
        """A new table with one more version: entries added/replaced and removed."""
        entries = dict(self.current.entries) if self.current else {}
        for proc in upsert:
            entries[proc.code] = proc
        for code in remove:
            entries.pop(code, None)
        number = (self.current.number if self.current else 0) + 1
        version = TableVersion(number, at, author, note, entries)
        return replace(self, versions=(*self.versions, version))


@dataclass(frozen=True, slots=True)
class Condition:
    """``path`` (``"OBR-4.1"``, ``"MSH-4"``) must fully match ``pattern``."""

    path: str
    pattern: re.Pattern[str]

    def matches(self, read: Callable[[str], str]) -> bool:
        return self.pattern.fullmatch(read(self.path)) is not None


@dataclass(frozen=True, slots=True)
class StationRule:
    """One scheduled-station rule: all conditions match → these stations."""

    name: str
    priority: int
    stations: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()

    def describe(self) -> str:
        conds = ", ".join(f"{c.path} ~ {c.pattern.pattern}" for c in self.conditions)
        return f"rule '{self.name}' (priority {self.priority}{': ' + conds if conds else ''})"


def choose_stations(
    rules: tuple[StationRule, ...], read: Callable[[str], str]
) -> tuple[StationRule | None, list[str]]:
    """The highest-priority matching rule (earliest on ties), and why others lost."""
    notes: list[str] = []
    for rule in sorted(rules, key=lambda r: -r.priority):
        failed = [c for c in rule.conditions if not c.matches(read)]
        if not failed:
            return rule, notes
        c = failed[0]
        notes.append(
            f"station {rule.describe()} did not match: {c.path} is "
            f"'{read(c.path)}', not ~ {c.pattern.pattern}"
        )
    return None, notes


@dataclass(frozen=True, slots=True)
class Catalog:
    """The procedure knowledge of one site: a code table and station rules."""

    table: CodeTable = field(default_factory=lambda: CodeTable("procedures"))
    rules: tuple[StationRule, ...] = ()


def _procedure(raw: Mapping[str, Any], where: str) -> Procedure:
    try:
        stations = raw.get("stations", raw.get("station", ()))
        if isinstance(stations, str):
            stations = (stations,)
        return Procedure(
            code=str(raw["code"]),
            description=str(raw.get("description", "")),
            modality=str(raw.get("modality", "")),
            body_part=str(raw.get("body_part", "")),
            stations=tuple(str(s) for s in stations),
            duration_minutes=int(raw.get("duration_minutes", 0)),
            radlex=str(raw.get("radlex", "")),
            loinc=str(raw.get("loinc", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad procedure entry ({exc})") from exc


def _rule(raw: Mapping[str, Any], where: str) -> StationRule:
    try:
        stations = raw["stations"]
        if isinstance(stations, str):
            stations = (stations,)
        conditions = tuple(
            Condition(str(path), re.compile(str(pattern)))
            for path, pattern in dict(raw.get("conditions", {})).items()
        )
        return StationRule(
            name=str(raw.get("name", where)),
            priority=int(raw.get("priority", 0)),
            stations=tuple(str(s) for s in stations),
            conditions=conditions,
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"{where}: bad station rule ({exc})") from exc


def catalog_from_config(raw: Mapping[str, Any], *, at: datetime, author: str) -> Catalog:
    """A catalog from config: ``{"procedures": [{code, modality, ...}], "station_rules":
    [{name, priority, stations, conditions: {path: regex}}]}`` (version 1 by ``author``)."""
    procs = tuple(
        _procedure(p, f"procedures[{i}]") for i, p in enumerate(raw.get("procedures", ()))
    )
    table = CodeTable("procedures").change(
        at=at, author=author, note="loaded from configuration", upsert=procs
    )
    rules = tuple(
        _rule(r, f"station_rules[{i}]") for i, r in enumerate(raw.get("station_rules", ()))
    )
    return Catalog(table=table, rules=rules)
