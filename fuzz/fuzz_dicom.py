"""Fuzz target: the DICOM C-FIND query compiler and the MPPS handlers, on pydicom
datasets (``python fuzz/run.py dicom``).

The input is either a DICOM file (read by pydicom with ``force=True``; what pydicom
itself cannot read is not ours) or, from a fuzzed description, a dataset of the keys a
worklist query and an MPPS carry, with any values. Documented outcomes:
``compile_query`` returns a ``Query`` or a ``QueryRejected``; ``n_create`` and ``n_set``
return an ``MppsResult`` or an ``MppsRejected`` (the failure status the SCP answers). Any
exception is a bug: the SCP would answer a modality with an internal failure.
"""

from __future__ import annotations

import io
import sys
import warnings
from datetime import UTC

import atheris

with atheris.instrument_imports(include=["accord"]):
    from pydicom import config as pydicom_config
    from pydicom import dcmread
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    from accord.dicom.mpps import MppsInstance, MppsRejected, MppsResult, n_create, n_set
    from accord.dicom.query import Query, QueryRejected, compile_query

# (tag, VR) of what worklist queries and MPPS messages hold (PS3.4 K.6, F.7).
_TOP = [(0x00100010, "PN"), (0x00100020, "LO"), (0x00080050, "SH"), (0x0020000D, "UI"),
        (0x00100030, "DA"), (0x00100040, "CS"), (0x00080005, "CS"), (0x00401001, "SH"),
        (0x00321060, "LO"), (0x00080090, "PN"), (0x00400252, "CS"), (0x00400241, "AE"),
        (0x00400244, "DA"), (0x00400245, "TM"), (0x00400250, "DA"), (0x00400251, "TM"),
        (0x00400253, "SH"), (0x00080060, "CS"), (0x00100021, "LO"), (0x00380010, "LO")]
_ITEM = [(0x00400001, "AE"), (0x00400002, "DA"), (0x00400003, "TM"), (0x00080060, "CS"),
         (0x00400009, "SH"), (0x00400007, "LO"), (0x00400011, "SH"), (0x00400006, "PN"),
         (0x00400020, "CS"), (0x0020000D, "UI"), (0x00080050, "SH"), (0x00401001, "SH")]
_SEQUENCES = [0x00400100, 0x00400270, 0x00400340, 0x00081110]  # SPS, SSA, PSS, ref study


def _element(fdp: atheris.FuzzedDataProvider, tag: int, vr: str) -> DataElement:
    value = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    return DataElement(Tag(tag), vr, value, validation_mode=pydicom_config.IGNORE)


def _described(fdp: atheris.FuzzedDataProvider) -> Dataset:
    ds = Dataset()
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        ds.add(_element(fdp, *fdp.PickValueInList(_TOP)))
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        items = []
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            item = Dataset()
            for _ in range(fdp.ConsumeIntInRange(0, 8)):
                item.add(_element(fdp, *fdp.PickValueInList(_ITEM)))
            items.append(item)
        ds.add(DataElement(Tag(fdp.PickValueInList(_SEQUENCES)), "SQ", items))
    return ds


def _dataset(data: bytes) -> Dataset | None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        return _described(fdp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(fdp.ConsumeBytes(fdp.remaining_bytes())), force=True)
            ds.keys()  # pydicom reads lazily: make it read now, while it is its failure
            return ds
    except Exception:  # pydicom could not read it: not input our code ever sees
        return None


def _worklist_item() -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "Doe^John", "1001", "A001"
    ds.StudyInstanceUID, ds.PatientBirthDate = "1.2.826.0.1.1", "19700102"
    sps = Dataset()
    sps.ScheduledStationAETitle, sps.Modality = "CT1", "CT"
    sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime = \
        "20260302", "093000"
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


ITEM = _worklist_item()


def TestOneInput(data: bytes) -> None:
    ds = _dataset(data)
    if ds is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value warnings are not failures
        query = compile_query(ds)
        assert isinstance(query, Query | QueryRejected)
        if isinstance(query, Query):
            query.matches(ITEM)
        created = n_create("1.2.3.4", ds, None, [], [], UTC)
        assert isinstance(created, MppsResult | MppsRejected)
        current = MppsInstance("1.2.3.4", "IN PROGRESS", ITEM)
        assert isinstance(n_set(current, ds, [], [], UTC), MppsResult | MppsRejected)
        assert isinstance(n_set(None, ds, [], [], UTC), MppsResult | MppsRejected)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
