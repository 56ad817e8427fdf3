"""Acknowledgments: original mode (HL7 v2.5.1 §2.9.2) and enhanced mode (§2.9.3).

Rules: pure (the caller passes ``now`` and the new MSH-10); an ACK is answered to the
sender, so MSH-3/4 and MSH-5/6 are swapped, and it keeps the message's encoding
characters, MSH-11 processing ID, MSH-12 version and MSH-18 character set. MSA-2 echoes
MSH-10. An error becomes one ERR segment: ERR-2 location, ERR-3 table 0357 code, ERR-4
severity from v2.5 on; ERR-1 (segment^sequence^field^code) before v2.5 (§2.15.5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from accord.errors import AccordError
from accord.hl7.dtm import format_ts
from accord.hl7.encoding import DEFAULT_ENCODING, Encoding, escape
from accord.hl7.message import Message
from accord.hl7.parser import parse

if TYPE_CHECKING:
    from accord.hl7.validate import Problem

__all__ = [
    "ACCEPT_CODES",
    "TABLE_0357",
    "AckError",
    "accept_ack_wanted",
    "ack_code_in",
    "ack_code_of",
    "ack_mode",
    "ack_text",
    "acked_control_id",
    "application_ack_text",
    "application_ack_wanted",
    "build_ack",
    "build_reject",
    "erl_of",
]

#: HL7 table 0357, message error condition codes (v2.5.1).
TABLE_0357: dict[str, str] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

#: Original-mode codes (table 0008) to the enhanced-mode accept acknowledgment (§2.9.3.1).
ACCEPT_CODES: dict[str, str] = {"AA": "CA", "AE": "CE", "AR": "CR"}
_ALL_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})


@dataclass(frozen=True, slots=True)
class AckError:
    """What goes into the ERR segment: a table 0357 code, where, how bad, and a text."""

    code: str = "207"
    location: str = ""  # a path: "PID-3", "OBX[2]-5.1"
    severity: Literal["E", "W", "I"] = "E"
    text: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> AckError:
        """ERR contents for an exception: AccordError carries code and location; others 207."""
        if isinstance(exc, AccordError):
            return cls(exc.error_code, exc.location, "E", str(exc))
        return cls("207", "", "E", TABLE_0357["207"])

    @classmethod
    def from_problem(cls, problem: Problem) -> AckError:
        """ERR contents for a validation problem (``accord.hl7.validate``)."""
        return cls(problem.code, problem.location,
                   "E" if problem.severity == "error" else "W", problem.message)


def ack_mode(msg: Message) -> Literal["original", "enhanced"]:
    """Enhanced mode when MSH-15 or MSH-16 is valued, original otherwise (§2.9.1)."""
    return "enhanced" if msg.get("MSH-15") or msg.get("MSH-16") else "original"


def _wanted(condition: str, code: str) -> bool:
    # Table 0155: AL always, NE never, ER only on error/reject, SU only on success.
    ok = code in ("AA", "CA")
    return condition == "AL" or (condition == "ER" and not ok) or (condition == "SU" and ok)


def accept_ack_wanted(msg: Message, code: str) -> bool:
    """Whether MSH-15 asks for an accept acknowledgment with this outcome (§2.9.3.1).

    Empty MSH-15 means AL. In original mode an ACK is always due.
    """
    if ack_mode(msg) == "original":
        return True
    return _wanted(msg.get("MSH-15") or "AL", code)


def application_ack_wanted(msg: Message, code: str) -> bool:
    """Whether MSH-16 asks for an application acknowledgment with this outcome (§2.9.3.2).

    Empty MSH-16 means AL. In original mode the one ACK is the application ACK: True.
    """
    if ack_mode(msg) == "original":
        return True
    return _wanted(msg.get("MSH-16") or "AL", code)


_LOCATION = re.compile(
    r"([A-Z0-9]{3})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?"
)


def erl_of(location: str) -> tuple[str, ...]:
    """ERL components (§2.A.27) for a path: ``"OBX[2]-5.1"`` -> OBX, 2, 5, 1, 1.

    Segment ID, segment sequence, field position, field repetition, component,
    sub-component; trailing empty ones dropped. () when the path is not understood.
    """
    m = _LOCATION.fullmatch(location.strip())
    if m is None:
        return ()
    seg, seq, fld, rep, comp, sub = m.groups()
    parts = [seg, seq or "1"]
    if fld:
        parts += [fld, rep or "1", comp or "", sub or ""]
    while parts and not parts[-1]:
        parts.pop()
    return tuple(parts)


def _version_before_25(version: str) -> bool:
    nums = re.findall(r"\d+", version)
    return bool(nums) and tuple(int(n) for n in nums[:2]) < (2, 5)


def _err_segment(error: AckError, version: str, enc: Encoding) -> str:
    """One ERR segment in ER7 for ``error`` (v2.5.1 §2.15.5; v2.3 ERR-1 ELD)."""
    f, c, s = enc.field, enc.component, enc.subcomponent or enc.component
    text = escape(error.text, enc)
    meaning = escape(TABLE_0357.get(error.code, ""), enc)
    erl = [escape(p, enc) for p in erl_of(error.location)]
    if _version_before_25(version):
        # ELD: segment^sequence^field^code&text&HL70357 (code identifying error is a CE).
        eld = (erl[:3] + [""] * 3)[:3]
        code = s.join([error.code, meaning, "HL70357"])
        return f"ERR{f}" + c.join([*eld, code])
    fields = [
        "",
        c.join(erl),
        c.join([error.code, meaning, "HL70357"]),
        error.severity,
        "", "", "",
        text,
    ]
    return ("ERR" + f + f.join(fields)).rstrip(f)


@dataclass(frozen=True, slots=True)
class _Header:
    """The parts of the received MSH an ACK echoes, raw (already escaped)."""

    encoding: Encoding
    msh2: str
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5.1"
    charset: str = ""


def _ack_text(
    head: _Header, code: str, now: datetime, control_id: str,
    errors: Sequence[AckError], text: str,
) -> str:
    enc = head.encoding
    f, c = enc.field, enc.component
    msg_type = c.join(["ACK", head.trigger, "ACK"]) if head.trigger else "ACK"
    msh = [
        "MSH", head.msh2, head.receiving_app, head.receiving_facility, head.sending_app,
        head.sending_facility, format_ts(now, "second"), "", msg_type, escape(control_id, enc),
        head.processing_id, head.version, "", "", "", "", "", head.charset,
    ]
    # MSH-1 is the separator itself, so "MSH" and MSH-2 are joined by it once.
    segments = [f.join(msh).rstrip(f)]
    msa = f.join(["MSA", code, head.control_id, escape(text, enc)]).rstrip(f)
    segments.append(msa)
    segments += [_err_segment(error, head.version, enc) for error in errors]
    return "\r".join(segments)


def _header_of(msg: Message) -> _Header:
    # MSH split once: field n is MSH-n's raw text (``Message.get_raw``), at index n - 1
    # as MSH-1 is the separator itself. Ten ``get_raw`` path lookups were a third of an
    # ACK's cost, and ingest builds one per message before it answers.
    msh = msg.segment("MSH")
    fields = msh.to_er7().split(msg.encoding.field) if msh is not None else []
    fields += [""] * (18 - len(fields))
    return _Header(
        encoding=msg.encoding,
        msh2=fields[1],
        sending_app=fields[2],
        sending_facility=fields[3],
        receiving_app=fields[4],
        receiving_facility=fields[5],
        trigger=msg.get_raw("MSH-9.2"),
        control_id=fields[9],
        processing_id=fields[10] or "P",
        version=fields[11] or "2.5.1",
        charset=fields[17],
    )


def build_ack(
    msg: Message,
    code: str,
    *,
    now: datetime,
    control_id: str,
    error: AckError | Sequence[AckError] | None = None,
    text: str = "",
) -> Message:
    """The acknowledgment of ``msg`` (original mode §2.9.2, enhanced mode §2.9.3).

    ``code`` is AA/AE/AR (table 0008); when ``msg`` asks for enhanced mode (MSH-15/16
    valued) it becomes the accept acknowledgment CA/CE/CR. CA/CE/CR are also accepted
    as is. MSA-2 echoes MSH-10; MSA-3 carries ``text``; each ``error`` adds an ERR segment.
    """
    return parse(ack_text(msg, code, now=now, control_id=control_id, error=error, text=text))


def ack_text(
    msg: Message,
    code: str,
    *,
    now: datetime,
    control_id: str,
    error: AckError | Sequence[AckError] | None = None,
    text: str = "",
) -> str:
    """:func:`build_ack` as ER7 text (segments joined by CR): what ingest sends, without
    parsing the answer it just built (that round trip was half of an AA's cost)."""
    if code not in _ALL_CODES:
        raise ValueError(f"not an acknowledgment code (table 0008): {code!r}")
    if ack_mode(msg) == "enhanced":
        code = ACCEPT_CODES.get(code, code)
    errors = [error] if isinstance(error, AckError) else list(error or ())
    return _ack_text(_header_of(msg), code, now, control_id, errors, text)


def application_ack_text(
    msg: Message,
    code: str,
    *,
    now: datetime,
    control_id: str,
    error: AckError | Sequence[AckError] | None = None,
) -> str:
    """The application acknowledgment of an enhanced-mode message (§2.9.3.2): AA/AE/AR
    (table 0008) once the message was applied, sent as a message of its own after the
    accept acknowledgment. MSA-2 echoes MSH-10; MSH-5/6 name the sender."""
    if code not in ACCEPT_CODES:
        raise ValueError(f"not an application acknowledgment code: {code!r}")
    errors = [error] if isinstance(error, AckError) else list(error or ())
    return _ack_text(_header_of(msg), code, now, control_id, errors, "")


# Salvage for build_reject: "MSH" then a field separator that is not a letter or digit.
_MSH = re.compile(r"MSH([^A-Za-z0-9\r\n])")


def _salvage(raw: str) -> _Header:
    """Best-effort MSH fields from input that did not parse (for an AR, §2.9.2)."""
    m = _MSH.search(raw)
    if m is None or not m.group(1).isprintable() or m.group(1).isspace():
        return _Header(DEFAULT_ENCODING, DEFAULT_ENCODING.msh2)
    sep = m.group(1)
    line = re.split(r"[\r\n]", raw[m.start():], maxsplit=1)[0]
    fields = line.split(sep)
    msh2 = fields[1] if len(fields) > 1 else ""
    chars = msh2 + sep
    if (not 4 <= len(msh2) <= 5 or len(set(chars)) != len(chars)
            or not all(ch.isprintable() and not ch.isalnum() and not ch.isspace() for ch in chars)):
        # No usable MSH-2: keep the standard delimiters, dropping them from the values.
        enc = DEFAULT_ENCODING
        return _Header(enc, enc.msh2, **_fields_of(fields, "^", drop=enc.separators))
    enc = Encoding(sep, msh2[0], msh2[1], msh2[2], msh2[3], msh2[4:5])
    return _Header(enc, msh2, **_fields_of(fields, msh2[0]))


def _fields_of(fields: list[str], component: str, drop: str = "") -> dict[str, str]:
    # fields[0] is "MSH", fields[1] MSH-2, so MSH-n is fields[n - 1].
    def at(n: int) -> str:
        value = fields[n - 1] if len(fields) >= n else ""
        return "".join(ch for ch in value if ch.isprintable() and ch not in drop)

    msg_type = (fields[8] if len(fields) >= 9 else "").split(component)
    trigger = msg_type[1] if len(msg_type) > 1 else ""
    return {
        "sending_app": at(3), "sending_facility": at(4),
        "receiving_app": at(5), "receiving_facility": at(6),
        "trigger": "".join(ch for ch in trigger if ch.isalnum()),
        "control_id": at(10), "processing_id": at(11)[:1] or "P",
        "version": at(12) or "2.5.1",
    }


def build_reject(
    raw: bytes | str,
    *,
    reason: str,
    now: datetime,
    control_id: str,
    error_code: str = "102",
) -> bytes | str:
    """An AR for input that could not be parsed at all (§2.9.2), as ER7 text.

    Whatever MSH-3..6, MSH-9.2 and MSH-10 can be found is echoed; the result has the type
    of ``raw`` (bytes are UTF-8). ERR names the reason with table 0357 ``error_code``.
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    head = _salvage(text)
    error = AckError(error_code, "", "E", reason)
    out = _ack_text(head, "AR", now, control_id, [error], reason)
    return out.encode("utf-8") if isinstance(raw, bytes) else out


def ack_code_of(ack: Message) -> str:
    """MSA-1 of an acknowledgment (AA, AE, AR, CA, CE, CR), or "" when there is none."""
    return ack.get("MSA-1")


def ack_code_in(data: bytes | None) -> str:
    """MSA-1 of an acknowledgment as it was received (bytes), or "" when there is none or
    it cannot be read (a receiver's answer is whatever it sent)."""
    if not data:
        return ""
    try:
        return ack_code_of(parse(data))
    except AccordError:
        return ""


def acked_control_id(ack: Message) -> str:
    """MSA-2: the MSH-10 of the message this ACK answers."""
    return ack.get("MSA-2")
