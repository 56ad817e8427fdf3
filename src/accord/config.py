"""The engine's settings: a YAML file, its defaults, command-line overrides.

Every key and its default is listed in docs/interface.md, "Configuration file".

Rules: the file is read with ``yaml.safe_load`` semantics (SafeLoader, no tags); every key
is known (an unknown key is an error, so a typo never silently falls back to a default);
a bad value raises :class:`~accord.errors.ConfigError` naming the key path *and* the file
line, e.g. ``destinations[1].port: must be an integer (accord.yaml line 7)``. The models
are frozen pydantic models: the runtime reads them, nobody changes them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from accord.errors import ConfigError

Category = Literal["adt", "orders", "reports", "status"]
MIB = 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Model):
    """MLLP listener limits: a block over ``max_message_bytes`` is answered AR, a block
    not ended within ``frame_deadline`` or a connection idle for ``idle_timeout`` is
    closed; a connection must deliver its first message within ``first_frame_grace``;
    ``max_junk_bytes`` without a start block close it; beyond ``max_connections``
    (``max_per_peer`` per address) an idle connection is shed to make room."""

    max_message_bytes: int = Field(default=10 * MIB, gt=0)
    frame_deadline: float = Field(default=30.0, gt=0)
    idle_timeout: float = Field(default=300.0, gt=0)
    max_connections: int = Field(default=100, gt=0)
    max_per_peer: int = Field(default=20, gt=0)
    first_frame_grace: float = Field(default=10.0, gt=0)
    max_junk_bytes: int = Field(default=4096, gt=0)


def _networks(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry an address or a network in CIDR form (``10.0.0.0/8``, ``fd00::/8``)."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or network (CIDR)") from None
    return entries


class TlsServer(_Model):
    """TLS 1.2+ on the listener; ``require_client_cert`` asks for mutual authentication."""

    cert: Path
    key: Path
    ca: Path | None = None
    require_client_cert: bool = False
    crl: Path | None = None  # revoked client certificates (PEM CRL from ``ca``)


class TlsClient(_Model):
    """TLS towards a destination: ``ca`` verifies it, ``cert``/``key`` authenticate us."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_hostname: str | None = None


class Sender(_Model):
    """One allowed sender: MSH-3 (application) and, when given, MSH-4 (facility)."""

    app: str
    facility: str | None = None


class MllpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)
    limits: Limits = Field(default_factory=Limits)
    tls: TlsServer | None = None
    allowed_senders: tuple[Sender, ...] = ()
    allowed_addresses: tuple[str, ...] = ()  # CIDR; empty: any address may connect
    # Original mode (no MSH-15/16): AA/AE after the workflow, or AA once stored. Enhanced
    # mode (HL7 v2.5 §2.9.3) is always answered CA once stored.
    ack: Literal["on_apply", "on_store"] = "on_apply"
    # Where the application ACK (MSH-16 AL/ER/SU) of each sender goes: "MSH-3^MSH-4" or
    # "MSH-3" to a destination name.
    application_acks: dict[str, str] = {}

    _check_addresses = field_validator("allowed_addresses")(_networks)

    def application_ack_destination(self, app: str, facility: str) -> str | None:
        """The destination of a sender's application ACKs (MSH-3^MSH-4 first, then
        MSH-3 alone), None when none is configured."""
        acks = self.application_acks
        return acks.get(f"{app}^{facility}") or acks.get(app)


class PacsConfig(_Model):
    """The PACS the reconciliation job asks (C-FIND SCU, Study Root, PS3.4 C.6.2)."""

    host: str
    port: int = Field(ge=1, le=65535)
    ae_title: str = Field(default="PACS", min_length=1, max_length=16)
    timeout: float = Field(default=30.0, gt=0)


class ChecksConfig(_Model):
    """Checks on every new or changed order (each a finding, flagged on the worklist;
    the order is still applied): the HL7 profile it must meet (``profile``: ``ihe-swf``,
    ``basic``, or null for none) and how far in the past its scheduled start may be
    (``max_schedule_age_hours``)."""

    profile: Literal["basic", "ihe-swf"] | None = "ihe-swf"
    max_schedule_age_hours: float = Field(default=24.0, gt=0)


class DicomConfig(_Model):
    ae_title: str = Field(default="ACCORD", min_length=1, max_length=16)
    host: str = "127.0.0.1"
    port: int = Field(default=11112, ge=0, le=65535)
    enabled: bool = True
    scope_to_station: bool = False  # a calling AE sees only its own station's steps
    max_associations: int = Field(default=16, gt=0)
    activity_days: int = Field(default=30, gt=0)  # the DICOM log keeps this many days
    # A scheduled step this many hours past its start and never started leaves the
    # worklist (the order stays in the store; its MPPS still finds it).
    worklist_horizon_hours: float = Field(default=168.0, gt=0)
    max_per_ae: int = Field(default=8, gt=0)  # concurrent associations per calling AE
    max_per_peer: int = Field(default=8, gt=0)  # concurrent associations per address
    idle_timeout: float = Field(default=60.0, gt=0)  # an association this quiet is aborted
    allowed_addresses: tuple[str, ...] = ()  # CIDR; empty: any address may connect
    allowed_calling_aes: tuple[str, ...] = ()  # empty: any calling AE title
    pacs: PacsConfig | None = None  # reconciliation runs only when a PACS is named
    reconcile_after_minutes: float = Field(default=60.0, gt=0)
    reconcile_interval: float = Field(default=300.0, gt=0)

    _check_addresses = field_validator("allowed_addresses")(_networks)

    @property
    def worklist_horizon(self) -> timedelta:
        """``worklist_horizon_hours`` as a duration (the MWL's and the console's)."""
        return timedelta(hours=self.worklist_horizon_hours)

    @field_validator("allowed_calling_aes")
    @classmethod
    def _ae_titles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in v if not 0 < len(t.strip()) <= 16 or "\\" in t]
        if bad:
            raise ValueError(f"not an AE title (1-16 characters, no backslash): {bad[0]!r}")
        return tuple(t.strip() for t in v)


class WorkflowConfig(_Model):
    """The canonical model's settings: on or off (off: ingest only routes by category,
    and no DICOM bridge runs), the procedure catalog (``procedures`` and
    ``station_rules``, see ``accord.mapping.procedures.catalog_from_config``) and
    whether new patients are scored against the stored ones (never merged)."""

    enabled: bool = True  # false: a plain router (messages pass through by category)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    catalog: dict[str, Any] = {}
    identity_matching: bool = True
    # The facility's own phone numbers (switchboard, ward desks): registrars type them
    # for patients without a phone, so identity matching reads them as missing.
    own_phones: list[str] = []


class HttpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class AuditConfig(_Model):
    """Who reads the audit log: auditors always; admins too when ``admin_can_read`` (off
    by default: the people who act do not read the record of their own acts)."""

    admin_can_read: bool = False


AUDIT_YEARS = 3653  # ten years: health records law asks for six to ten


class Retention(_Model):
    """How many days each kind of row is kept (None: for ever), pruned by the retention
    job in blocks. ``messages`` (or ``store.retention_days``, its older spelling): received
    messages with their keys, claims and finished outbox rows, never one still queued or
    in the error queue; ``trace``: trace events; ``findings``: findings once resolved
    (open ones are kept); ``mpps``: MPPS instances; ``audit``: the audit log, never shorter
    than ``audit_floor`` (a typo cannot erase the record of who saw what)."""

    messages: int | None = Field(default=None, gt=0)
    trace: int | None = Field(default=None, gt=0)
    findings: int | None = Field(default=None, gt=0)
    mpps: int | None = Field(default=None, gt=0)
    audit: int | None = Field(default=AUDIT_YEARS, gt=0)
    audit_floor: int = Field(default=6 * 365, gt=0)

    @model_validator(mode="after")
    def _audit_floor(self) -> Retention:
        if self.audit is not None and self.audit < self.audit_floor:
            raise ValueError(f"audit: {self.audit} days is shorter than audit_floor "
                             f"({self.audit_floor} days)")
        return self


class StoreConfig(_Model):
    """``url`` wins; else SQLite under ``data_dir``. Retention per table in ``retention``
    (``retention_days`` is the older spelling of ``retention.messages``)."""

    url: str | None = None
    data_dir: Path = Path("accord-data")
    retention_days: int | None = Field(default=None, gt=0)
    retention: Retention = Field(default_factory=Retention)
    prune_interval: float = Field(default=3600.0, gt=0)
    prune_block: int = Field(default=1000, gt=0)

    @model_validator(mode="after")
    def _one_message_retention(self) -> StoreConfig:
        days, newer = self.retention_days, self.retention.messages
        if days is not None and newer is not None and days != newer:
            raise ValueError("retention_days and retention.messages say different things; "
                             "keep retention.messages")
        return self

    @property
    def message_retention(self) -> int | None:
        """Days received messages are kept (None: for ever)."""
        return self.retention.messages or self.retention_days

    def resolved_url(self) -> str:
        """The SQLAlchemy URL of the store."""
        if self.url:
            return self.url
        return f"sqlite:///{(self.data_dir / 'accord.db').resolve()}"


class Backoff(_Model):
    """Capped exponential backoff between attempts: ``min(cap, base * 2**n)`` seconds."""

    base: float = Field(default=1.0, gt=0)
    cap: float = Field(default=60.0, gt=0)

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, attempt)))


class Destination(_Model):
    """A downstream system (``name``, ``host``, ``port``, ``send:`` categories) and how to
    deliver to it."""

    name: str = Field(min_length=1)
    host: str
    port: int = Field(ge=1, le=65535)
    send: tuple[Category, ...] = Field(min_length=1)
    tls: TlsClient | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    ack_timeout: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff: Backoff = Field(default_factory=Backoff)
    per_patient: bool = False
    workers: int = Field(default=4, ge=1, le=64)
    rotate: bool = False
    dialect: str | None = None


class Config(_Model):
    """Everything the runtime needs. Build with :func:`load_config`."""

    node_id: str | None = None
    mllp: MllpConfig = Field(default_factory=MllpConfig)
    dicom: DicomConfig = Field(default_factory=DicomConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    destinations: tuple[Destination, ...] = ()
    dialects: dict[str, dict[str, Any]] = {}
    alerts: dict[str, Any] = {}  # webhook, interval, rules: accord.web.alerts.AlertSettings
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    shutdown_grace: float = Field(default=30.0, gt=0)  # SIGTERM: seconds to finish in flight
    audit: AuditConfig = Field(default_factory=AuditConfig)

    @field_validator("destinations")
    @classmethod
    def _unique_names(cls, v: tuple[Destination, ...]) -> tuple[Destination, ...]:
        names = [d.name for d in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"destination names must be unique: {', '.join(dupes)}")
        return v


# Dotted override keys accepted from the command line (None values are ignored).
OVERRIDE_KEYS = (
    "mllp.port", "dicom.port", "http.port", "store.url", "store.data_dir", "node_id",
)

_MESSAGES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``path`` (YAML; None for defaults only), apply ``overrides`` and validate.

    ``overrides`` maps dotted keys (``"mllp.port"``) to values; None values are skipped,
    so CLI flags that were not given change nothing.
    """
    raw: Any = {}
    lines: dict[tuple[str | int, ...], int] = {}
    name = str(path) if path is not None else "<defaults>"
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            line = exc.object[:exc.start].count(b"\n") + 1
            raise ConfigError(f"{p.name} line {line}: not UTF-8 text") from None
        raw, lines = _parse_yaml(text, p.name)
        name = p.name
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the top level must be a mapping of keys")
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, key, value)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, lines, name)) from None
    _check_ack_destinations(config, lines, name)
    return config


def _check_ack_destinations(config: Config, lines: dict[tuple[str | int, ...], int],
                            name: str) -> None:
    """Each ``mllp.application_acks`` entry names a configured destination."""
    names = {d.name for d in config.destinations}
    for sender, dest in config.mllp.application_acks.items():
        if dest not in names:
            line = _line_of(("mllp", "application_acks", sender), lines)
            where = f"{name} line {line}" if line else name
            raise ConfigError(f"mllp.application_acks.{sender}: no destination named "
                              f"{dest!r} ({where})")


def line_of(path: str | Path | None, keys: tuple[str | int, ...]) -> str:
    """`` (FILE line N)`` for the key path ``keys`` in the config file (the nearest
    enclosing key that is written there), or "" without a file: for errors found after
    loading, when a section is built into the part that uses it."""
    if path is None:
        return ""
    p = Path(path)
    try:
        _, lines = _parse_yaml(p.read_text(encoding="utf-8"), p.name)
    except (OSError, ConfigError):
        return f" ({p.name})"
    line = _line_of(keys, lines)
    return f" ({p.name} line {line})" if line else f" ({p.name})"


def _parse_yaml(text: str, name: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{problem} ({name}{where})") from None
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple[str | int, ...],
                 out: dict[tuple[str | int, ...], int]) -> None:
    """Map each key path to the 1-based line where it appears in the file."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            out[(*path, key)] = k.start_mark.line + 1
            _index_lines(v, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out)


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = raw
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _describe(exc: ValidationError, lines: dict[tuple[str | int, ...], int],
              name: str) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if isinstance(x, str | int))
        text = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "literal_error":
            text = f"must be one of {err.get('ctx', {}).get('expected', '')}"
        where = _line_of(loc, lines)
        suffix = f" ({name} line {where})" if where else f" ({name})"
        parts.append(f"{_format_path(loc) or '<top>'}: {text}{suffix}")
    return "; ".join(parts)


def _line_of(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 0


def _format_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
