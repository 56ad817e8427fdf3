"""The workflow in the store: the repository the engine saves patients, orders, reports,
findings and trace through (``repository.py``, with its prebuilt ``statements``, the
``codec`` of its JSON documents and the per-transaction field ``stats``), the reads and
writes of the DICOM bridge (``worklist.py``) and the versioned procedure code tables
(``catalog.py``)."""
