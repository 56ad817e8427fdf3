"""C-FIND pending responses, built once per worklist entry and query shape.

Why: a modality sends the same set of keys on every worklist query, and building a
pydicom Dataset per match, then pynetdicom encoding it, was most of the SCP's time per
answer. The response for one worklist entry depends only on the entry, the *shape* of
the identifier (which keys, which sequence items) and the transfer syntax, so it is
built once, encoded, and read back as a Dataset of raw elements, which pynetdicom writes
byte for byte (half the cost of writing a built one): the same Dataset is then handed
out for every later match, never changed by anyone (pynetdicom only encodes it).

Rules:
- Kept on the entry itself (:attr:`~accord.dicom.index.WorklistEntry.responses`): the
  index replaces an entry whenever its item changes, so a stale answer can never be
  served, and the answers go when their entry leaves the worklist: memory follows the
  worklist's size, not how many entries ever were on it.
- At most ``per_entry`` answers per entry (one per query shape and transfer syntax): a
  peer sending ever new shapes gets answers built each time, not a growing cache.
"""

from __future__ import annotations

from collections.abc import Hashable
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from accord.dicom.index import WorklistEntry
from accord.dicom.query import Query, response

Signature = tuple[Hashable, ...]


def signature(identifier: Dataset) -> Signature:
    """The shape of an identifier: its keys and VRs, recursively; values only where they
    decide which sequence items are returned (a sequence key other than the SPS item,
    which is one per entry and has already matched)."""
    out: list[Hashable] = []
    for elem in identifier:
        if elem.VR != "SQ":
            out.append((int(elem.tag), str(elem.VR)))
            continue
        items = list(elem.value or [])
        sub = signature(items[0]) if items else None
        values = repr(items[0]) if items and int(elem.tag) != 0x00400100 else ""
        out.append((int(elem.tag), "SQ", len(items), sub, values))
    return tuple(out)


def _encode(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def _ready(ds: Dataset, implicit: bool, little: bool) -> Dataset:
    """``ds`` as a Dataset of raw elements in this transfer syntax, encoded once already
    (the first encoding reads its Specific Character Set: later ones change nothing)."""
    raw = read_dataset(BytesIO(_encode(ds, implicit, little)), implicit, little)
    _encode(raw, implicit, little)
    return raw


class ResponseCache:
    """The answers kept on each worklist entry (module rules); 0 keeps none."""

    def __init__(self, per_entry: int = 4) -> None:
        self._per_entry = per_entry

    def identifier(self, query: Query, shape: Signature, entry: WorklistEntry,
                   implicit: bool, little: bool) -> Dataset:
        """The pending response Identifier for ``entry`` (PS3.4 C.4.1.1.3.2)."""
        if entry.serial == 0 or self._per_entry == 0:
            return response(query, entry.dataset)
        key = (shape, implicit, little)
        found = entry.responses.get(key)
        if found is None:
            # Two threads may both build it; they build equal answers, either is kept.
            found = _ready(response(query, entry.dataset), implicit, little)
            if len(entry.responses) < self._per_entry:
                entry.responses[key] = found
        return found
