"""Simulated radiology department traffic for ``accord demo`` and benchmarks.

Each *exam* is the life of one order as a HIS/RIS would report it: registration
(ADT^A04), sometimes a demographics update (ADT^A08), the order (ORM^O01 ORC-1 NW, with a
ZDS segment carrying the Study Instance UID), status updates (ORM^O01 ORC-1 SC with
ORC-5 IP then CM) and the final report (ORU^R01, OBR-25 F). Names and identifiers are
synthetic, drawn from small built-in lists: no real person is described.

For ``accord demo`` the same generator makes the pieces separately, in the order a real
department sends them (IHE RAD SWF): :meth:`Department.visit` is a registration and an
order (with, now and then, a little realistic mess: a look-alike registration of a known
person under a new MRN, a procedure code no catalog maps, a resent message, an update
that lost its MRN, a message that lost its MSH header), and :meth:`Department.report`
the preliminary or final report the radiologist signs once the modality completed the
exam (``accord.demo.ris``).

Rule: the generator is pure — the caller passes the seed and the time. The one piece of
I/O is :class:`Receiver`, a simulated downstream system (an MLLP listener that records
what it gets and answers AA), used by the demo and by tests as a fake peer.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from accord.clock import ControlIds, uid_from_uuid
from accord.errors import ParseError
from accord.hl7 import Message, parse
from accord.hl7.ack import build_ack
from accord.mllp.server import MllpServer, PeerInfo

# Given names by administrative sex (PID-8): a patient's sex agrees with the name.
FEMALE = ("Anna", "Clara", "Elena", "Greta", "Ines", "Karin", "Maria", "Olga", "Rosa",
          "Tara")
MALE = ("Ben", "David", "Felix", "Hugo", "Jonas", "Leo", "Nils", "Paul", "Sven")
GIVEN = FEMALE + MALE
FAMILY = ("Adler", "Berger", "Conti", "Dietz", "Engel", "Fischer", "Garcia", "Hansen",
          "Ivanova", "Jansen", "Keller", "Lund", "Moreau", "Novak", "Olsen", "Petit",
          "Quinn", "Rossi", "Schmidt", "Tanaka", "Vogel", "Weber")
STREETS = ("Lindenweg", "Main St", "Rue Verte", "Harbour Rd", "Oak Ave", "Mill Lane")
CITIES = ("Springfield", "Riverton", "Lakeside", "Hillview")
# Procedure code, description, modality, station AE title.
PROCEDURES = (
    ("CT-CHEST", "CT Chest with contrast", "CT", "CT1"),
    ("CT-HEAD", "CT Head without contrast", "CT", "CT1"),
    ("MR-KNEE", "MR Knee left", "MR", "MR1"),
    ("MR-BRAIN", "MR Brain", "MR", "MR1"),
    ("US-ABD", "US Abdomen", "US", "US1"),
    ("XR-CHEST", "XR Chest 2 views", "CR", "DX1"),
)
# A code the demo's catalog does not map (the console's unmapped_code finding).
UNMAPPED = ("NM-BONE", "NM Whole body bone scan", "NM", "NM1")
SENDER = ("RIS", "RADIOLOGY")
MESS = ("lookalike", "unmapped", "resend", "malformed", "incomplete")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
IMPRESSIONS = ("No acute abnormality.", "Normal study.", "Small degenerative changes.",
               "No interval change since the prior study.")
RECEIVER = ("ACCORD", "RADIOLOGY")
# The slots of today's list the RIS books into, around the time it books (``slot``).
SLOTS_BEFORE = timedelta(hours=3)
SLOTS_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SimPatient:
    mrn: str
    family: str
    given: str
    birth_date: str
    sex: str
    street: str
    city: str
    phone: str = "555-0100"


@dataclass(frozen=True, slots=True)
class SimOrder:
    """An order the simulated RIS placed (what it needs to report on it later)."""

    patient: SimPatient
    accession: str
    procedure: tuple[str, str, str, str]  # code, description, modality, station
    study_uid: str
    scheduled: datetime


@dataclass(frozen=True, slots=True)
class Visit:
    """A registration and an order as the RIS sends them (ER7 texts, in order); ``mess``
    names the one deliberate imperfection in it (one of :data:`MESS`), if any."""

    messages: tuple[str, ...]
    order: SimOrder | None
    mess: str | None = None


@dataclass(frozen=True, slots=True)
class Exam:
    """One order's messages, in the order the RIS would send them (ER7, ``\\r``)."""

    patient: SimPatient
    accession: str
    messages: tuple[str, ...]


class Department:
    """Makes exams for synthetic patients; deterministic for a given ``seed``."""

    def __init__(self, seed: int | None = None, *, control_prefix: str = "SIM") -> None:
        self._rng = random.Random(seed)
        self._prefix = control_prefix
        self._counter = 0
        self._accessions = 0
        # Accession numbers are unique per department instance, as a RIS's would be, and
        # at most 16 characters (DICOM SH: the worklist serves them as they are).
        self._tag = "".join(self._rng.choice(_BASE36) for _ in range(3))
        self._visits = 0
        self._known: list[SimPatient] = []  # registered so far (returning patients)

    def patient(self) -> SimPatient:
        r = self._rng
        born = datetime(1930, 1, 1) + timedelta(days=r.randrange(0, 33000))
        sex = r.choice("MF")
        return SimPatient(
            mrn=f"MRN{r.randrange(10**6, 10**7)}", family=r.choice(FAMILY),
            given=r.choice(FEMALE if sex == "F" else MALE), birth_date=born.strftime("%Y%m%d"),
            sex=sex, street=f"{r.randrange(1, 200)} {r.choice(STREETS)}",
            city=r.choice(CITIES), phone=f"555-{r.randrange(1000, 10000)}")

    def lookalike(self, p: SimPatient) -> SimPatient:
        """The same person registered again at another desk: a new MRN, a typo in the
        family name and, when the day allows it, day and month swapped in the birth date
        (the classic potential duplicate)."""
        r = self._rng
        family = _typo(p.family, r)
        born = p.birth_date
        if int(born[6:8]) <= 12 and born[4:6] != born[6:8]:
            born = born[:4] + born[6:8] + born[4:6]
        return SimPatient(mrn=f"MRN{r.randrange(10**6, 10**7)}", family=family,
                          given=p.given, birth_date=born, sex=p.sex, street=p.street,
                          city=p.city, phone=p.phone)

    def next_mess(self) -> str | None:
        """The imperfection of the next visit: each kind once early on (every 3rd visit,
        so the console soon has something to explain), then rarely (~1 in 15)."""
        self._visits += 1
        n = self._visits
        if n % 3 == 0 and n // 3 <= len(MESS):
            return MESS[n // 3 - 1]
        if n > 3 * len(MESS) and self._rng.random() < 1 / 15:
            return self._rng.choice(MESS)
        return None

    def visit(self, now: datetime, stations: tuple[str, ...] = ()) -> Visit:
        """A registration (A04, or A08 for a returning patient) and an order (ORM^O01 NW
        with ZDS) for a procedure done on one of ``stations`` (all when empty)."""
        r, mess = self._rng, self.next_mess()
        returning = bool(self._known) and r.random() < 0.2 and mess != "lookalike"
        if mess == "lookalike" and self._known:
            p = self.lookalike(r.choice(self._known))
        else:
            p = r.choice(self._known) if returning else self.patient()
        if not returning:
            self._known = [*self._known[-199:], p]
        choices = [x for x in PROCEDURES if not stations or x[3] in stations] or PROCEDURES
        procedure = UNMAPPED if mess == "unmapped" else r.choice(choices)
        order, orm = self.order(now, p, procedure)
        msgs = [self._adt(now, p, "A08" if returning else "A04"), orm]
        if mess == "resend":  # the RIS did not see the ACK and sends the order again
            msgs.append(orm)
        if mess == "malformed":
            msgs.insert(1, self.malformed(now, p))
        if mess == "incomplete":  # an update whose MRN the interface dropped: AE
            msgs.insert(1, self._adt(now, replace(p, mrn=""), "A08"))
        return Visit(messages=tuple(msgs), order=order, mess=mess)

    def order(self, now: datetime, p: SimPatient,
              procedure: tuple[str, str, str, str]) -> tuple[SimOrder, str]:
        """A new order (ORM^O01 ORC-1 NW, ZDS Study Instance UID) in a slot of today
        (:meth:`slot`)."""
        self._accessions += 1
        acc = f"ACC{now:%m%d}{self._tag}{self._accessions % 100_000:05d}"
        uid = uid_from_uuid(_uuid_from(self._rng))
        when = self.slot(now)
        orm = self._orm(now, p, acc, "NW", "SC", *procedure, when, uid)
        return SimOrder(p, acc, procedure, uid, when), orm

    def slot(self, now: datetime) -> datetime:
        """A quarter-hour slot of today's list, spread over the hours around ``now``
        (:data:`SLOTS_BEFORE` before it to :data:`SLOTS_AFTER` after): most are due, a
        patient waiting, so the modalities have work; some are later and wait for
        their time (a modality never starts a step before its slot). Never another
        day: the worklist a modality asks for is today's."""
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        first = max(day, now - SLOTS_BEFORE)
        last = min(day + timedelta(hours=23, minutes=45), now + SLOTS_AFTER)
        quarters = max(0, int((last - first).total_seconds() // 900))
        start = first - timedelta(minutes=first.minute % 15, seconds=first.second,
                                  microseconds=first.microsecond)
        return max(day, start + timedelta(minutes=15 * self._rng.randrange(0, quarters + 1)))

    def report(self, now: datetime, order: SimOrder, *, final: bool) -> str:
        """The radiologist's report on ``order``: ORU^R01 with OBR-25 P (preliminary) or F
        (final), as IHE RAD-28 / HL7 v2.5.1 §7.4.1 lay it out."""
        code, desc = order.procedure[0], order.procedure[1]
        return self._oru(now, order.patient, order.accession, code, desc,
                         "F" if final else "P",
                         IMPRESSIONS[int(order.accession[-4:]) % len(IMPRESSIONS)])

    def malformed(self, now: datetime, p: SimPatient) -> str:
        """A message that lost its MSH segment on the way (answered AR, stored as
        rejected)."""
        return "\r".join([f"EVN|A08|{now:%Y%m%d%H%M%S}", self._pid(p), self._pv1(p)]) + "\r"

    def exam(self, now: datetime, patient: SimPatient | None = None) -> Exam:
        """A full exam: A04, maybe A08, ORM NW + ZDS, ORM SC IP, ORM SC CM, ORU final."""
        p = patient or self.patient()
        self._accessions += 1
        acc = f"ACC{now:%m%d}{self._tag}{self._accessions % 100_000:05d}"
        code, desc, modality, station = self._rng.choice(PROCEDURES)
        uid = uid_from_uuid(_uuid_from(self._rng))
        when = now + timedelta(minutes=self._rng.randrange(5, 240))
        msgs = [self._adt(now, p, "A04")]
        if self._rng.random() < 0.3:
            msgs.append(self._adt(now, p, "A08"))
        msgs.append(self._orm(now, p, acc, "NW", "SC", code, desc, modality, station, when, uid))
        msgs.append(self._orm(now, p, acc, "SC", "IP", code, desc, modality, station, when, uid))
        msgs.append(self._orm(now, p, acc, "SC", "CM", code, desc, modality, station, when, uid))
        msgs.append(self._oru(now, p, acc, code, desc))
        return Exam(patient=p, accession=acc, messages=tuple(msgs))

    def _msh(self, now: datetime, trigger: str) -> str:
        self._counter += 1
        return (f"MSH|^~\\&|{SENDER[0]}|{SENDER[1]}|{RECEIVER[0]}|{RECEIVER[1]}|"
                f"{now:%Y%m%d%H%M%S}||{trigger}|{self._prefix}{self._counter:08d}|P|2.5.1"
                f"||||||UNICODE UTF-8")

    @staticmethod
    def _pid(p: SimPatient) -> str:
        return (f"PID|1||{p.mrn}^^^HOSP^MR||{p.family}^{p.given}||{p.birth_date}|{p.sex}|||"
                f"{p.street}^^{p.city}^^12345^XX||{p.phone}")

    @staticmethod
    def _pv1(p: SimPatient) -> str:
        return f"PV1|1|O|RAD^^^RADIOLOGY||||1234^Welby^Marcus|||||||||||V{p.mrn[3:]}"

    def _adt(self, now: datetime, p: SimPatient, event: str) -> str:
        segs = [self._msh(now, f"ADT^{event}^ADT_A01"), f"EVN|{event}|{now:%Y%m%d%H%M%S}",
                self._pid(p), self._pv1(p)]
        return "\r".join(segs) + "\r"

    def _orm(self, now: datetime, p: SimPatient, acc: str, control: str, status: str,
             code: str, desc: str, modality: str, station: str, when: datetime,
             uid: str) -> str:
        placer = f"P{acc[3:]}"
        segs = [
            self._msh(now, "ORM^O01^ORM_O01"), self._pid(p), self._pv1(p),
            f"ORC|{control}|{placer}^RIS|{acc}^PACS||{status}||^^^{when:%Y%m%d%H%M}^^R"
            f"||{now:%Y%m%d%H%M%S}|||1234^Welby^Marcus",
            _obr(placer, acc, f"{code}^{desc}^LOCAL", when, station, modality),
            f"ZDS|{uid}^Accord^Application^DICOM",
        ]
        return "\r".join(segs) + "\r"

    def _oru(self, now: datetime, p: SimPatient, acc: str, code: str, desc: str,
             result: str = "F", impression: str = "Normal study.") -> str:
        placer = f"P{acc[3:]}"
        segs = [
            self._msh(now, "ORU^R01^ORU_R01"), self._pid(p), self._pv1(p),
            f"ORC|RE|{placer}^RIS|{acc}^PACS||CM",
            f"OBR|1|{placer}^RIS|{acc}^PACS|{code}^{desc}^LOCAL|||{now:%Y%m%d%H%M}|||||||||"
            f"1234^Welby^Marcus||{acc}||||{now:%Y%m%d%H%M}|||{result}",
            f"OBX|1|TX|{code}^{desc}^LOCAL|1|Findings: no acute abnormality.||||||{result}",
            f"OBX|2|TX|IMP^Impression^LOCAL|2|Impression: {impression}||||||{result}",
        ]
        return "\r".join(segs) + "\r"


def _obr(placer: str, acc: str, code: str, when: datetime, station: str,
         modality: str) -> str:
    """OBR of an imaging order as IHE RAD SWF lays it out (RAD-2/RAD-4): OBR-18 accession,
    OBR-19 requested procedure ID, OBR-20 scheduled procedure step ID, OBR-21 station AE
    title, OBR-24 modality, OBR-27 quantity/timing with the scheduled start."""
    f = [""] * 28
    f[0], f[1], f[2], f[3], f[4] = "OBR", "1", f"{placer}^RIS", f"{acc}^PACS", code
    f[7] = f"{when:%Y%m%d%H%M}"
    f[16] = "1234^Welby^Marcus"
    f[18], f[19], f[20], f[21] = acc, f"RP{acc[3:]}", f"SPS{acc[3:]}", station
    f[24] = modality
    f[27] = f"1^^^{when:%Y%m%d%H%M}^^R"
    return "|".join(f)


def _typo(name: str, rng: random.Random) -> str:
    """``name`` with one keying slip: a doubled or dropped letter, or two swapped."""
    i = rng.randrange(1, len(name) - 1)
    slip = rng.randrange(3)
    if slip == 0:
        return name[:i] + name[i] + name[i:]
    if slip == 1:
        return name[:i] + name[i + 1:]
    swapped = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return swapped if swapped != name else name[:i] + name[i] + name[i:]


def _uuid_from(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def orm_of_size(n_bytes: int = 1024, control_id: str = "BENCH00000001",
                order: str = "2601010001") -> str:
    """One ORM^O01 NW of about ``n_bytes`` (padded with an NTE comment), for benchmarks.
    ``order`` makes the order's numbers (accession ``ACC<order>``, placer, requested
    procedure, SPS) and the end of its Study Instance UID."""
    dept = Department(seed=1)
    now = datetime(2026, 1, 1, 8, 0)
    p = dept.patient()
    uid = "1.2.826.0.1.3680043.8.498." + "".join(c for c in order if c.isdigit())
    orm = dept._orm(now, p, f"ACC{order}", "NW", "SC", *PROCEDURES[0], now, uid)
    head, _, rest = orm.partition("\r")
    fields = head.split("|")
    fields[9] = control_id
    orm = "|".join(fields) + "\r" + rest
    pad = max(0, n_bytes - len(orm) - 8)
    return orm + (f"NTE|1||{'x' * pad}\r" if pad else "")


Responder = Callable[[Message], "bytes | str | None"]


@dataclass
class Receiver:
    """A simulated downstream system (RIS, PACS): records every message and answers it.

    ``respond`` chooses the answer: an ACK code (``"AA"``, ``"AE"``, ``"AR"``), raw bytes
    to send as they are, or None to send nothing (the sender times out); ``delay`` how
    many seconds to wait before answering. ``unique`` keeps
    the first copy per MSH-10, as a receiver that deduplicates resends would.
    ``on_message`` (if set) sees each newly arrived MSH-10 once, before the answer.
    """

    respond: Responder = lambda _msg: "AA"
    delay: Callable[[Message], float] = lambda _msg: 0.0
    host: str = "127.0.0.1"
    port: int = 0
    on_message: Callable[[Message], None] | None = None
    received: list[Message] = field(default_factory=list)
    unique: dict[str, Message] = field(default_factory=dict)
    _server: MllpServer | None = None
    _ids: ControlIds = field(default_factory=lambda: ControlIds("RCV"))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> int:
        """Listen; returns the bound port."""
        self._server = MllpServer(self._handle, host=self.host, port=self.port,
                                  name="sim-receiver")
        await self._server.start()
        self.port = self._server.port
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` distinct MSH-10 values arrived (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout):
            while len(self.unique) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def _handle(self, payload: bytes, peer: PeerInfo) -> bytes | None:
        try:
            msg = parse(payload)
        except ParseError:
            return None
        self.received.append(msg)
        if msg.control_id not in self.unique:
            self.unique[msg.control_id] = msg
            if self.on_message is not None:
                self.on_message(msg)
        self._arrived.set()
        pause = self.delay(msg)
        if pause > 0:
            await asyncio.sleep(pause)
        answer = self.respond(msg)
        if answer is None or isinstance(answer, bytes):
            return answer
        ack = build_ack(msg, answer, now=datetime.now(UTC), control_id=self._ids.next())
        return ack.to_er7().encode("utf-8")
