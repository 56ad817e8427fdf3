"""The workflow in the store: the repository the engine saves patients, orders, reports,
findings and trace through (``repository.py``, with its prebuilt ``statements``, the
``codec`` of its JSON documents, the per-transaction field ``stats`` and the worklist
``changes`` it tells after each commit), the reads and writes of the DICOM bridge
(``worklist.py``), the versioned procedure code tables (``catalog.py``) and the bulk
loader of a store at age (``bulk.py``)."""
