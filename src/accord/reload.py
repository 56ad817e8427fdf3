"""Reloading the configuration without a restart: ``SIGHUP``, or an admin's action on the
console (docs/operations.md, "Reload").

Rules:
- What reloads: ``destinations`` (delivery workers and where outbound messages go),
  ``dialects``, ``workflow.catalog`` (station rules; the procedures it seeds),
  ``alerts``, ``mllp.limits``, the retention settings of ``store`` and
  ``shutdown_grace``. Everything else (a listener's host, port or TLS, allowed senders,
  the store, the node id, DICOM, HTTP, whether the workflow runs, the order checks, who
  reads the audit log) is read at start only:
  a change there is reported as needing a restart, and the running value stays.
- All or nothing: every part is built from the new file before anything is switched; a
  file with any error is refused whole, the error naming the key and its line, and the
  running configuration stays as it was.
- Nothing in flight is dropped: connections stay open (new limits apply to what they
  read next), a message keeps the configuration it was mapped with, and a delivery in
  progress finishes on the destination settings it started with
  (:meth:`accord.engine.deliver.Deliverer.reconfigure`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from accord.clock import ControlIds
from accord.config import Config, line_of
from accord.engine.workflow import Outbound
from accord.errors import ConfigError
from accord.mapping.dialect import Dialect, Dialects
from accord.mapping.procedures import Catalog, catalog_from_config
from accord.mllp.server import MllpLimits
from accord.web.alerts import AlertSettings

# Keys read at start only.
RESTART_ONLY: tuple[str, ...] = (
    "node_id", "mllp.host", "mllp.port", "mllp.tls", "mllp.allowed_senders",
    "mllp.allowed_addresses", "mllp.ack", "mllp.application_acks", "dicom",
    "http", "store.url", "store.data_dir", "workflow.enabled", "workflow.identity_matching",
    "workflow.own_phones", "workflow.checks", "audit",
)
RELOADED: tuple[str, ...] = (
    "destinations", "dialects", "workflow.catalog", "alerts", "mllp.limits",
    "store.retention", "store.retention_days", "store.prune_interval", "store.prune_block",
    "shutdown_grace",
)


@dataclass(frozen=True, slots=True)
class Reloaded:
    """What a reload did: the keys it applied, those that wait for a restart, and notes
    an operator should read (a removed destination with rows still queued)."""

    applied: tuple[str, ...]
    restart: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [f"applied: {', '.join(self.applied) or 'nothing changed'}"]
        if self.restart:
            parts.append(f"needs a restart: {', '.join(self.restart)}")
        return "; ".join([*parts, *self.notes])

    def as_json(self) -> dict[str, Any]:
        return {"applied": list(self.applied), "restart": list(self.restart),
                "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class Parts:
    """The reloadable parts of one configuration, built and checked."""

    dialects: Dialects
    outbound: Outbound
    catalog: Catalog | None  # from workflow.catalog (None: no catalog in the file)
    alerts: AlertSettings
    limits: MllpLimits


def _value(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def differing(old: Config, new: Config, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys among ``keys`` whose values differ between ``old`` and ``new``."""
    return tuple(k for k in keys if _value(old, k) != _value(new, k))


def running(old: Config, new: Config) -> Config:
    """The configuration that runs after a reload: ``new``, with every key read at start
    only kept as it runs now."""
    return new.model_copy(update={
        "node_id": old.node_id, "dicom": old.dicom, "http": old.http, "audit": old.audit,
        "mllp": old.mllp.model_copy(update={"limits": new.mllp.limits}),
        "store": new.store.model_copy(update={"url": old.store.url,
                                              "data_dir": old.store.data_dir}),
        "workflow": new.workflow.model_copy(update={
            "enabled": old.workflow.enabled,
            "identity_matching": old.workflow.identity_matching,
            "own_phones": old.workflow.own_phones,
            "checks": old.workflow.checks}),
    })


def build_parts(config: Config, source: Path | None, control_ids: ControlIds,
                now: datetime) -> Parts:
    """Build every reloadable part of ``config`` (read from ``source``); ConfigError
    names the key and its line in ``source``."""
    dialects = dialects_of(config.dialects, source)
    try:
        outbound = Outbound(config.destinations, dialects, control_ids)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{line_of(source, ('destinations',))}") from None
    catalog = _catalog(config, source, now)
    try:
        alerts = AlertSettings.from_config(config.alerts or {})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{exc}{line_of(source, _alert_keys(str(exc)))}") from None
    return Parts(dialects, outbound, catalog, alerts, limits_of(config))


def dialects_of(raw: Mapping[str, Mapping[str, Any]], source: Path | None) -> Dialects:
    """``Dialects.from_config``, each error naming ``dialects.NAME.KEY`` and its line."""
    for name, body in raw.items():
        try:
            Dialect.from_config(body if isinstance(body, Mapping) else {}, name=name)
        except ConfigError as exc:
            keys: tuple[str | int, ...] = ("dialects", name, *exc.location.split(".")[:1])
            key = ".".join(str(k) for k in keys if k != "")
            text = str(exc).removeprefix(f"dialect {name}: ")
            raise ConfigError(f"{key}: {text}{line_of(source, keys)}") from None
    return Dialects.from_config(raw)


def limits_of(config: Config) -> MllpLimits:
    """The MLLP listener's limits (``mllp.limits``; ``shutdown_grace`` bounds how long
    the listener waits for answers in flight when it stops)."""
    lim = config.mllp.limits
    return MllpLimits(max_message_bytes=lim.max_message_bytes,
                      frame_deadline=lim.frame_deadline, idle_timeout=lim.idle_timeout,
                      max_connections=lim.max_connections, max_per_peer=lim.max_per_peer,
                      shutdown_grace=config.shutdown_grace,
                      first_frame_grace=lim.first_frame_grace,
                      max_junk_bytes=lim.max_junk_bytes)


def _catalog(config: Config, source: Path | None, now: datetime) -> Catalog | None:
    raw = config.workflow.catalog
    if not raw:
        return None
    try:
        return catalog_from_config(raw, at=now, author="configuration")
    except ConfigError as exc:
        found = re.match(r"(procedures|station_rules)\[(\d+)\]", str(exc))
        keys: tuple[str | int, ...] = ("workflow", "catalog")
        if found:
            keys = (*keys, found.group(1), int(found.group(2)))
        raise ConfigError(f"workflow.catalog.{exc}{line_of(source, keys)}") from None


def _alert_keys(text: str) -> tuple[str | int, ...]:
    found = re.search(r"alerts\.rules\[(\d+)\]", text)
    return ("alerts", "rules", int(found.group(1)) - 1) if found else ("alerts",)
