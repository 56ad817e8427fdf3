"""C-FIND SCU to the PACS, for the reconciliation job ("completed but not found").

Rules: I/O at the edge, decisions in :mod:`accord.dicom.reconcile`. Study Root
Query/Retrieve, STUDY level (PS3.4 C.6.2.1), by Study Instance UID, by accession, or by
Study Date. One association per :class:`PacsClient` session; TCP_NODELAY on its socket.
Failures raise :class:`~accord.errors.DeliveryError` (the job retries on its next run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from accord.dicom.reconcile import (
    CompletedOrder,
    ReconcileFinding,
    StudyRecord,
    completed_study_missing,
    due,
    studies_without_order,
)
from accord.dicom.scp import quiet_identifiers, set_nodelay
from accord.errors import DeliveryError

_PENDING = (0xFF00, 0xFF01)
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # PS3.4 C.6.2


@dataclass(frozen=True, slots=True)
class PacsPeer:
    """A configured PACS: where to ask and under which AE titles."""

    host: str
    port: int
    ae_title: str = "PACS"
    calling_ae: str = "ACCORD"
    timeout: float = 30.0


def _record(ds: Dataset) -> StudyRecord:
    modalities = ds.get("ModalitiesInStudy") or []
    if isinstance(modalities, str):
        modalities = [modalities] if modalities else []
    return StudyRecord(
        study_instance_uid=str(ds.get("StudyInstanceUID") or ""),
        accession=str(ds.get("AccessionNumber") or ""),
        patient_id=str(ds.get("PatientID") or ""),
        study_date=str(ds.get("StudyDate") or ""),
        modalities=tuple(str(m) for m in modalities),
    )


class PacsClient:
    """An association to the PACS for study-level C-FIND; use as a context manager."""

    def __init__(self, peer: PacsPeer) -> None:
        self._peer = peer
        self._assoc: Any = None

    def __enter__(self) -> PacsClient:
        quiet_identifiers()
        ae = AE(ae_title=self._peer.calling_ae)
        ae.add_requested_context(STUDY_ROOT_FIND)
        for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
            setattr(ae, attr, self._peer.timeout)
        assoc = ae.associate(self._peer.host, self._peer.port, ae_title=self._peer.ae_title,
                             evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
        if not assoc.is_established:
            raise DeliveryError(f"PACS {self._peer.ae_title} refused or unreachable")
        self._assoc = assoc
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._assoc is not None and self._assoc.is_established:
            self._assoc.release()
        self._assoc = None

    def find_studies(self, *, study_uid: str = "", accession: str = "",
                     study_date: str = "") -> list[StudyRecord]:
        """Studies matching the given keys (empty = universal); ``study_date`` may be a
        range ``A-B`` (PS3.4 C.2.2.2.5)."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        query.AccessionNumber = accession
        query.StudyDate = study_date
        query.PatientID = ""
        query.ModalitiesInStudy = ""
        out: list[StudyRecord] = []
        for status, ds in self._assoc.send_c_find(query, STUDY_ROOT_FIND):
            code = getattr(status, "Status", None)
            if code is None:
                raise DeliveryError("PACS C-FIND: no response (timeout or abort)")
            if code in _PENDING and ds is not None:
                out.append(_record(ds))
            elif code not in _PENDING and code != 0x0000:
                raise DeliveryError(f"PACS C-FIND failed with status 0x{code:04X}")
        return out


def missing_studies(pacs: PacsClient, completed: Iterable[CompletedOrder],
                    now: datetime) -> list[ReconcileFinding]:
    """A ``completed_study_missing`` finding for each order whose study ``pacs`` does not
    know: asked by Study Instance UID, then by accession when that finds nothing."""
    findings: list[ReconcileFinding] = []
    for c in completed:
        found: list[StudyRecord] = []
        if c.order.study_instance_uid:
            found += pacs.find_studies(study_uid=c.order.study_instance_uid)
        if not found and c.order.accession:
            found += pacs.find_studies(accession=c.order.accession)
        finding = completed_study_missing(c, found, now)
        if finding is not None:
            findings.append(finding)
    return findings


def reconcile(peer: PacsPeer, completed: Iterable[CompletedOrder], *, now: datetime,
              after: timedelta, study_date: str = "", known_uids: Iterable[str] = (),
              known_accessions: Iterable[str] = ()) -> list[ReconcileFinding]:
    """One run of the reconciliation job: completed orders older than ``after`` are looked
    up by Study Instance UID and accession; if ``study_date`` is given, the PACS's studies
    of that date (or range) are checked against the known UIDs and accessions."""
    with PacsClient(peer) as pacs:
        findings = missing_studies(pacs, due(completed, now, after), now)
        if study_date:
            studies = pacs.find_studies(study_date=study_date)
            findings += studies_without_order(studies, set(known_uids), set(known_accessions))
    return findings
