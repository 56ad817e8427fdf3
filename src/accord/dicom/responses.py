"""Encoded C-FIND pending responses, cached.

Why: a modality sends the same set of keys on every worklist query, and building then
encoding a pydicom Dataset per match costs ~1 ms, most of the SCP's time per answer.
The response for one worklist entry depends only on the entry, the *shape* of the
identifier (which keys, which sequence items) and the transfer syntax, so it is encoded
once and reused; pynetdicom then gets a Dataset of raw elements, which pydicom writes
back byte for byte. Rule: the cache key carries the entry's serial, which the index
changes whenever the entry changes, so a stale answer can never be served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class ResponseCache:
    """A bounded LRU of encoded responses, shared by all associations."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._encoded: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._encoded)

    def identifier(self, query: Query, shape: Signature, entry: WorklistEntry,
                   implicit: bool, little: bool) -> Dataset:
        """The pending response Identifier for ``entry`` (PS3.4 C.4.1.1.3.2)."""
        if entry.serial == 0 or self._capacity == 0:
            return response(query, entry.dataset)
        key = (entry.serial, shape, implicit, little)
        with self._lock:
            raw = self._encoded.get(key)
            if raw is not None:
                self._encoded.move_to_end(key)
        if raw is None:
            raw = _encode(response(query, entry.dataset), implicit, little)
            with self._lock:
                self._encoded[key] = raw
                while len(self._encoded) > self._capacity:
                    self._encoded.popitem(last=False)
        return read_dataset(BytesIO(raw), implicit, little)
