"""Whether a dataset received from a peer can be read at all.

pynetdicom hands the handlers datasets whose elements pydicom converts only when first
read; a value whose bytes do not fit its VR (a 2-byte UL, bad text) then raises from
whatever code reads it first. :func:`unreadable` reads every element once, nested
sequences included, so the query compiler and the MPPS rules can refuse such a dataset
with a DICOM status instead of failing in the middle of their work.
"""

from __future__ import annotations

import warnings

from pydicom.dataset import Dataset


def unreadable(ds: Dataset) -> str | None:
    """None when every element of ``ds`` reads; else why (the tag and pydicom's reason)."""
    # One warnings context for the whole walk, not one per sequence item: entering one
    # resets the interpreter's warning caches, and an MPPS carries a dozen items.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on odd values it still reads
        return _first_unreadable(ds)


def _first_unreadable(ds: Dataset) -> str | None:
    tag = None
    try:
        for tag in sorted(ds.keys()):  # the tags alone: reading is the test
            elem = ds[tag]
            if elem.VR == "SQ":
                for item in elem.value or ():
                    if (why := _first_unreadable(item)) is not None:
                        return why
    except Exception as exc:  # pydicom's own: its decoding of foreign bytes failed
        where = f"element {tag}" if tag is not None else "the dataset"
        return f"{where} cannot be read: {type(exc).__name__}"
    return None
